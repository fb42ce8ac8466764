#!/usr/bin/env python3
"""Runner lifecycle end to end, with the docker CLI double (tests/fake_docker):
job timeout (docker stop, then kill for a container ignoring SIGTERM), startup
timeout with backoff, idle timeout and min_idle, a job cancelled while its
runner starts, image missing (backoff, not a storm; pool degraded), SIGTERM
drain (busy runners finish; or are stopped when shutdown_grace is shorter),
host caps (memory, max_runners). Every scenario ends with zero containers with
its instance label, zero registrations, no JIT config in argv or logs.
Scenarios run a few at a time, each with its own fake GitHub and runnerd."""
import os
import signal
import sys
import time

import e2eutil
import rdtest
from e2eutil import X64, events_of

REPO = "octo-cat/hello"


def names_with(evs, pool_part):
    return [e for e in evs if (e.get("runner") or "").find("-%s-" % pool_part) > 0]


def started_scenario(tmp, instance):
    sc = e2eutil.Scenario(tmp, instance)
    sc.gh.repos("octo-cat", ["hello"])
    return sc


def finish(sc, rd, timeout=40):
    code = rd.stop(timeout=timeout)
    assert code == 0, "runnerd exit %r" % code
    sc.check_clean()


def scenario(fn):
    """Wrap a scenario: fresh fake GitHub and docker state; logs shown on failure."""
    def run(tmp):
        sc = started_scenario(tmp, "lc-" + fn.__name__.replace("_", "")[:12])
        try:
            fn(sc)
        except BaseException:
            e2eutil.dump_on_failure(sc)
            raise
        finally:
            sc.close()
    run.__name__ = fn.__name__
    return run


@scenario
def job_timeout(sc):
    """job_timeout 3 s: the container is stopped (SIGTERM: the runner cancels its job) or,
    ignoring SIGTERM, killed; the registration is deleted, no second runner is started."""
    pools = [rdtest.pool("quick", X64 + ["quick"], "fake-runner:x64", job_timeout="3s"),
             rdtest.pool("stub", X64 + ["stub"], "fake-runner:stubborn", job_timeout="3s")]
    rd = sc.runnerd(sc.config(pools, [{"repo": REPO}]))
    jq = sc.gh.jobs(REPO, X64 + ["quick"], duration_ms=60000)["job_ids"][0]
    js = sc.gh.jobs(REPO, X64 + ["stub"], duration_ms=60000)["job_ids"][0]
    rdtest.wait_until(lambda: len(events_of(sc.state(), "job_started")) == 2, 30, 0.2,
                      "both jobs to start")
    t_started = time.time()
    # The polite one: docker stop, the runner reports its job cancelled, GitHub removes it.
    rdtest.wait_until(lambda: sc.state()["jobs"][0]["status"] == "completed", 20, 0.2,
                      "the quick job to be cancelled by docker stop")
    st = sc.state()
    quick = [j for j in st["jobs"] if j["id"] == jq][0]
    assert quick["conclusion"] == "cancelled", quick
    # The stubborn one: docker stop -t escalates to SIGKILL; GitHub still shows it busy, so the
    # delete answers 422 and is retried until GitHub gives up on the job.
    rdtest.wait_until(lambda: len(sc.containers()) == 0, 30, 0.2, "both containers to be gone")
    stub_name = [j for j in sc.state()["jobs"] if j["id"] == js][0]["runner_name"]
    quick_name = quick["runner_name"]
    rdtest.wait_until(lambda: sc.logs().count(": docker run exited with ") >= 2, 20, 0.2,
                      "runnerd to see both docker run children exit")
    logs = sc.logs()
    assert "%s: over its job timeout" % quick_name in logs, logs[-3000:]
    assert "%s: over its job timeout" % stub_name in logs, logs[-3000:]
    assert "%s: docker run exited with 143" % quick_name in logs
    assert "%s: docker run exited with 137" % stub_name in logs, "stubborn container not killed"
    stops = [c for c in sc.calls("stop")]
    runs = {c["argv"][c["argv"].index("--name") + 1]: c["t"] for c in sc.calls("run")}
    for name in (quick_name, stub_name):
        s = [c for c in stops if name in c["argv"]]
        assert s, "no docker stop for %s" % name
        waited = s[0]["t"] - runs[name]
        assert 2.0 <= waited <= 8.0, "stopped %.1fs after docker run (job_timeout 3s)" % waited
    rdtest.wait_until(lambda: "still running a job" in sc.logs(), 20, 0.2,
                      "a 422 on deleting the busy registration")
    assert [r["name"] for r in sc.state()["runners"]] == [stub_name]
    sc.gh.call("POST", "/_control/jobs/%d" % js, {"status": "completed", "conclusion": "failure"})
    rdtest.wait_until(lambda: sc.state()["runners"] == [], 30, 0.2,
                      "the stubborn runner's registration to be deleted")
    assert len(events_of(sc.state(), "jit_created")) == 2, "a timed-out job got a second runner"
    assert time.time() - t_started < 60
    finish(sc, rd)


