#!/usr/bin/env python3
"""Fleet mode (docs/fleet.md): three runnerd processes (instances host-a/b/c, 2 runner
slots each, fake docker) against one fake scale-set broker and 12 jobs.

Checks: every job runs exactly once; no host runs more than 2 at a time; every host runs
some; the makespan is about two waves, not six; no REST request lists runs or jobs; kill -9
of one host mid-run loses no job and its restart adopts its containers.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdtest  # noqa: E402

FAKE_BROKER = os.path.join(rdtest.SRC, "tests", "fake_broker", "fake_broker.py")
LABELS = ["self-hosted", "linux", "x64"]
DURATION_MS = 3000


class Broker:
    def __init__(self, tmp, knobs):
        pf = os.path.join(tmp, "broker.port")
        self.proc = subprocess.Popen([sys.executable, FAKE_BROKER, "--port", "0", "--port-file",
                                      pf, "--config", json.dumps(knobs)],
                                     stdin=subprocess.DEVNULL)
        rdtest.wait_until(lambda: os.path.exists(pf), 15, what="fake broker")
        with open(pf) as f:
            self.url = "http://127.0.0.1:%d" % int(f.read())

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/_control/" + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def host_cfg(broker, name):
    pools = [rdtest.pool("linux", LABELS, "runner:fake", cpus=1, max_runners=2,
                         idle_timeout="60s")]
    cfg = rdtest.base_config(broker, rdtest.FAKE_DOCKER, pools,
                             [{"org": "acme", "discovery": "scaleset"}], instance=name)
    cfg["host"] = {"cpus": 2, "memory": "4GiB", "max_runners": 2}
    return cfg


def max_concurrency(events, prefix):
    """Most jobs running at once on runners whose names start with prefix."""
    cur = best = 0
    for e in sorted(events, key=lambda e: (e["t"], e["kind"] == "job_started")):
        if not (e.get("runner") or "").startswith(prefix):
            continue
        if e["kind"] == "job_started":
            cur += 1
            best = max(best, cur)
        elif e["kind"] == "job_completed":
            cur -= 1
    return best


def check_once(state, ids):
    jobs = {j["id"]: j for j in state["jobs"]}
    for i in ids:
        j = jobs[i]
        assert j["state"] == "completed", "job %d not completed: %s" % (i, j)
        assert len(j["runs"]) == 1, "job %d ran %d times: %s" % (i, len(j["runs"]), j["runs"])


def main():
    with rdtest.TempDir() as tmp:
        broker = Broker(tmp, {"poll_timeout_ms": 1000, "session_ttl_ms": 4000})
        hosts = {}
        envs = {}
        try:
            # 0. --once --dry-run says whether the scale set exists and creates nothing
            dry = rdtest.Runnerd(tmp, host_cfg(broker, "host-a"), args=["--once", "--dry-run"],
                                 name="dry")
            code, out, err = dry.run(timeout=60)
            assert code == 0, err
            lines = [json.loads(x) for x in out.splitlines() if '"scale_set"' in x]
            assert lines == [{"scale_set": "runnerd-host-a-linux", "scope": "orgs/acme",
                              "pool": "linux", "exists": False, "id": 0,
                              "labels_match": False}], out
            assert broker.call("GET", "state")["scale_sets"] == [], "dry run created a scale set"
            for name in ("host-a", "host-b", "host-c"):
                state = os.path.join(tmp, "docker-" + name)
                os.makedirs(state)
                envs[name] = {"FAKE_DOCKER_STATE": state}
                hosts[name] = rdtest.Runnerd(tmp, host_cfg(broker, name), env=envs[name],
                                             name=name).start()
            rdtest.wait_until(lambda: len([s for s in broker.call("GET", "state")["scale_sets"]
                                           if s["session"]]) == 3, 30, what="three sessions")
            code, out, err = dry.run(timeout=60)
            lines = [json.loads(x) for x in out.splitlines() if '"scale_set"' in x]
            assert code == 0 and lines[0]["exists"] and lines[0]["labels_match"], out
            # 1. twelve jobs over three hosts
            t0 = time.time()
            ids = broker.call("POST", "jobs", {"repo": "acme/api", "labels": LABELS,
                                               "count": 12, "duration_ms": DURATION_MS})["ids"]
            rdtest.wait_until(lambda: all(j["state"] == "completed"
                                          for j in broker.call("GET", "state")["jobs"]),
                              90, interval=0.2, what="12 jobs completed")
            makespan = time.time() - t0
            st = broker.call("GET", "state")
            check_once(st, ids)
            per_host = {}
            for name in hosts:
                per_host[name] = sum(1 for j in st["jobs"]
                                     if j["runner"].startswith("runnerd-%s-" % name))
                conc = max_concurrency(st["events"], "runnerd-%s-" % name)
                assert conc <= 2, "%s ran %d jobs at once (cap 2)" % (name, conc)
            assert all(n > 0 for n in per_host.values()), per_host
            waves = makespan / (DURATION_MS / 1000.0)
            print("12 jobs: makespan %.1f s (%.1f job durations), per host %s"
                  % (makespan, waves, per_host))
            assert makespan < 4.5 * DURATION_MS / 1000.0, \
                "makespan %.1f s: more than two waves plus start-up" % makespan
            stats = broker.call("GET", "stats")
            assert stats["rest_listing"] == 0, "REST listed runs/jobs: %s" % stats
            print("REST requests other than the bootstrap: %d (listing runs/jobs: %d)"
                  % (stats["rest_other"], stats["rest_listing"]))

            # 2. kill -9 of one host mid-run: no job lost, restart adopts its containers
            # Jobs long enough to outlive the restart: under valgrind runnerd takes
            # seconds to start again, and a 3 s job would be gone before adoption.
            ids2 = broker.call("POST", "jobs", {"repo": "acme/api", "labels": LABELS, "count": 9,
                                                "duration_ms": int(rdtest.scaled(8) * 1000)})["ids"]
            rdtest.wait_until(lambda: any(j["state"] == "started" and
                                          j["runner"].startswith("runnerd-host-a-")
                                          for j in broker.call("GET", "state")["jobs"]),
                              30, what="host-a running a job")
            hosts["host-a"].kill9()
            left = rdtest.containers(rdtest.FAKE_DOCKER, "host-a",
                                     env=dict(os.environ, **envs["host-a"]))
            assert left, "host-a had no container running at the kill"
            # Restarted at once: 409 on its scale set until the dead session expires,
            # adoption of the containers still running meanwhile.
            hosts["host-a"] = rdtest.Runnerd(tmp, host_cfg(broker, "host-a"),
                                             env=envs["host-a"], name="host-a2").start()
            rdtest.wait_until(lambda: all(j["state"] == "completed" for j in
                                          broker.call("GET", "state")["jobs"]),
                              120, interval=0.3, what="every job completed after the kill")
            st = broker.call("GET", "state")
            check_once(st, ids2)
            rdtest.wait_until(lambda: any(s["name"] == "runnerd-host-a-linux" and s["session"]
                                          for s in broker.call("GET", "state")["scale_sets"]),
                              75, interval=0.3, what="host-a back with a session (409s retried after 30-60 s)")
            log = hosts["host-a"].logs()
            assert "restart: adopted runnerd-host-a-linux-" in log, \
                "the restarted host-a adopted nothing"
            print("kill -9: all %d jobs ran once; host-a had %d containers at the kill, "
                  "adopted after restart" % (len(ids2), len(left)))
        finally:
            for name, h in hosts.items():
                if h.alive():
                    code = h.stop()
                    if code != 0:
                        print(h.logs()[-3000:])
                        raise AssertionError("%s exited %s" % (name, code))
            for name in hosts:
                rdtest.remove_containers(rdtest.FAKE_DOCKER, name,
                                         env=dict(os.environ, **envs[name]))
            sess = [s for s in broker.call("GET", "state")["scale_sets"] if s["session"]]
            broker.stop()
        assert not sess, "sessions left after SIGTERM: %s" % sess
    print("ok")


if __name__ == "__main__":
    main()
