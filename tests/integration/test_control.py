#!/usr/bin/env python3
"""The control socket and runnerctl's steering commands (DESIGN.md section 6;
runnerd + fake GitHub + fake docker, --control-socket in the test's folder):

1. the socket is a socket of mode 0660;
2. drain a pool with a warm idle runner (min_idle 1): runnerctl exits 0, the
   idle runner stops, no runner starts for a queued job of that pool,
   runnerd_pool_draining is 1, the log says so; resume: the job gets a runner;
3. stop a busy runner without --force: exit 1, the reason on stderr, the
   runner untouched; with --force: exit 0 and it goes away;
4. pause a target: its queued job gets no runner; unpause: it does;
5. reload of a broken file: exit 1 with FILE:LINE:COL on stderr, the daemon
   running the previous config (healthz 200); reload of a good file: exit 0;
6. refusals: an unknown pool, runner or scope exit 1 with a reason; bad usage 2;
7. a second runnerd on the same socket warns that another daemon answers
   there and runs on without it; one whose socket directory is missing too;
8. control_socket: in the config is used without the option, and runnerctl -c
   FILE finds it; a relative path is refused with file:line:col.
"""
import os
import re
import stat
import subprocess
import sys
import time

import opskit
import rdtest

RUNNERCTL = os.environ.get("RUNNERCTL_BIN") or os.path.join(rdtest.BUILD, "runnerctl")
GPU = opskit.X64 + ["gpu"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def ctl(sock, *args):
    p = subprocess.run(rdtest.wrap([RUNNERCTL, "-s", sock] + list(args)), capture_output=True,
                       text=True, timeout=rdtest.scaled(60))
    return p.returncode, p.stdout, p.stderr


def runners(s, pool=None, state=None):
    return [r for r in opskit.get_json(s.port)["runners"]
            if (pool is None or r.get("pool") == pool) and (state is None or r.get("state") == state)]


def runs(s):
    return len(opskit.docker_calls(s.state_dir, "run"))


def main():
    with opskit.TempDir() as tmp:
        sock = os.path.join(tmp, "ctl.sock")
        pools = [rdtest.pool("warm", GPU, "fake:x64", max_runners=2, min_idle=1,
                             idle_timeout="10m"),
                 rdtest.pool("lx", opskit.X64, "fake:x64", max_runners=4)]
        s = opskit.Setup(tmp, instance="ctl", pools=pools,
                         targets=[{"repo": "ctl-org/a"}, {"repo": "ctl-org/b"}])
        ok = False
        try:
            s.gh.repos("ctl-org", ["a", "b"])
            rd = s.start(args=["--control-socket", sock])
            s.wait_log(r"control socket .*ctl\.sock \(mode 0660\)")
            st = os.stat(sock)
            check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660,
                  "control socket is a socket of mode %o" % stat.S_IMODE(st.st_mode))

            # 2. drain / resume
            rdtest.wait_until(lambda: runners(s, "warm", "idle"), 30, 0.1, "the warm idle runner")
            code, out, err = ctl(sock, "drain", "warm")
            check(code == 0 and "drained" in out, "drain warm: exit %d %r %r" % (code, out, err))
            rdtest.wait_until(lambda: not runners(s, "warm"), 30, 0.1, "the idle runner to stop")
            check(True, "drain stopped the pool's idle runner")
            before = runs(s)
            s.gh.jobs("ctl-org/a", GPU, count=1, duration_ms=200)
            time.sleep(rdtest.scaled(3))
            check(runs(s) == before and not runners(s, "warm"),
                  "drained pool starts nothing for a queued job (docker runs %d -> %d)"
                  % (before, runs(s)))
            _, _, body = opskit.get(s.port, "/metrics")
            check('runnerd_pool_draining{pool="warm"} 1' in body.decode(),
                  "runnerd_pool_draining{pool=warm} 1")
            check(re.search(r"INFO control: pool warm drained: starts nothing, \d+ idle runners "
                            r"stopping, busy ones finish \(uid \d+, pid \d+\)", rd.logs()),
                  "the drain is logged with the caller's uid and pid")
            code, out, err = ctl(sock, "resume", "warm")
            check(code == 0 and "resumed" in out, "resume warm: exit %d %r" % (code, out))
            rdtest.wait_until(lambda: runs(s) > before, 30, 0.1, "a runner after resume")
            check(True, "resumed pool starts runners again")

            # 3. stop a busy runner
            long_job = s.gh.jobs("ctl-org/a", opskit.X64, count=1, duration_ms=60000)["job_ids"][0]
            busy = rdtest.wait_until(lambda: [r for r in runners(s, None, "busy")
                                              if r.get("job_id") == long_job], 30, 0.1,
                                     "the long job's runner busy")[0]
            code, out, err = ctl(sock, "stop", busy["name"])
            check(code == 1 and "busy" in err and "--force" in err,
                  "stop of a busy runner refused: exit %d %r" % (code, err))
            time.sleep(rdtest.scaled(1))
            still = [r for r in runners(s) if r["name"] == busy["name"]]
            check(still and still[0]["state"] == "busy", "the refused runner is untouched")
            code, out, err = ctl(sock, "stop", busy["name"], "--force")
            check(code == 0 and "stopping" in out, "stop --force: exit %d %r %r" % (code, out, err))
            rdtest.wait_until(lambda: not [r for r in runners(s) if r["name"] == busy["name"]],
                              30, 0.1, "the forced runner to go")
            check(True, "stop --force stopped the busy runner")

            # 4. pause / unpause a target
            code, out, err = ctl(sock, "pause", "repos/ctl-org/b")
            check(code == 0 and "paused" in out, "pause repos/ctl-org/b: exit %d %r %r"
                  % (code, out, err))
            before = runs(s)
            s.gh.jobs("ctl-org/b", opskit.X64, count=1, duration_ms=200)
            time.sleep(rdtest.scaled(3))
            check(runs(s) == before, "paused target starts nothing (docker runs %d -> %d)"
                  % (before, runs(s)))
            code, out, _ = ctl(sock, "unpause", "repos/ctl-org/b")
            check(code == 0 and "unpaused" in out, "unpause: exit %d %r" % (code, out))
            rdtest.wait_until(lambda: runs(s) > before, 30, 0.1, "a runner after unpause")
            check(True, "unpaused target is served")

            # 5. reload
            good = open(rd.cfg_path).read()
            with open(rd.cfg_path, "w") as f:
                f.write(good.replace("max_runners: 4", "max_runners: -4"))
            code, out, err = ctl(sock, "reload")
            check(code == 1 and re.search(re.escape(rd.cfg_path) + r":\d+:\d+: pools\[1\]"
                                          r"\.max_runners: ", err),
                  "reload of a broken file: exit %d, FILE:LINE:COL on stderr %r" % (code, err))
            check(opskit.get(s.port, "/healthz")[0] == 200 and rd.alive(),
                  "the daemon runs on with the previous config")
            with open(rd.cfg_path, "w") as f:
                f.write(good)
            code, out, err = ctl(sock, "reload")
            check(code == 0 and "reloaded: 2 pools, 2 targets" in out,
                  "reload of a good file: exit %d %r %r" % (code, out, err))

            # 6. refusals and usage
            for args, want in ((["drain", "nope"], "no pool named nope"),
                               (["stop", "runnerd-ctl-nope-x"], "no runner named"),
                               (["pause", "orgs/nope"], "no target with scope orgs/nope")):
                code, out, err = ctl(sock, *args)
                check(code == 1 and want in err, "%s refused: exit %d %r" % (args, code, err))
            code, _, _ = ctl(sock, "drain")
            check(code == 2, "drain without a pool: usage, exit 2")
            code, _, err = ctl(os.path.join(tmp, "none.sock"), "reload")
            check(code == 1 and "cannot reach" in err, "no daemon on the socket: exit 1 %r" % err)

            # 7. a second daemon on the same socket, one with a missing directory
            other = rdtest.Runnerd(tmp, s.config(listen="127.0.0.1:%d" % opskit.free_port()),
                                   args=["--control-socket", sock], env=s.env, name="second")
            other.start()
            try:
                rdtest.wait_until(lambda: "another runnerd answers there" in other.logs(), 20,
                                  0.1, "the second daemon's warning")
                check(other.alive(), "a second daemon on the same socket warns and runs on")
            finally:
                other.stop(timeout=30)
            code, out, _ = ctl(sock, "resume", "lx")
            check(code == 0, "the first daemon still owns the socket")
            third = rdtest.Runnerd(tmp, s.config(listen="127.0.0.1:%d" % opskit.free_port()),
                                   args=["--control-socket", os.path.join(tmp, "no", "x.sock")],
                                   env=s.env, name="third")
            third.start()
            try:
                rdtest.wait_until(lambda: "its directory is missing" in third.logs(), 20, 0.1,
                                  "the third daemon's warning")
                check(third.alive(), "a missing socket directory: warns and runs on")
            finally:
                third.stop(timeout=30)
            # 8. control_socket: in the config (no option): runnerctl -c finds it there
            cfg_sock = os.path.join(tmp, "cfg.sock")
            fourth = rdtest.Runnerd(tmp, s.config(listen="127.0.0.1:%d" % opskit.free_port(),
                                                  control_socket=cfg_sock),
                                    env=s.env, name="fourth")
            fourth.start()
            try:
                rdtest.wait_until(lambda: os.path.exists(cfg_sock) and
                                  "daemon: running:" in fourth.logs(), 30, 0.1,
                                  "cfg.sock and the daemon running")
                p = subprocess.run(rdtest.wrap([RUNNERCTL, "-c", fourth.cfg_path, "drain", "lx"]),
                                   capture_output=True, text=True, timeout=rdtest.scaled(60))
                check(p.returncode == 0 and "drained" in p.stdout,
                      "control_socket: from the config; runnerctl -c uses it (%r)" % p.stderr)
            finally:
                fourth.stop(timeout=30)
            bad = rdtest.Runnerd(tmp, s.config(control_socket="relative.sock"), env=s.env,
                                 name="bad", args=["--check-config"])
            code, _, err = bad.run()
            check(code == 1 and re.search(r"bad\.yaml:\d+:\d+: control_socket: must be an "
                                          r"absolute path", err),
                  "control_socket: relative refused with file:line:col (%r)" % err)
            ok = not failures
        finally:
            s.close(dump=not ok)
        check(not os.path.exists(sock), "the socket is removed at exit")
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