@scenario
def startup_timeout(sc):
    """A runner never online within startup_timeout is stopped and deleted, then retried with
    growing delays (pool backoff); never two attempts at once; the pool turns degraded."""
    pools = [rdtest.pool("slow", X64, "fake-runner:slowstart", startup_timeout="2s")]
    rd = sc.runnerd(sc.config(pools, [{"repo": REPO}]))
    sc.gh.jobs(REPO, X64, duration_ms=500)
    rdtest.wait_until(lambda: len(events_of(sc.state(), "jit_created")) >= 4, 40, 0.25,
                      "four startup attempts")
    st = sc.state()
    created = sorted(e["t"] for e in events_of(st, "jit_created"))
    assert events_of(st, "runner_online") == [], "slowstart runner came online?"
    assert events_of(st, "job_started") == []
    # The next attempt may register while the last one's container is still being stopped.
    assert e2eutil.max_concurrent(st["events"]) <= 2, "attempts pile up"
    gaps = [(b - a) / 1000.0 for a, b in zip(created, created[1:])]
    # attempt = 2 s startup timeout + stop + backoff (1 s, 2 s, 4 s, with jitter)
    assert all(g >= 2.0 for g in gaps), gaps
    assert gaps[-1] > gaps[0], "no backoff between attempts: %r" % gaps
    logs = sc.logs()
    assert logs.count("not online within its startup timeout") >= 3, logs[-3000:]
    assert "pool slow is degraded" in logs
    deleted = events_of(st, "runner_deleted")
    assert len(deleted) >= len(created) - 1, "registrations of timed-out runners not deleted"
    finish(sc, rd)
    assert sc.state()["jobs"][0]["status"] == "queued"


@scenario
def idle_and_min_idle(sc):
    """min_idle 1 keeps one warm runner (beyond idle_timeout, replaced after it takes a job);
    a runner whose job is cancelled while it starts comes online, idles, and is stopped after
    idle_timeout; nothing leaks."""
    pools = [rdtest.pool("warm", X64 + ["warm"], "fake-runner:x64", min_idle=1,
                         idle_timeout="3s"),
             rdtest.pool("cold", X64 + ["cold"], "fake-runner:slowstart", idle_timeout="3s",
                         startup_timeout="30s")]
    rd = sc.runnerd(sc.config(pools, [{"repo": REPO}]))
    rdtest.wait_until(lambda: names_with(events_of(sc.state(), "runner_online"), "warm"), 20,
                      0.2, "a warm runner online with no job queued")
    job = sc.gh.jobs(REPO, X64 + ["cold"], duration_ms=500)["job_ids"][0]
    rdtest.wait_until(lambda: names_with(events_of(sc.state(), "jit_created"), "cold"), 20, 0.05,
                      "a runner for the cold job")
    sc.gh.call("POST", "/_control/jobs/%d" % job, {"status": "cancelled"})
    rdtest.wait_until(lambda: names_with(events_of(sc.state(), "runner_deleted"), "cold"), 40,
                      0.2, "the cold runner, idle after the cancel, to be stopped and deleted")
    st = sc.state()
    online = names_with(events_of(st, "runner_online"), "cold")
    deleted = names_with(events_of(st, "runner_deleted"), "cold")
    assert len(online) == 1 and len(deleted) == 1, st["events"]
    idle_for = (deleted[0]["t"] - online[0]["t"]) / 1000.0
    assert 2.9 <= idle_for <= 15, "idle runner stopped after %.1fs (idle_timeout 3s)" % idle_for
    assert events_of(st, "job_started") == []
    assert "docker run exited with 143" in sc.logs()
    # The warm runner outlived several idle timeouts: still one, never deleted.
    assert len(names_with(events_of(st, "jit_created"), "warm")) == 1, st["events"]
    assert names_with(events_of(st, "runner_deleted"), "warm") == []
    assert len(names_with(events_of(st, "jit_created"), "cold")) == 1, "cold pool restarted?"
    # A warm job: the warm runner takes it at once, and a new warm runner replaces it.
    wj = sc.gh.jobs(REPO, X64 + ["warm"], duration_ms=300)["job_ids"][0]
    rdtest.wait_until(lambda: len(names_with(events_of(sc.state(), "runner_online"), "warm"))
                      == 2, 30, 0.2, "a second warm runner")
    st = sc.state()
    started = [e for e in events_of(st, "job_started") if e["job"] == wj]
    assert started and started[0]["runner"] == names_with(events_of(st, "jit_created"),
                                                          "warm")[0]["runner"]
    rdtest.wait_until(lambda: [r for r in sc.state()["runners"]] and
                      len(sc.state()["runners"]) == 1, 20, 0.2, "one warm registration")
    finish(sc, rd)
    st = sc.state()
    assert [j["status"] for j in st["jobs"]] == ["completed", "completed"], st["jobs"]


