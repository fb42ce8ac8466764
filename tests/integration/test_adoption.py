#!/usr/bin/env python3
"""Restart adoption with the docker CLI double: runnerd is killed with SIGKILL
while runners are busy (and one is still starting); a new runnerd with the same
config adopts the running containers (no second runner for any job: one
jit_created per job), re-arms the job timer from the container's start time,
deletes an offline registration of its own instance that has no container
(and leaves another instance's alone), the jobs complete, and after SIGTERM no
container with the instance label and no registration remains; no JIT config
in argv or logs."""
import json
import signal
import sys
import time
import urllib.request

import e2eutil
import rdtest
from e2eutil import X64, events_of

REPO = "octo-cat/hello"
INSTANCE = "adopt"


def api(gh, method, path, body=None):
    req = urllib.request.Request(gh.url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + rdtest.TOKEN,
                                          "User-Agent": "rdtest",
                                          "Accept": "application/vnd.github+json",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def offline_registration(gh, name, labels):
    """A registration nobody runs: generate-jitconfig and never start a runner with it."""
    out = api(gh, "POST", "/repos/%s/actions/runners/generate-jitconfig" % REPO,
              {"name": name, "runner_group_id": 1, "labels": labels})
    return out["runner"]["id"]


def run_name(call):
    return call["argv"][call["argv"].index("--name") + 1]


def main():
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, INSTANCE)
        try:
            with e2eutil.CmdlineSampler(interval=0.1) as sampler:
                scenario(sc)
            assert sampler.hits == [], "JIT config in a process's argv: %r" % sampler.hits[:3]
            print("/proc/*/cmdline sampled %d times, no JIT config" % sampler.samples)
        except BaseException:
            e2eutil.dump_on_failure(sc, 10000)
            raise
        finally:
            sc.close()
    print("test_adoption: OK")
    return 0


def scenario(sc):
    gh = sc.gh
    gh.repos("octo-cat", ["hello"])
    # Distinct labels: a runner takes any job whose labels are a subset of its own.
    pools = [rdtest.pool("x64", X64 + ["plain"], "fake-runner:x64"),
             rdtest.pool("slow", X64 + ["slow"], "fake-runner:slowstart", startup_timeout="30s"),
             rdtest.pool("long", X64 + ["long"], "fake-runner:x64", job_timeout="10s")]
    cfg = sc.config(pools, [{"repo": REPO}], shutdown_grace="20s")
    # The jobs must outlive runnerd's restart, which under valgrind alone takes
    # seconds: their durations stretch with RD_TEST_TIMEOUT_SCALE.
    short = gh.jobs(REPO, X64 + ["plain"], count=3,
                    duration_ms=int(rdtest.scaled(9000)))["job_ids"]
    long_job = gh.jobs(REPO, X64 + ["long"], duration_ms=int(rdtest.scaled(60000)))["job_ids"][0]
    rd1 = sc.runnerd(cfg, name="runnerd1")
    rdtest.wait_until(lambda: len(events_of(sc.state(), "job_started")) == 4, 30, 0.1,
                      "4 busy runners")
    # One more job whose runner is still starting (5 s before it opens a session) at the kill.
    # Its container lives 5 s (slowstart) + the job after the kill: under valgrind the
    # restart alone can take 20 s on a loaded machine, so there the job is 25 s.
    slow_ms = 1000 if rdtest.TIME_SCALE == 1 else int(rdtest.scaled(5000))
    slow_job = gh.jobs(REPO, X64 + ["slow"], duration_ms=slow_ms)["job_ids"][0]
    rdtest.wait_until(lambda: [c for c in sc.calls("run") if "-slow-" in run_name(c)], 20, 0.05,
                      "docker run for the slow runner")
    rd1.kill9()
    t_kill = time.time()
    before = sc.containers()
    assert len(before) == 5, "containers must outlive runnerd: %r" % before
    orphan = "runnerd-%s-x64-zzz" % INSTANCE
    foreign = "runnerd-other-x64-zzz"
    offline_registration(gh, orphan, X64)
    foreign_id = offline_registration(gh, foreign, X64)

    rd2 = sc.runnerd(cfg, name="runnerd2")
    # Freeze the poller's view (GitHub's job lists lag too): the slow job stays "queued" in
    # runnerd's demand while the adopted slow runner comes online and takes it. runnerd must
    # count that busy runner against the job, not start a second runner for it.
    rdtest.wait_until(lambda: "running:" in rd2.logs(), 20, 0.1, "runnerd2 to run")
    time.sleep(1.5)
    gh.fault(path="/actions/runs", method="GET", kind="500", count=-1)
    rdtest.wait_until(lambda: [e for e in events_of(sc.state(), "job_started")
                               if e["job"] == slow_job], 30, 0.1, "the slow job to start")
    time.sleep(3)
    gh.call("DELETE", "/_control/faults")
    rdtest.wait_until(lambda: [e for e in events_of(sc.state(), "runner_deleted")
                               if e["runner"] == orphan], 20, 0.1,
                      "the offline registration without a container to be deleted")
    rdtest.wait_until(lambda: rd2.logs().count("restart: adopted") == 5, 20, 0.1,
                      "5 containers adopted")
    done = set(short + [slow_job])
    rdtest.wait_until(lambda: all(j["status"] == "completed" for j in sc.state()["jobs"]
                                  if j["id"] in done), 40, 0.2, "the adopted jobs to complete")
    rdtest.wait_until(lambda: [j for j in sc.state()["jobs"] if j["id"] == long_job][0]["status"]
                      == "completed", 30, 0.2, "the long job to hit its job timeout")
    st = sc.state()
    names = [r["name"] for r in st["runners"]]
    assert foreign in names, "another instance's registration was deleted: %r" % names
    ours = [e for e in events_of(st, "jit_created") if e["runner"].startswith(
        "runnerd-%s-" % INSTANCE) and not e["runner"].endswith("-zzz")]
    assert len(ours) == 5, "expected one runner per job, got %d: %r" % (len(ours), ours)
    started = events_of(st, "job_started")
    assert sorted(e["job"] for e in started) == sorted(short + [long_job, slow_job]), started
    for j in st["jobs"]:
        if j["id"] in done:
            assert j["conclusion"] == "success", j
    lj = [j for j in st["jobs"] if j["id"] == long_job][0]
    assert lj["conclusion"] == "cancelled", lj
    # The job timer counts from the container's start, not from the adoption.
    runs = {run_name(c): c["t"] for c in sc.calls("run")}
    stops = [c for c in sc.calls("stop") if lj["runner_name"] in c["argv"]]
    assert stops, "adopted runner over its job timeout was not stopped"
    after = stops[0]["t"] - runs[lj["runner_name"]]
    assert 8.0 <= after <= 13.5, "job timeout fired %.1fs after docker run (10s)" % after
    logs = rd2.logs()
    assert "over its job timeout" in logs
    assert "restart: deleting offline registration %s" % orphan in logs
    # Adopted runners were supervised through docker wait, not a second docker run.
    assert len(sc.calls("run")) == 5, [run_name(c) for c in sc.calls("run")]
    assert len([c for c in sc.calls("wait")]) >= 5
    print("adoption: restart at +%.1fs, %d adopted, long job stopped %.1fs after its start"
          % (time.time() - t_kill, 5, after))
    rd2.signal(signal.SIGTERM)
    code = rd2.proc.wait(40)
    assert code == 0, "runnerd exit %r" % code
    api(gh, "DELETE", "/repos/%s/actions/runners/%d" % (REPO, foreign_id))
    sc.check_clean()


if __name__ == "__main__":
    sys.exit(main())
