#!/usr/bin/env python3
"""SIGHUP reload with the docker double (runnerd + fake GitHub + fake docker):
1. a broken file (bad value, then bad YAML) is refused: every error logged as FILE:LINE:COL,
   /status config.reloads_failed and last_error say so, and the old config keeps polling and
   starting runners for new jobs;
2. adding a repo target serves its jobs;
3. removing a pool drains it: its busy runner finishes its (long) job, its idle (min_idle)
   runner is stopped, nothing busy is killed; the pool stays listed as draining until empty;
4. a reload while that drain is still going on works, and its max_runners change applies to
   new starts; a host max_runners change applies too;
5. credentials: token_file whose content changes, token_env switching variables (the fake
   GitHub accepts one token), and a token_env naming an unset variable is refused."""
import os
import re
import signal
import sys
import threading
import time

import opskit
import rdtest
import status_schema

X64 = opskit.X64
SMALL = X64 + ["small"]
BIG = X64 + ["big"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


class Sampler(threading.Thread):
    """Polls /status: the most runners seen per pool and over the host."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = False
        self.reset()

    def reset(self):
        self.max_pool = {}
        self.max_host = 0

    def run(self):
        while not self.stop:
            try:
                st = opskit.get_json(self.port)
            except Exception:  # noqa: BLE001 - the daemon may be reloading or gone
                time.sleep(0.05)
                continue
            self.max_host = max(self.max_host, st["host"]["runners"])
            for p in st["pools"]:
                self.max_pool[p["name"]] = max(self.max_pool.get(p["name"], 0), p["running"])
            time.sleep(0.03)


def job_status(gh, jid):
    for j in gh.state()["jobs"]:
        if j["id"] == jid:
            return j
    return None


def wait_jobs_done(gh, ids, timeout=90):
    ids = set(ids)

    def done():
        return all(j["status"] == "completed" for j in gh.state()["jobs"] if j["id"] in ids)
    rdtest.wait_until(done, timeout, 0.2, "jobs %s to complete" % sorted(ids))


def reload(s, cfg):
    """Write cfg, SIGHUP, wait for the outcome; returns the log text of this reload."""
    start = s.log_size()
    if cfg is not None:
        s.rd.write_config(cfg)
    s.rd.signal(signal.SIGHUP)
    s.wait_log(r"reloaded: |reload failed", timeout=20, start=start)
    return s.rd.logs()[start:]


def line_of(text, needle, nth=0):
    """1-based line number of the nth line containing needle."""
    hits = [i + 1 for i, l in enumerate(text.split("\n")) if needle in l]
    return hits[nth]


def pools_cfg(small_max=8, big=True):
    pools = [rdtest.pool("small", SMALL, "fake:x64", max_runners=small_max, idle_timeout="60s")]
    if big:
        pools.append(rdtest.pool("big", BIG, "fake:x64", max_runners=4, min_idle=1,
                                 idle_timeout="10m"))
    return pools


def scenario_pools(tmp):
    s = opskit.Setup(tmp, instance="rl", targets=[{"repo": "o/a"}], pools=pools_cfg(),
                     host={"cpus": 16, "memory": "32GiB", "max_runners": 16})
    sampler = None
    ok = False
    try:
        s.gh.repos("o", ["a", "b"])
        good = s.config()
        s.start(good)
        rdtest.wait_until(lambda: all(t.get("last_poll") for t in
                                      opskit.get_json(s.port)["targets"]), 30, 0.1, "first poll")
        status_schema.validate(opskit.get_json(s.port))

        # 1. Broken files are refused; the old config keeps serving.
        text = rdtest.to_yaml(good) + "\n"
        bad = text.replace("max_runners: 8", "max_runners: -3", 1)
        assert bad != text
        want_line = line_of(bad, "max_runners: -3")
        out = reload(s, bad)
        m = re.search(r"runnerd\.yaml:(\d+):(\d+): pools\[0\]\.max_runners", out)
        check(m is not None and int(m.group(1)) == want_line,
              "bad value: error logged as runnerd.yaml:%d:COL: pools[0].max_runners (%s)"
              % (want_line, m.group(0) if m else out[-400:]))
        check("reload failed" in out, "reload failed: still running the previous configuration")
        bad_yaml = text.replace("instance: \"rl\"", "instance: [rl", 1)
        out = reload(s, bad_yaml + "oops: {\n")
        m = re.search(r"runnerd\.yaml:\d+:\d+: ", out)
        check(m is not None and "reload failed" in out, "bad YAML: error with line:col (%s)"
              % (m.group(0) if m else out[-300:]))
        st = opskit.get_json(s.port)
        check(st["config"]["reloads_failed"] == 2 and st["config"]["reloads_ok"] == 0,
              "/status config: reloads_failed 2, reloads_ok 0 (%r)" % st["config"])
        check(bool(st["config"]["last_error"]) and "runnerd.yaml:" in st["config"]["last_error"],
              "/status config.last_error names file:line:col (%r)" % st["config"]["last_error"])
        polls0 = s.gh.stats()["by_path"].get("GET /repos/{o}/{r}/actions/runs", 0)
        j = s.gh.jobs("o/a", SMALL, count=1, duration_ms=200)
        wait_jobs_done(s.gh, j["job_ids"])
        polls1 = s.gh.stats()["by_path"].get("GET /repos/{o}/{r}/actions/runs", 0)
        check(polls1 > polls0, "old config still polls (%d -> %d) and served a new job"
              % (polls0, polls1))
        s.rd.write_config(good)  # the file on disk is good again

        # 2. Adding a repo target serves its jobs.
        cfg = s.config(pools=pools_cfg(), targets=[{"repo": "o/a"}, {"repo": "o/b"}])
        out = reload(s, cfg)
        check("reloaded: 2 pools, 2 targets" in out, "reload adding o/b applied")
        jb = s.gh.jobs("o/b", SMALL, count=2, duration_ms=200)
        wait_jobs_done(s.gh, jb["job_ids"])
        check(True, "jobs of the added repo o/b served")
        st = opskit.get_json(s.port)
        check([t["scope"] for t in st["targets"]] == ["repos/o/a", "repos/o/b"],
              "/status lists both targets")

        # 3. Remove pool big while it has a busy runner (long job) and an idle warm one.
        rdtest.wait_until(lambda: [p for p in opskit.get_json(s.port)["pools"]
                                   if p["name"] == "big"][0]["idle"] >= 1, 60, 0.1,
                          "a warm idle runner in pool big")
        long_job = s.gh.jobs("o/a", BIG, count=1, duration_ms=7000)["job_ids"][0]
        rdtest.wait_until(lambda: (job_status(s.gh, long_job) or {}).get("status")
                          == "in_progress", 60, 0.1, "the long job to start on pool big")
        busy_runner = job_status(s.gh, long_job)["runner_name"]
        rdtest.wait_until(lambda: [r for r in opskit.get_json(s.port)["runners"]
                                   if r["pool"] == "big" and r["name"] != busy_runner
                                   and r["state"] == "idle"], 60, 0.1,
                          "a warm idle runner in pool big beside the busy one")
        st = opskit.get_json(s.port)
        big_runners = [r["name"] for r in st["runners"] if r["pool"] == "big"]
        idle_big = [n for n in big_runners if n != busy_runner]
        print("     pool big before the reload: %r" % [(r["name"], r["state"]) for r in st["runners"]
                                                        if r["pool"] == "big"])
        cfg = s.config(pools=pools_cfg(big=False), targets=[{"repo": "o/a"}, {"repo": "o/b"}])
        out = reload(s, cfg)
        check("reloaded: 1 pools, 2 targets" in out, "reload removing pool big applied")
        st = opskit.get_json(s.port)
        status_schema.validate(st)
        bigp = [p for p in st["pools"] if p["name"] == "big"]
        check(len(bigp) == 1 and bigp[0]["draining"], "/status: pool big listed as draining (%r)"
              % bigp)

        # 4. Reload again while big drains: small max_runners 1 applies to new starts.
        sampler = Sampler(s.port)
        sampler.start()
        cfg = s.config(pools=pools_cfg(small_max=1, big=False),
                       targets=[{"repo": "o/a"}, {"repo": "o/b"}])
        out = reload(s, cfg)
        check("reloaded: 1 pools, 2 targets" in out
              and (job_status(s.gh, long_job) or {}).get("status") == "in_progress",
              "second reload applied while pool big still drains (long job running)")
        sampler.reset()
        js = s.gh.jobs("o/a", SMALL, count=3, duration_ms=300)
        wait_jobs_done(s.gh, js["job_ids"])
        check(sampler.max_pool.get("small", 0) == 1,
              "small max_runners 1 after reload: at most 1 runner (saw %d)"
              % sampler.max_pool.get("small", 0))

        # The long job finished on its runner; the idle big runner was stopped.
        wait_jobs_done(s.gh, [long_job], timeout=60)
        lj = job_status(s.gh, long_job)
        check(lj["conclusion"] == "success" and lj["runner_name"] == busy_runner,
              "busy runner of the removed pool finished its job (%s on %s)"
              % (lj["conclusion"], lj["runner_name"]))
        rdtest.wait_until(lambda: not any(r["pool"] == "big" for r in
                                          opskit.get_json(s.port)["runners"]), 30, 0.1,
                          "pool big's runners gone")
        calls = opskit.docker_calls(s.state_dir)
        stopped = set()
        for c in calls:
            if c.get("cmd") in ("stop", "kill"):
                stopped.update(a for a in c["argv"] if a.startswith("runnerd-"))
        check(set(idle_big) <= stopped and idle_big,
              "idle runner of the removed pool stopped (%r; stopped %r)" % (idle_big, stopped))
        check(busy_runner not in stopped, "busy runner %s never stopped or killed" % busy_runner)
        check(set(big_runners) - {busy_runner} <= stopped, "all other big runners stopped")
        st = opskit.get_json(s.port)
        check(not any(p["name"] == "big" for p in st["pools"]),
              "pool big no longer listed once empty")
        # No new big runner was started after the removal.
        names = opskit.run_names(s.state_dir)
        check(all(n in big_runners for n in names if opskit.pool_of(n, "rl") == "big"),
              "no runner of the removed pool started after the reload")

        # Host cap: host max_runners 2, pool max 8: at most 2 at once.
        cfg = s.config(pools=pools_cfg(small_max=8, big=False),
                       targets=[{"repo": "o/a"}, {"repo": "o/b"}],
                       host={"cpus": 16, "memory": "32GiB", "max_runners": 2})
        out = reload(s, cfg)
        check("reloaded:" in out, "reload with host max_runners 2 applied")
        sampler.reset()
        js = s.gh.jobs("o/a", SMALL, count=4, duration_ms=800)
        wait_jobs_done(s.gh, js["job_ids"])
        check(1 <= sampler.max_host <= 2, "host max_runners 2: at most 2 runners (saw %d)"
              % sampler.max_host)
        st = opskit.get_json(s.port)
        check(st["config"]["reloads_ok"] == 4 and st["config"]["last_error"] is None,
              "/status config: reloads_ok 4, last_error null (%r)" % st["config"])
        code = s.rd.stop()
        check(code == 0, "exit 0 on SIGTERM (%r)" % code)
        ok = not failures
    finally:
        if sampler:
            sampler.stop = True
        s.close(dump=not ok)


def scenario_credentials(tmp):
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("ghp_WrongTokenWrongTokenWrongToken0000\n")
    env = {"RD_WRONG_TOKEN": "ghp_AlsoWrongAlsoWrongAlsoWrong00000000",
           "RD_RIGHT_TOKEN": rdtest.TOKEN}
    s = opskit.Setup(tmp, instance="cred", targets=[{"repo": "o/c"}],
                     pools=[rdtest.pool("small", SMALL, "fake:x64")])
    ok = False
    try:
        s.gh.repos("o", ["c"])
        s.start(s.config(github={"token_file": tok}), env=env)

        def target_error():
            t = opskit.get_json(s.port)["targets"][0]
            return t["last_error"]
        err = rdtest.wait_until(target_error, 30, 0.2, "a poll error with the wrong token")
        check(True, "wrong token in token_file: polls fail (%s)" % err)
        j = s.gh.jobs("o/c", SMALL, count=1, duration_ms=200)["job_ids"][0]
        time.sleep(2.0)
        check(job_status(s.gh, j)["status"] == "queued", "job not served with the wrong token")

        # The file's content changes: reload takes it.
        with open(tok, "w") as f:
            f.write(rdtest.TOKEN + "\n")
        out = reload(s, None)
        check("reloaded:" in out, "reload after the token file changed")
        wait_jobs_done(s.gh, [j], timeout=60)
        check(True, "token_file content change took effect: job served")
        rdtest.wait_until(lambda: target_error() is None, 30, 0.2, "last_error cleared")

        # token_env switching to a wrong variable: polls fail again.
        out = reload(s, s.config(github={"token_env": "RD_WRONG_TOKEN"}))
        check("reloaded:" in out, "reload to token_env RD_WRONG_TOKEN applied")
        rdtest.wait_until(target_error, 30, 0.2, "a poll error after switching to the wrong env")
        j2 = s.gh.jobs("o/c", SMALL, count=1, duration_ms=200)["job_ids"][0]
        time.sleep(2.0)
        check(job_status(s.gh, j2)["status"] == "queued", "job not served with the wrong env var")

        # token_env naming an unset variable: refused, the old config runs on.
        out = reload(s, s.config(github={"token_env": "RD_UNSET_TOKEN_VAR"}))
        check("reload failed" in out and "RD_UNSET_TOKEN_VAR" in out,
              "token_env naming an unset variable refused with a message")
        out = reload(s, s.config(github={"token_env": "RD_RIGHT_TOKEN"}))
        check("reloaded:" in out, "reload to token_env RD_RIGHT_TOKEN applied")
        wait_jobs_done(s.gh, [j2], timeout=60)
        check(True, "token_env switch took effect: job served")
        logs = s.rd.logs()
        check(rdtest.TOKEN not in logs and "AlsoWrong" not in logs and "WrongToken" not in logs,
              "no token in the log")
        code = s.rd.stop()
        check(code == 0, "exit 0 on SIGTERM (%r)" % code)
        ok = not failures
    finally:
        s.close(dump=not ok)


def main():
    with opskit.TempDir() as tmp:
        scenario_pools(tmp)
    with opskit.TempDir() as tmp:
        scenario_credentials(tmp)
    if failures:
        print("test_reload: %d FAILED" % len(failures))
        return 1
    print("test_reload: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