@scenario
def image_missing(sc):
    """An image that does not exist: docker run fails (125), the pool backs off and is
    degraded; over 15 s only a handful of docker run calls, every registration deleted."""
    pools = [rdtest.pool("miss", X64, "fake-runner:missing")]
    rd = sc.runnerd(sc.config(pools, [{"repo": REPO}]))
    sc.gh.jobs(REPO, X64, count=2, duration_ms=500)
    rdtest.wait_until(lambda: sc.calls("run"), 20, 0.1, "a first docker run")
    t0 = sc.calls("run")[0]["t"]
    time.sleep(max(0.0, t0 + 15 - time.time()))
    runs = [c for c in sc.calls("run") if c["t"] <= t0 + 15]
    logs = sc.logs()
    assert "docker run exited with 125" in logs
    assert "pool miss is degraded" in logs, logs[-3000:]
    assert len(runs) <= 10, "%d docker run calls in 15 s: a storm" % len(runs)
    assert len(runs) >= 3, "only %d docker run calls in 15 s: no retry?" % len(runs)
    print("image_missing: %d docker run calls in 15 s" % len(runs), flush=True)
    finish(sc, rd)
    st = sc.state()
    assert len(events_of(st, "jit_created")) == len(sc.calls("run")), \
        "a registration without its docker run (or the reverse)"
    assert [j["status"] for j in st["jobs"]] == ["queued", "queued"]


@scenario
def drain(sc):
    """SIGTERM: no new runner; the idle (min_idle) runner is stopped at once; busy runners
    finish their jobs within shutdown_grace; exit 0; nothing left."""
    pools = [rdtest.pool("work", X64 + ["work"], "fake-runner:x64"),
             rdtest.pool("warm", X64 + ["warm"], "fake-runner:x64", min_idle=1)]
    rd = sc.runnerd(sc.config(pools, [{"repo": REPO}], shutdown_grace="20s"))
    sc.gh.jobs(REPO, X64 + ["work"], count=3, duration_ms=5000)
    rdtest.wait_until(lambda: len(events_of(sc.state(), "job_started")) == 3 and
                      names_with(events_of(sc.state(), "runner_online"), "warm"), 30, 0.2,
                      "3 busy runners and a warm one")
    t_term = time.time()
    rd.signal(signal.SIGTERM)
    time.sleep(0.3)
    late = sc.gh.jobs(REPO, X64 + ["work"], duration_ms=300)["job_ids"][0]
    code = rd.proc.wait(40)
    took = time.time() - t_term
    assert code == 0, "runnerd exit %r" % code
    st = sc.state()
    done = [j for j in st["jobs"] if j["id"] != late]
    assert all(j["status"] == "completed" and j["conclusion"] == "success" for j in done), done
    late_job = [j for j in st["jobs"] if j["id"] == late][0]
    assert late_job["status"] == "queued" and not late_job["runner_name"], late_job
    assert len(events_of(st, "jit_created")) == 4, "a runner was started while draining"
    warm = names_with(events_of(st, "jit_created"), "warm")[0]["runner"]
    stops = sc.calls("stop")
    assert [c for c in stops if warm in c["argv"]], "the idle runner was not stopped"
    assert all(warm in c["argv"] for c in stops), "a busy runner was stopped: %r" % stops
    warm_stop = [c["t"] for c in stops if warm in c["argv"]][0]
    assert warm_stop - t_term < 3, "idle runner stopped %.1fs after SIGTERM" % (warm_stop - t_term)
    assert took < 15, "drain took %.1fs" % took
    sc.check_clean()


