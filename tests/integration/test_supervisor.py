#!/usr/bin/env python3
"""runnerd's runners end to end with the docker CLI double (DESIGN.md section 3
"Runners" and "Restarts"): kill -9 and restart adopts running containers (no
second runner, no orphan container or registration), job and startup timeouts
fire, a docker that keeps failing backs off instead of looping and shows the
pool degraded once, min_idle keeps a warm runner. After every case: zero
containers with the instance label and zero registrations."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import rdtest

X64 = ["self-hosted", "linux", "x64"]
JIT_PREFIX = "eyIucnVubmVyIj"  # base64 of '{".runner"'


def events(gh, kind):
    return [e for e in gh.state()["events"] if e["kind"] == kind]


def jit_for(gh, name, labels=X64):
    """Register a runner as runnerd would, but leave it without a container."""
    req = urllib.request.Request(
        gh.url + "/repos/o/r/actions/runners/generate-jitconfig", method="POST",
        data=json.dumps({"name": name, "runner_group_id": 1, "labels": labels}).encode(),
        headers={"Authorization": "Bearer " + rdtest.TOKEN, "Content-Type": "application/json",
                 "User-Agent": "rdtest"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["runner"]["id"]


def assert_clean(gh, instance, env, rd, what, docker=rdtest.FAKE_DOCKER):
    st = gh.state()
    assert st["runners"] == [], "%s: registrations left: %r" % (what, st["runners"])
    left = rdtest.containers(docker, instance, env=env)
    assert left == [], "%s: containers left: %r" % (what, left)
    logs = rd.logs()
    assert JIT_PREFIX not in logs, "%s: JIT config in the log" % what
    assert rdtest.TOKEN not in logs, "%s: token in the log" % what


class Case:
    def __init__(self, tmp, name, docker=rdtest.FAKE_DOCKER, image="fake-runner:x64"):
        self.docker = docker
        self.image = image
        self.tmp = os.path.join(tmp, name)
        os.makedirs(self.tmp)
        self.name = name
        self.gh = rdtest.FakeGitHub(self.tmp)
        self.gh.repos("o", ["r"])
        self.env = {"FAKE_DOCKER_STATE": os.path.join(self.tmp, "docker")}
        self.denv = dict(os.environ, **self.env)
        self.rds = []

    def config(self, docker=None, shutdown_grace="5s", **poolkw):
        pools = [rdtest.pool("linux-x64", X64, poolkw.pop("image", self.image), **poolkw)]
        return rdtest.base_config(self.gh, docker or self.docker, pools, [{"repo": "o/r"}],
                                  instance=self.name, shutdown_grace=shutdown_grace)

    def runnerd(self, cfg, tag="runnerd"):
        rd = rdtest.Runnerd(self.tmp, cfg, env=self.env, name=tag)
        self.rds.append(rd)
        return rd.start()

    def close(self, failed):
        for rd in self.rds:
            if failed:
                sys.stderr.write("---- %s %s log tail\n" % (self.name, rd.log_path))
                sys.stderr.write(rd.logs()[-5000:])
            if rd.alive():
                rd.kill9()
        rdtest.remove_containers(self.docker, self.name, env=self.denv)
        self.gh.stop()


def case_restart(c):
    """kill -9 while two jobs run; the next runnerd adopts both containers."""
    # Long enough that the jobs outlive the restart and its adoption on a loaded machine.
    ids = c.gh.jobs("o/r", X64, count=2, duration_ms=20000)["job_ids"]
    cfg = c.config()
    rd1 = c.runnerd(cfg, "first")
    rdtest.wait_until(lambda: len(events(c.gh, "job_started")) == 2, 60, 0.1, "both jobs to start")
    rd1.kill9()
    running = rdtest.containers(c.docker, c.name, env=c.denv)
    assert len(running) == 2, "kill -9 of runnerd took containers with it: %r" % running
    # What a kill -9 between generate-jitconfig and docker run leaves behind, and a
    # container that never ran.
    jit_for(c.gh, "runnerd-%s-linux-x64-orphan1" % c.name)
    dead = "runnerd-%s-linux-x64-dead1" % c.name
    subprocess.run([c.docker, "create" if c.docker != rdtest.FAKE_DOCKER else "run", "--name", dead,
                    "--label", "runnerd.instance=" + c.name, "--label", "runnerd.pool=linux-x64",
                    "--network", "host", c.image], env=c.denv, capture_output=True, timeout=60)
    assert dead in rdtest.containers(c.docker, c.name, env=c.denv), "could not make a dead container"
    rd2 = c.runnerd(cfg, "second")
    adopted = "restart: adopted runnerd-%s-linux-x64-" % c.name
    rdtest.wait_until(lambda: rd2.logs().count(adopted) == 2, 30, 0.2, "both containers adopted")
    assert "busy" in rd2.logs().split(adopted)[1].split("\n")[0], "adopted runner not busy"
    rdtest.wait_until(lambda: all(j["status"] == "completed" for j in c.gh.state()["jobs"]), 60, 0.2,
                      "the adopted jobs to complete")
    st = c.gh.state()
    assert all(j["conclusion"] == "success" for j in st["jobs"]), st["jobs"]
    logs = rd2.logs()
    assert "orphan1" in logs and "no container" in logs, "orphan registration not deleted"
    assert "removing dead container " + dead in logs, "dead container not removed"
    created = [e["runner"] for e in st["events"] if e["kind"] == "jit_created"]
    assert len(created) == 3, "a second runner was started for an adopted job: %r" % created
    rdtest.wait_until(lambda: c.gh.state()["runners"] == [], 20, 0.2, "registrations to go")
    assert rd2.stop(30) == 0
    assert_clean(c.gh, c.name, c.denv, rd2, "restart", docker=c.docker)
    assert set(ids) == {j["id"] for j in st["jobs"]}


def case_job_timeout(c):
    """A job over job_timeout: docker stop (the runner cancels its job), registration gone."""
    c.gh.jobs("o/r", X64, count=1, duration_ms=60000)
    # Long enough for the container to start and take the job on a loaded machine.
    rd = c.runnerd(c.config(job_timeout="10s"))
    rdtest.wait_until(lambda: events(c.gh, "job_started"), 40, 0.2, "the job to start")
    rdtest.wait_until(lambda: "over its job timeout" in rd.logs(), 40, 0.2, "the job timeout")
    rdtest.wait_until(lambda: c.gh.state()["jobs"][0]["status"] == "completed", 30, 0.2,
                      "the timed-out job to end")
    assert c.gh.state()["jobs"][0]["conclusion"] == "cancelled"
    rdtest.wait_until(lambda: not rdtest.containers(rdtest.FAKE_DOCKER, c.name, env=c.denv), 30,
                      0.2, "the container to go")
    assert rd.stop(30) == 0
    assert_clean(c.gh, c.name, c.denv, rd, "job timeout")


def case_startup_timeout(c):
    """Never online in time: stopped, registration deleted, the pool backs off."""
    c.gh.jobs("o/r", X64, count=1, duration_ms=500)
    rd = c.runnerd(c.config(image="slowstart", startup_timeout="2s"))
    rdtest.wait_until(lambda: "startup timeout" in rd.logs() and "backs off" in rd.logs(), 40, 0.2,
                      "a startup timeout")
    rdtest.wait_until(lambda: len(events(c.gh, "runner_deleted")) >= 1, 30, 0.2,
                      "the registration to be deleted")
    assert rd.stop(30) == 0
    assert_clean(c.gh, c.name, c.denv, rd, "startup timeout")


def case_backoff(c):
    """docker run failing at once (image missing, daemon down): backoff, not a storm."""
    calls = os.path.join(c.tmp, "baddocker.calls")
    bad = os.path.join(c.tmp, "baddocker")
    with open(bad, "w") as f:
        f.write("#!/bin/sh\necho \"$1\" >> %s\n"
                "[ \"$1\" = run ] || { [ \"$1\" = ps ] && exit 0; exit 1; }\n"
                "echo 'Unable to find image missing:latest locally' >&2\n"
                "echo 'docker: Error response from daemon: pull access denied for missing.' >&2\n"
                "exit 125\n" % calls)
    os.chmod(bad, 0o755)
    c.gh.jobs("o/r", X64, count=2, duration_ms=500)
    rd = c.runnerd(c.config(docker=bad, image="missing"))
    rdtest.wait_until(lambda: "docker run" in rd.logs() or os.path.exists(calls), 30, 0.1,
                      "the first docker run")
    time.sleep(12)
    runs = [l.strip() for l in open(calls)].count("run")
    assert 2 <= runs <= 10, "%d docker run calls in about 12 s: no backoff?" % runs
    logs = rd.logs()
    assert logs.count("is degraded") == 1, "degraded logged %d times" % logs.count("is degraded")
    assert rd.stop(30) == 0
    st = c.gh.state()
    assert st["runners"] == [], "registrations left: %r" % st["runners"]
    assert all(j["status"] == "queued" for j in st["jobs"]), st["jobs"]
    print("  backoff: %d docker run calls in about 12 s" % runs)


def case_min_idle(c):
    """min_idle 1 and no jobs: one warm runner comes online and stays."""
    rd = c.runnerd(c.config(min_idle=1, idle_timeout="2s"))
    rdtest.wait_until(lambda: [r for r in c.gh.state()["runners"] if r["status"] == "online"], 40,
                      0.2, "a warm runner online")
    time.sleep(4)  # longer than idle_timeout: min_idle keeps it
    st = c.gh.state()
    assert len(st["runners"]) == 1, st["runners"]
    assert len(events(c.gh, "jit_created")) == 1, "warm runner replaced or duplicated"
    # A job arrives: the warm runner takes it, and a new warm runner replaces it.
    c.gh.jobs("o/r", X64, count=1, duration_ms=500)
    rdtest.wait_until(lambda: c.gh.state()["jobs"][0]["status"] == "completed", 30, 0.2,
                      "the job to run on the warm runner")
    rdtest.wait_until(lambda: len(events(c.gh, "jit_created")) == 2, 30, 0.2, "a new warm runner")
    assert rd.stop(30) == 0
    assert_clean(c.gh, c.name, c.denv, rd, "min_idle")


def main():
    if not os.path.exists(rdtest.RUNNERD):
        rdtest.skip_or_fail("runnerd not built: " + rdtest.RUNNERD)
    only = os.environ.get("ONLY")
    cases = [case_restart, case_job_timeout, case_startup_timeout, case_backoff, case_min_idle]
    with rdtest.TempDir() as tmp:
        for fn in cases:
            if only and fn.__name__ != only:
                continue
            name = fn.__name__.replace("case_", "sv").replace("_", "")
            print("== %s" % fn.__name__, flush=True)
            t0 = time.time()
            c = Case(tmp, name)
            failed = True
            try:
                fn(c)
                failed = False
            finally:
                c.close(failed)
            print("   ok in %.1fs" % (time.time() - t0), flush=True)
    print("test_supervisor: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
