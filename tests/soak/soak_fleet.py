#!/usr/bin/env python3
"""Fleet-mode soak (docs/fleet.md): three runnerd hosts (2 slots each, docker double)
against the fake scale-set broker for N minutes while jobs arrive at random and faults
are injected at the broker and at the hosts:

  broker: 401 and 503 on the message queue, 503 on generatejitconfig/acquirejobs/agents,
          BOM-prefixed bodies, over-assignment beyond the advertised capacity, redelivery
          of undeleted messages, sessions expired under a host, GHES vs github.com mode;
  hosts:  kill -9 and restart (adoption, 409 until the old session expires), SIGHUP.

Invariants, checked at the end after the faults stop and the queue drains: every job ran
exactly once; no host ever ran more than its 2 slots at once; every host ran some job;
every host exits 0 on SIGTERM; no session is left; no REST request listed runs or jobs.

Usage: soak_fleet.py [--minutes 2] [--seed 1] [--build build]
"""
import argparse
import os
import random
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import rdtest  # noqa: E402
from test_fleet import Broker, LABELS, host_cfg, max_concurrency  # noqa: E402

HOSTS = ("soak-a", "soak-b", "soak-c")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build", default=os.environ.get("RUNNERD_BUILD"))
    a = ap.parse_args()
    if a.build:
        rdtest.RUNNERD = os.environ.get("RUNNERD_BIN") or os.path.join(a.build, "runnerd")
    rng = random.Random(a.seed)
    counts = {}

    def count(what):
        counts[what] = counts.get(what, 0) + 1

    with rdtest.TempDir() as tmp:
        broker = Broker(tmp, {"poll_timeout_ms": 1000, "session_ttl_ms": 3000})
        hosts, envs, gen = {}, {}, {}
        failures = []
        try:
            for name in HOSTS:
                envs[name] = {"FAKE_DOCKER_STATE": os.path.join(tmp, "docker-" + name)}
                gen[name] = 0
                hosts[name] = rdtest.Runnerd(tmp, host_cfg(broker, name), env=envs[name],
                                             name=name).start()
            end = time.monotonic() + a.minutes * 60
            while time.monotonic() < end:
                time.sleep(rng.uniform(0.5, 2.0))
                broker.call("POST", "jobs", {"repo": "acme/r%d" % rng.randint(1, 3),
                                             "labels": LABELS, "count": rng.randint(1, 4),
                                             "duration_ms": rng.randint(200, 2500)})
                count("job batches")
                r = rng.random()
                if r < 0.10:
                    broker.call("POST", "faults", {"path": "^/scalesets/message$",
                                                   "kind": rng.choice([401, 503]),
                                                   "count": rng.randint(1, 3)})
                    count("queue faults")
                elif r < 0.18:
                    broker.call("POST", "faults", {"path": rng.choice(
                        ["generatejitconfig", "acquirejobs", "agents"]), "kind": 503,
                        "count": rng.randint(1, 2)})
                    count("endpoint 503s")
                elif r < 0.28:
                    broker.call("POST", "config", {
                        "bom": rng.random() < 0.5, "over_assign": rng.choice([0, 0, 1, 2]),
                        "redeliver": rng.random() < 0.2,
                        "mode": rng.choice(["available", "assign"])})
                    count("broker knobs")
                elif r < 0.33:
                    broker.call("POST", "expire_sessions",
                                {"scale_set": "runnerd-%s-linux" % rng.choice(HOSTS)})
                    count("sessions expired")
                elif r < 0.38:
                    name = rng.choice(HOSTS)
                    hosts[name].kill9()
                    gen[name] += 1
                    hosts[name] = rdtest.Runnerd(tmp, host_cfg(broker, name), env=envs[name],
                                                 name="%s.%d" % (name, gen[name])).start()
                    count("kill -9 + restart")
                elif r < 0.42:
                    hosts[rng.choice(HOSTS)].signal(signal.SIGHUP)
                    count("SIGHUP")
                # redelivery would hand out the same message forever: keep it short
                if rng.random() < 0.5:
                    broker.call("POST", "config", {"redeliver": False})
            # quiet period: no faults, everything queued must run
            broker.call("DELETE", "faults")
            broker.call("POST", "config", {"bom": False, "over_assign": 0, "redeliver": False})
            try:
                rdtest.wait_until(lambda: all(j["state"] == "completed" for j in
                                              broker.call("GET", "state")["jobs"]),
                                  240, interval=0.5, what="every job completed")
            except AssertionError as e:
                failures.append(str(e))
            st = broker.call("GET", "state")
            twice = [j["id"] for j in st["jobs"] if len(j["runs"]) > 1]
            never = [j["id"] for j in st["jobs"] if j["state"] != "completed"]
            if twice:
                failures.append("jobs run more than once: %s" % twice)
            if never:
                failures.append("jobs never completed: %s" % never)
            for name in HOSTS:
                pre = "runnerd-%s-" % name
                c = max_concurrency(st["events"], pre)
                n = sum(1 for j in st["jobs"] if (j["runner"] or "").startswith(pre))
                print("%s: %d jobs, at most %d at once" % (name, n, c))
                if c > 2:
                    failures.append("%s ran %d jobs at once (cap 2)" % (name, c))
                if n == 0:
                    failures.append("%s ran no job" % name)
            for name, h in hosts.items():
                code = h.stop(timeout=90)
                if code != 0:
                    failures.append("%s exited %s:\n%s" % (name, code, h.logs()[-2000:]))
            left = [s["name"] for s in broker.call("GET", "state")["scale_sets"] if s["session"]]
            if left:
                failures.append("sessions left after SIGTERM: %s" % left)
            stats = broker.call("GET", "stats")
            if stats["rest_listing"]:
                failures.append("REST listed runs/jobs %d times" % stats["rest_listing"])
            print("jobs: %d, each once: %s; injected: %s" % (len(st["jobs"]), not twice,
                                                            ", ".join("%s %d" % kv for kv in
                                                                      sorted(counts.items()))))
        finally:
            for name, h in hosts.items():
                if h.alive():
                    h.kill9()
                rdtest.remove_containers(rdtest.FAKE_DOCKER, name,
                                         env=dict(os.environ, **envs[name]))
            broker.stop()
    if failures:
        print("FAILED:\n" + "\n".join(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