@scenario
def drain_grace_short(sc):
    """shutdown_grace (2 s) shorter than the job: the busy runner is stopped after the grace,
    its job is cancelled, the registration is gone, exit 0."""
    pools = [rdtest.pool("work", X64, "fake-runner:x64")]
    rd = sc.runnerd(sc.config(pools, [{"repo": REPO}], shutdown_grace="2s"))
    sc.gh.jobs(REPO, X64, duration_ms=60000)
    rdtest.wait_until(lambda: events_of(sc.state(), "job_started"), 30, 0.2, "the job to start")
    t_term = time.time()
    rd.signal(signal.SIGTERM)
    code = rd.proc.wait(40)
    took = time.time() - t_term
    assert code == 0, "runnerd exit %r" % code
    stops = sc.calls("stop")
    assert stops, "the busy runner was not stopped"
    waited = stops[0]["t"] - t_term
    assert 1.8 <= waited <= 6, "busy runner stopped %.1fs after SIGTERM (grace 2s)" % waited
    assert took < 15, "exit %.1fs after SIGTERM" % took
    st = sc.state()
    assert st["jobs"][0]["conclusion"] == "cancelled", st["jobs"]
    assert "shutdown grace over" in sc.logs()
    sc.check_clean()


@scenario
def host_caps(sc):
    """Host caps hold: 2 GiB of host memory for 512 MiB runners = 4 at once over two pools;
    then host max_runners 3."""
    p1 = rdtest.pool("a", X64 + ["a"], "fake-runner:x64", memory="512MiB", cpus=0.5)
    p2 = rdtest.pool("b", X64 + ["b"], "fake-runner:x64", memory="512MiB", cpus=0.5)
    cfg = sc.config([p1, p2], [{"repo": REPO}],
                    host={"cpus": 16, "memory": "2GiB", "max_runners": 16})
    rd = sc.runnerd(cfg)
    sc.gh.jobs(REPO, X64 + ["a"], count=5, duration_ms=1500)
    sc.gh.jobs(REPO, X64 + ["b"], count=5, duration_ms=1500)
    rdtest.wait_until(lambda: all(j["status"] == "completed" for j in sc.state()["jobs"]), 60,
                      0.25, "10 jobs to complete under the memory cap")
    st = sc.state()
    peak = e2eutil.max_concurrent(st["events"])
    assert peak == 4, "memory cap: %d registrations at once (want 4)" % peak
    assert len(events_of(st, "jit_created")) == 10
    assert "limit host_memory" in sc.logs()
    finish(sc, rd)
    # Second daemon, same GitHub: host max_runners 3 binds.
    sc.gh.call("POST", "/_control/reset")
    sc.gh.repos("octo-cat", ["hello"])
    cfg = sc.config([p1, p2], [{"repo": REPO}],
                    host={"cpus": 16, "memory": "16GiB", "max_runners": 3})
    rd = sc.runnerd(cfg, name="runnerd2")
    sc.gh.jobs(REPO, X64 + ["a"], count=3, duration_ms=1500)
    sc.gh.jobs(REPO, X64 + ["b"], count=3, duration_ms=1500)
    rdtest.wait_until(lambda: all(j["status"] == "completed" for j in sc.state()["jobs"]), 60,
                      0.25, "6 jobs to complete under max_runners")
    st = sc.state()
    peak = e2eutil.max_concurrent(st["events"])
    assert peak == 3, "max_runners cap: %d registrations at once (want 3)" % peak
    assert "limit host_max" in rd.logs()
    finish(sc, rd)


ALL = [job_timeout, startup_timeout, idle_and_min_idle, image_missing, drain,
       drain_grace_short, host_caps]


def main():
    only = set(sys.argv[1:])
    funcs = [f for f in ALL if not only or f.__name__ in only]
    t0 = time.monotonic()
    with e2eutil.CmdlineSampler(interval=0.2) as sampler:
        rc = e2eutil.run_scenarios(funcs, parallel=int(os.environ.get("RD_E2E_PARALLEL", "3")))
    if sampler.hits:
        print("FAIL: JIT config in a process's argv: %r" % sampler.hits[:3], file=sys.stderr)
        rc = 1
    print("/proc/*/cmdline sampled %d times: %d JIT configs seen" % (sampler.samples,
                                                                    len(sampler.hits)))
    print("test_e2e_lifecycle: %s in %.1fs" % ("OK" if rc == 0 else "FAILED",
                                                time.monotonic() - t0))
    return rc


if __name__ == "__main__":
    sys.exit(main())
