#!/usr/bin/env python3
"""runnerd's fleet-mode demo (docs/fleet.md): three runnerd processes (hosts host-a,
host-b, host-c, 2 runner slots each) share 12 jobs through the fake scale-set broker;
each job runs once, no host goes over its 2 slots. Run through scripts/demo.sh --fleet."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "integration"))
import rdtest  # noqa: E402
from test_fleet import Broker, LABELS, host_cfg, max_concurrency  # noqa: E402

HOSTS = ("host-a", "host-b", "host-c")


def run(build, fake_docker, timeout):
    rdtest.RUNNERD = os.path.join(os.path.abspath(build), "runnerd")
    with rdtest.TempDir() as tmp:
        broker = Broker(tmp, {"poll_timeout_ms": 2000, "session_ttl_ms": 10000})
        hosts, envs = {}, {}
        try:
            for name in HOSTS:
                envs[name] = {}
                cfg = host_cfg(broker, name)
                if fake_docker:
                    envs[name]["FAKE_DOCKER_STATE"] = os.path.join(tmp, "docker-" + name)
                else:
                    cfg["docker"]["binary"] = "docker"
                    cfg["pools"][0]["image"] = "runnerd-test-runner:x64"
                hosts[name] = rdtest.Runnerd(tmp, cfg, env=envs[name], name=name)
            print("demo: fake scale-set broker on %s" % broker.url)
            print("demo: 3 runnerd hosts (instances %s), each capped at 2 runners; "
                  "target org acme with discovery: scaleset" % ", ".join(HOSTS))
            for h in hosts.values():
                h.start()
            rdtest.wait_until(lambda: len([s for s in broker.call("GET", "state")["scale_sets"]
                                           if s["session"]]) == 3, 60, what="sessions")
            for s in broker.call("GET", "state")["scale_sets"]:
                print("demo: scale set %-22s id %d, labels %s, session of %s" % (
                    s["name"], s["id"], ",".join(s["labels"]), s["session"]["owner"]))
            print("demo: queueing 12 jobs (3 s each) in acme/api\n")
            broker.call("POST", "jobs", {"repo": "acme/api", "labels": LABELS, "count": 12,
                                         "duration_ms": 3000})
            t0 = time.monotonic()
            seen = 0
            while time.monotonic() - t0 < timeout:
                st = broker.call("GET", "state")
                for ev in st["events"][seen:]:
                    if ev["kind"] in ("job_assigned", "job_started", "job_completed"):
                        where = ev.get("runner") or ev.get("scale_set")
                        print("%6.1fs  job %-5s %-13s %s" % (time.monotonic() - t0, ev["job"],
                                                             ev["kind"][4:], where))
                seen = len(st["events"])
                if all(j["state"] == "completed" for j in st["jobs"]):
                    break
                time.sleep(0.3)
            makespan = time.monotonic() - t0
            st = broker.call("GET", "state")
            print("\n== summary ==")
            once = all(len(j["runs"]) == 1 for j in st["jobs"])
            print("jobs run exactly once:  %s (%d jobs)" % ("yes" if once else "NO",
                                                            len(st["jobs"])))
            ok = once
            for name in HOSTS:
                pre = "runnerd-%s-" % name
                n = sum(1 for j in st["jobs"] if (j["runner"] or "").startswith(pre))
                c = max_concurrency(st["events"], pre)
                print("%s:                %2d jobs, at most %d at once (cap 2)" % (name, n, c))
                ok = ok and c <= 2 and n > 0
            print("makespan:               %.1f s (one host with 2 slots needs 6 waves)"
                  % makespan)
            stats = broker.call("GET", "stats")
            print("REST runs/jobs listed:  %d" % stats["rest_listing"])
            for name, h in hosts.items():
                code = h.stop()
                ok = ok and code == 0
            left = [s for s in broker.call("GET", "state")["scale_sets"] if s["session"]]
            print("sessions left:          %d (deleted at SIGTERM)" % len(left))
            ok = ok and not left and stats["rest_listing"] == 0
            print("demo: %s" % ("OK" if ok else "FAILED"))
            return 0 if ok else 1
        finally:
            for name, h in hosts.items():
                if h.alive():
                    h.kill9()
                binary = rdtest.FAKE_DOCKER if fake_docker else "docker"
                rdtest.remove_containers(binary, name, env=dict(os.environ, **envs[name]))
            broker.stop()


if __name__ == "__main__":
    print(json.dumps({"usage": "scripts/demo.sh --fleet [--fake-docker]"}))
    sys.exit(run("build", "--fake-docker" in sys.argv, 300))
