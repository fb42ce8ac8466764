#!/usr/bin/env python3
"""Integration test of tests/fake_docker/fake_docker against the fake GitHub.

Checks that the docker-CLI double plays a runner (session, job, completion),
keeps the JIT config out of argv and output, speaks docker's formats and exit
codes for run/ps/inspect/stop/kill/rm/wait, and that a container outlives
the process that started it (what lets runnerd adopt it after a restart).
Standard library only. Exit 0 = pass, 1 = fail, 77 = skip (outside CI only).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.environ.get("RUNNERD_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FD = os.path.join(SRC, "tests", "fake_docker", "fake_docker")
FAKE_GH = os.environ.get("FAKE_GITHUB_PY") or os.path.join(SRC, "tests", "fake_github", "fake_github.py")
JIT_VAR = "ACTIONS_RUNNER_INPUT_JITCONFIG"
TOKEN = "ghp_faketesttoken"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

FAILS = []


def check(cond, what):
    if cond:
        print("ok   %s" % what)
    else:
        print("FAIL %s" % what)
        FAILS.append(what)
    return cond


def skip_or_fail(reason):
    if os.environ.get("CI") == "true":
        print("FAIL: %s (CI=true: not skipping)" % reason)
        sys.exit(1)
    print("SKIP: %s" % reason)
    sys.exit(77)


class FakeGitHub:
    def __init__(self, tmp):
        port_file = os.path.join(tmp, "gh.port")
        self.log = open(os.path.join(tmp, "gh.log"), "w")
        self.proc = subprocess.Popen([sys.executable, FAKE_GH, "--port", "0", "--port-file", port_file,
                                      "--token", TOKEN], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake GitHub did not start (see %s/gh.log)" % tmp)
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.base = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None, auth=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", "Bearer " + TOKEN)
            req.add_header("Accept", "application/vnd.github+json")
        with OPENER.open(req, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def jit(self, name, labels):
        r = self.call("POST", "/repos/o/r/actions/runners/generate-jitconfig",
                      {"name": name, "runner_group_id": 1, "labels": labels, "work_folder": "_work"},
                      auth=True)
        return r["encoded_jit_config"]

    def state(self):
        return self.call("GET", "/_control/state")

    def job(self, jid):
        return next(j for j in self.state()["jobs"] if j["id"] == jid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Env:
    def __init__(self, tmp, gh):
        self.tmp = tmp
        self.gh = gh
        self.state = os.path.join(tmp, "state")
        self.secrets = []
        self.outputs = []

    def env(self, jit=None, **extra):
        e = dict(os.environ)
        e.pop(JIT_VAR, None)
        e["FAKE_DOCKER_STATE"] = self.state
        if jit is not None:
            e[JIT_VAR] = jit
            self.secrets.append(jit)
        e.update(extra)
        return e

    def docker(self, *args, timeout=30, **extra):
        """A quick CLI call (through the interpreter, skipping the shebang's PATH lookup)."""
        p = subprocess.run([sys.executable, FD] + list(args), env=self.env(**extra), timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.outputs.append(p.stdout + p.stderr)
        return p

    def run_argv(self, name, image, extra=(), instance="t1", pool="p1"):
        return [FD, "run", "--rm", "--name", name, "--sig-proxy=false",
                "--label", "runnerd.instance=" + instance, "--label", "runnerd.pool=" + pool,
                "--label", "runnerd.runner-id=1", "--label", "runnerd.scope=repos/o/r",
                "--cpus", "1", "--memory", "512MiB", "--pids-limit", "256",
                "--security-opt", "no-new-privileges", "--network", "host"] + list(extra) + \
               ["-e", JIT_VAR, image, "/home/runner/run.sh"]

    def start_run(self, name, image, labels, extra=(), **kw):
        jit = self.gh.jit(name, labels)
        p = subprocess.Popen(self.run_argv(name, image, extra, **kw), env=self.env(jit=jit),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return p, jit

    def finish(self, p, timeout=30):
        out, errout = p.communicate(timeout=timeout)
        self.outputs.append(out + errout)
        return p.returncode, out, errout

    def start_wait(self, name):
        """`docker wait NAME` in the background, returned once it is blocking."""
        def waits():
            try:
                with open(os.path.join(self.state, "calls.jsonl")) as f:
                    return sum(1 for ln in f if json.loads(ln)["cmd"] == "wait")
            except OSError:
                return 0
        before = waits()
        w = subprocess.Popen([sys.executable, FD, "wait", name], env=self.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while waits() == before and time.monotonic() < deadline and w.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)  # from its call record to its first look at the container
        return w

    def wait_state(self, name, state, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.docker("inspect", "--format", "{{.State.Status}}", name)
            if p.returncode == 0 and p.stdout.strip() == state:
                return True
            time.sleep(0.1)
        return False

    def wait_runner(self, name, status="online", timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.gh.state()["runners"]:
                if r["name"] == name and r["status"] == status:
                    return r
            time.sleep(0.1)
        return None


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def test_job_lifecycle(t):
    gh = t.gh
    labels = ["self-hosted", "linux", "x64"]
    # The job is queued only once the checks below are done, so that nothing
    # depends on how fast this machine runs them.
    p, jit = t.start_run("rn-life", "runner:1", labels)
    check(t.wait_runner("rn-life", "online") is not None, "runner goes online")
    check(t.wait_state("rn-life", "running"), "inspect says running")

    argv = cmdline(p.pid).split("\0")
    check(jit not in cmdline(p.pid) and argv[argv.index("-e") + 1] == JIT_VAR,
          "JIT config not in run's argv (-e %s only names it)" % JIT_VAR)
    ins = t.docker("inspect", "rn-life")
    check(ins.returncode == 0, "inspect exits 0")
    obj = json.loads(ins.stdout)
    check(isinstance(obj, list) and len(obj) == 1, "inspect prints a JSON array")
    o = obj[0]
    check(o["Name"] == "/rn-life" and re.fullmatch(r"[0-9a-f]{64}", o["Id"]), "inspect Name and Id")
    check(o["State"]["Running"] is True and o["State"]["Pid"] > 0, "inspect State.Running/Pid")
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", o["State"]["StartedAt"]),
          "inspect State.StartedAt is RFC3339Nano")
    check(o["Config"]["Labels"].get("runnerd.instance") == "t1", "inspect Config.Labels")
    cpid = o["State"]["Pid"]
    check(jit not in cmdline(cpid), "JIT config not in the container's argv")

    fmt = '{{.ID}}\\t{{.Names}}\\t{{.Labels}}\\t{{.State}}\\t{{.Status}}\\t{{.CreatedAt}}\\t{{.Image}}\\t{{.Label "runnerd.pool"}}'
    ps = t.docker("ps", "-a", "--no-trunc", "--filter", "label=runnerd.instance=t1", "--format", fmt)
    rows = [ln.split("\t") for ln in ps.stdout.splitlines()]
    check(ps.returncode == 0 and len(rows) == 1, "ps lists the one container")
    if rows and len(rows[0]) == 8:
        cid, name, lab, state, status, created, image, pool = rows[0]
        check(cid == o["Id"] and name == "rn-life", "ps ID/Names")
        check("runnerd.pool=p1" in lab.split(","), "ps Labels")
        check(state == "running" and status.startswith("Up "), "ps State/Status")
        check(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC", created), "ps CreatedAt")
        check(image == "runner:1" and pool == "p1", "ps Image and Label")
    else:
        check(False, "ps row has 8 tab-separated fields: %r" % ps.stdout)
    ps = t.docker("ps", "-a", "--filter", "label=runnerd.instance=other", "--format", "{{.Names}}")
    check(ps.returncode == 0 and ps.stdout == "", "ps label filter excludes other instances")
    ps = t.docker("ps", "--filter", "label=runnerd.instance", "--format", "{{json .}}")
    js = [json.loads(ln) for ln in ps.stdout.splitlines()]
    check(len(js) == 1 and js[0]["Names"] == "rn-life" and js[0]["State"] == "running"
          and len(js[0]["ID"]) == 12, "ps --format '{{json .}}'")
    ins = t.docker("inspect", "--format", '{{.State.Running}} {{index .Config.Labels "runnerd.scope"}} {{.Name}}',
                   "rn-life")
    check(ins.stdout.strip() == "true repos/o/r /rn-life", "inspect --format template")
    w = t.start_wait("rn-life")
    # 2 s: time enough for `docker wait` to find the container on a loaded machine
    q = gh.call("POST", "/_control/jobs", {"repo": "o/r", "labels": labels, "count": 1, "duration_ms": 2000})
    jid = q["job_ids"][0]
    rc, out, errout = t.finish(p)
    check(rc == 0, "run exits 0 after the job (rc=%s)" % rc)
    check("\u221a Connected to GitHub" in out, "log: Connected to GitHub")
    check("Running job: " in out, "log: Running job")
    check(re.search(r"Job .* completed with result: Succeeded", out) is not None, "log: job completed")
    wout, _ = w.communicate(timeout=10)
    check(w.returncode == 0 and wout.strip() == "0", "wait prints the exit code 0 (%r)" % wout)
    lg = t.docker("logs", "rn-life")
    check(lg.returncode == 1, "logs of a removed container fails")
    j = gh.job(jid)
    check(j["status"] == "completed" and j["conclusion"] == "success", "job completed with success")
    check(j["runner_name"] == "rn-life", "job was run by that runner")
    check(j["runner_arch"] == os.uname().machine, "runner reported uname -m (%s)" % j["runner_arch"])
    check(not any(r["name"] == "rn-life" for r in gh.state()["runners"]), "ephemeral runner deleted")
    ps = t.docker("ps", "-a", "--format", "{{.Names}}")
    check("rn-life" not in ps.stdout, "--rm removed the container")
    ins = t.docker("inspect", "rn-life")
    check(ins.returncode == 1 and ins.stdout.strip() == "[]" and "No such object: rn-life" in ins.stderr,
          "inspect of a removed container: [] and exit 1")


def test_arm64_platform(t):
    labels = ["self-hosted", "linux", "arm64"]
    q = t.gh.call("POST", "/_control/jobs", {"repo": "o/r", "labels": labels, "count": 1, "duration_ms": 100})
    p, _ = t.start_run("rn-arm", "runner:1", labels, extra=["--platform", "linux/arm64"])
    rc, out, _ = t.finish(p)
    j = t.gh.job(q["job_ids"][0])
    check(rc == 0 and j["status"] == "completed", "arm64 job completed")
    check(j["runner_arch"] == "aarch64", "--platform linux/arm64 reports aarch64 (%s)" % j["runner_arch"])


def test_stop_kill(t):
    labels = ["self-hosted", "linux", "x64"]
    p, _ = t.start_run("rn-stop", "hang:1", labels)
    check(t.wait_runner("rn-stop") is not None, "hang image opens a session")
    w = t.start_wait("rn-stop")
    t0 = time.monotonic()
    s = t.docker("stop", "-t", "30", "rn-stop")
    check(s.returncode == 0 and s.stdout.strip() == "rn-stop", "stop prints the name, exit 0")
    check(time.monotonic() - t0 < 15, "stop does not wait -t for a runner that handles SIGTERM")
    rc, _, _ = t.finish(p)
    check(rc == 143, "run exits 143 after docker stop (rc=%s)" % rc)
    wout, _ = w.communicate(timeout=10)
    check(wout.strip() == "143", "wait prints 143 after stop (%r)" % wout)

    # kill, on a container without --rm so that it stays listed as exited
    jit = t.gh.jit("rn-kill", labels)
    argv = [a for a in t.run_argv("rn-kill", "hang:1") if a != "--rm"]
    p = subprocess.Popen(argv, env=t.env(jit=jit), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(t.wait_runner("rn-kill") is not None, "second hang runner online")
    k = t.docker("kill", "rn-kill")
    check(k.returncode == 0 and k.stdout.strip() == "rn-kill", "kill prints the name, exit 0")
    rc, _, _ = t.finish(p)
    check(rc == 137, "run exits 137 after docker kill (rc=%s)" % rc)
    ps = t.docker("ps", "-a", "--filter", "name=rn-kill", "--format", "{{.State}}|{{.Status}}")
    check(re.fullmatch(r"exited\|Exited \(137\) .* ago", ps.stdout.strip()), "ps shows Exited (137): %r" % ps.stdout)
    ps = t.docker("ps", "--filter", "name=rn-kill", "--format", "{{.Names}}")
    check(ps.stdout == "", "ps without -a hides exited containers")
    w = t.docker("wait", "rn-kill")
    check(w.returncode == 0 and w.stdout.strip() == "137", "wait on an exited container prints 137")
    k = t.docker("kill", "rn-kill")
    check(k.returncode == 1 and "is not running" in k.stderr, "kill of an exited container: exit 1")
    lg = t.docker("logs", "rn-kill")
    check(lg.returncode == 0 and "Connected to GitHub" in lg.stdout, "logs of an exited container")
    r = t.docker("rm", "rn-kill")
    check(r.returncode == 0 and r.stdout.strip() == "rn-kill", "rm of the exited container")

    # stubborn runner ignores SIGTERM: stop -t 1 has to SIGKILL
    p, _ = t.start_run("rn-stub", "stubborn-hang:1", labels)
    check(t.wait_runner("rn-stub") is not None, "stubborn runner online")
    s = t.docker("stop", "-t", "1", "rn-stub")
    rc, _, _ = t.finish(p)
    check(s.returncode == 0 and rc == 137, "stop -t 1 kills a runner ignoring SIGTERM (rc=%s)" % rc)

    # rm without -f refuses a running container; rm -f kills it
    jit = t.gh.jit("rn-rm", labels)
    argv = [a for a in t.run_argv("rn-rm", "hang:1") if a != "--rm"]
    p = subprocess.Popen(argv, env=t.env(jit=jit), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(t.wait_state("rn-rm", "running"), "rn-rm running")
    r = t.docker("rm", "rn-rm")
    check(r.returncode == 1 and "cannot remove a running container" in r.stderr, "rm of a running container fails")
    r = t.docker("rm", "-f", "rn-rm")
    rc, _, _ = t.finish(p)
    check(r.returncode == 0 and rc == 137, "rm -f kills and removes (rc=%s)" % rc)
    check(t.docker("inspect", "rn-rm").returncode == 1, "rm -f removed it")


def test_errors(t):
    for cmd in (["stop", "nope"], ["wait", "nope"], ["rm", "nope"]):
        r = t.docker(*cmd)
        check(r.returncode == 1 and r.stderr.strip() == "Error response from daemon: No such container: nope",
              "%s of a missing container: exit 1 and docker's message" % cmd[0])
    r = t.docker("kill", "nope")
    check(r.returncode == 1 and "No such container: nope" in r.stderr, "kill of a missing container")
    r = t.docker("run", "--bogus", "x")
    check(r.returncode == 125 and "unknown flag: --bogus" in r.stderr, "run: unknown flag exits 125")
    r = t.docker("frobnicate")
    check(r.returncode == 1 and "unknown command" in r.stderr, "unknown command exits 1")
    r = t.docker("run", "--rm", "--name", "m1", "--network", "host", "registry/missing-image:1")
    check(r.returncode == 125 and "Unable to find image 'registry/missing-image:1' locally" in r.stderr
          and "pull access denied" in r.stderr, "missing image: exit 125 with docker's messages")
    r = t.docker("run", "--rm", "--name", "m2", "--pull", "never", "missing")
    check(r.returncode == 125 and "No such image: missing:latest" in r.stderr, "missing image with --pull never")
    r = t.docker("run", "--rm", "--name", "m3", "--pull", "sometimes", "img")
    check(r.returncode == 125 and "invalid pull option" in r.stderr, "bad --pull value exits 125")
    r = t.docker("run", "--rm", "--name", "m4", "-e", JIT_VAR + "=c2VjcmV0", "img")
    check(r.returncode == 125 and "c2VjcmV0" not in r.stdout + r.stderr, "JIT config with a value in argv is refused")
    r = t.docker("version", "--format", "{{.Server.Version}}")
    check(r.returncode == 0 and r.stdout.strip() != "", "version --format")
    r = t.docker("info", "--format", "{{json .}}")
    check(r.returncode == 0 and json.loads(r.stdout)["NCPU"] >= 1, "info --format '{{json .}}'")
    r = t.docker("ps", "--format", "{{.Nope}}")
    check(r.returncode == 0 or r.returncode == 1, "ps with a bad template does not crash")
    r = t.docker("ps", "--filter", "bogus=1")
    check(r.returncode == 1 and "Invalid filter 'bogus'" in r.stderr, "ps: invalid filter")
    r = t.docker("info", FAKE_DOCKER_DOWN="1")
    check(r.returncode == 1 and "Cannot connect to the Docker daemon" in r.stderr, "FAKE_DOCKER_DOWN=1")

    labels = ["self-hosted", "linux", "x64"]
    p, _ = t.start_run("rn-crash", "crash:1", labels)
    rc, out, _ = t.finish(p)
    check(rc == 1 and "Connected to GitHub" in out, "crash image: session, then exit 1 (rc=%s)" % rc)

    # name conflict while a container of that name runs
    p, _ = t.start_run("rn-dup", "hang:1", labels)
    check(t.wait_state("rn-dup", "running"), "rn-dup running")
    jit = t.gh.jit("rn-dup-b", labels)
    r = subprocess.run(t.run_argv("rn-dup", "hang:1"), env=t.env(jit=jit), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    t.outputs.append(r.stdout + r.stderr)
    check(r.returncode == 125 and 'Conflict. The container name "/rn-dup" is already in use' in r.stderr,
          "name conflict exits 125")
    t.docker("kill", "rn-dup")
    t.finish(p)

    # FAKE_DOCKER_FAIL_RUN=2: two failures, then a working run
    q = t.gh.call("POST", "/_control/jobs", {"repo": "o/r", "labels": labels, "count": 1, "duration_ms": 100})
    codes = []
    for i in range(3):
        jit = t.gh.jit("rn-fail-%d" % i, labels)
        r = subprocess.run(t.run_argv("rn-fail-%d" % i, "runner:1"), env=t.env(jit=jit, FAKE_DOCKER_FAIL_RUN="2"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        t.outputs.append(r.stdout + r.stderr)
        codes.append(r.returncode)
    check(codes == [125, 125, 0], "FAKE_DOCKER_FAIL_RUN=2 fails two runs then works (%s)" % codes)
    check(t.gh.job(q["job_ids"][0])["status"] == "completed", "third run completed the job")


def test_survives_parent(t):
    """runnerd killed -9: the container keeps running, takes a job and can be adopted."""
    labels = ["self-hosted", "linux", "x64"]
    jit = t.gh.jit("rn-orphan", labels)
    # A stand-in for runnerd: spawns docker run with its stdout/stderr on pipes, then sleeps.
    parent_code = ("import subprocess, sys, time\n"
                   "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
                   "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code] + t.run_argv("rn-orphan", "runner:1"),
                              env=t.env(jit=jit), start_new_session=True)
    check(t.wait_runner("rn-orphan") is not None, "orphan-to-be is online")
    check(t.wait_state("rn-orphan", "running"), "orphan-to-be runs")
    # kill the parent's whole process group, as a crash of runnerd under systemd would
    os.killpg(parent.pid, signal.SIGKILL)
    parent.wait()
    time.sleep(0.5)
    ps = t.docker("ps", "--filter", "label=runnerd.instance=t1", "--format", "{{.Names}} {{.State}}")
    check("rn-orphan running" in ps.stdout, "container still running after its parent died: %r" % ps.stdout)
    w = t.start_wait("rn-orphan")
    # its stdout pipe has no reader any more: writing the job's log lines must not kill it
    q = t.gh.call("POST", "/_control/jobs", {"repo": "o/r", "labels": labels, "count": 1, "duration_ms": 2000})
    wout, _ = w.communicate(timeout=60)
    check(w.returncode == 0 and wout.strip() == "0", "adopted container: wait prints 0 (%r)" % wout)
    j = t.gh.job(q["job_ids"][0])
    check(j["status"] == "completed" and j["runner_name"] == "rn-orphan", "orphaned runner completed its job")


def main():
    if not os.path.exists(FAKE_GH):
        skip_or_fail("fake GitHub %s is not there yet" % FAKE_GH)
    if not os.access(FD, os.X_OK):
        print("FAIL: %s is not executable" % FD)
        return 1
    tmp = tempfile.mkdtemp(prefix="test_fake_docker.")
    gh = FakeGitHub(tmp)
    t = Env(tmp, gh)
    try:
        gh.call("POST", "/_control/repos", {"owner": "o", "names": ["r"]})
        for test in (test_job_lifecycle, test_arm64_platform, test_stop_kill, test_errors, test_survives_parent):
            print("== %s" % test.__name__)
            try:
                test(t)
            except Exception as e:  # report and go on with the next test
                check(False, "%s raised %s: %s" % (test.__name__, type(e).__name__, e))
        # secrets: never in any output nor in the state directory
        blob = "\n".join(t.outputs)
        for root, _, files in os.walk(t.state):
            for fn in files:
                with open(os.path.join(root, fn), errors="replace") as f:
                    blob += f.read()
        leaked = [s for s in t.secrets if s in blob]
        check(not leaked, "no JIT config in any output, log or state file")
        with open(os.path.join(t.state, "calls.jsonl")) as f:
            calls = [json.loads(ln) for ln in f]
        runs = [c for c in calls if c["cmd"] == "run" and c.get("jit_env")]
        check(len(runs) >= 5, "calls.jsonl records run calls with jit_env=true")
        check(any(c.get("jit_in_argv") for c in calls), "calls.jsonl flags a JIT config in argv")
    finally:
        # clean up anything still running
        st = t.docker("ps", "-q", "--no-trunc")
        ids = st.stdout.split()
        if ids:
            t.docker("kill", *ids)
        gh.stop()
        if not FAILS:
            shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d check(s) failed (state kept in %s)" % (len(FAILS), tmp))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
