#!/usr/bin/env python3
"""bench/fleet: fleet mode (docs/fleet.md) against the fake broker and the docker double.

  latency  one host; jobs queued one at a time while its long poll waits: the broker's
           message (JobAvailable, GHES path) -> acquirejobs -> generatejitconfig ->
           `docker run` spawned. t0 = the broker queues the job (the waiting long poll
           answers at once), t1 = runnerd's "docker run spawned" log line (uv_spawn
           returned; the same point bench/scaleup measures). p50/p90/p99/max over N jobs.
  idle     one host, one scaleset target, no jobs, for M seconds after start-up:
           REST requests (api.github.com side) and broker requests per minute.
  hosts    the same 12 jobs (3 s each) on one host with 2 slots and on three such hosts:
           makespan.

Usage: python3 bench/fleet.py [--build build] [--jobs 100] [--idle-seconds 60]
Prints one JSON object per figure.
"""
import argparse
import datetime
import json
import re
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import rdtest  # noqa: E402
from test_fleet import Broker, LABELS, host_cfg  # noqa: E402


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


SPAWNED = re.compile(r"^(\S+) INFO supervisor: (\S+): docker run spawned \(")


def spawns(log_path):
    """Wall times at which runnerd spawned `docker run` (its own log line)."""
    out = []
    with open(log_path) as f:
        for line in f:
            m = SPAWNED.match(line)
            if m:
                out.append(datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
                           .replace(tzinfo=datetime.timezone.utc).timestamp())
    return out


def runs(state_dir):
    out = []
    path = os.path.join(state_dir, "calls.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                e = json.loads(line)
                if e.get("cmd") == "run":
                    out.append(e["t"])
    return out


def start_hosts(tmp, broker, names, knobs=None):
    hosts, envs = {}, {}
    for name in names:
        state = os.path.join(tmp, "docker-" + name)
        os.makedirs(state, exist_ok=True)
        envs[name] = {"FAKE_DOCKER_STATE": state}
        hosts[name] = rdtest.Runnerd(tmp, host_cfg(broker, name), env=envs[name],
                                     name=name).start()
    rdtest.wait_until(lambda: len([s for s in broker.call("GET", "state")["scale_sets"]
                                   if s["session"]]) == len(names), 60, what="sessions")
    return hosts, envs


def stop_hosts(hosts, envs):
    for name, h in hosts.items():
        h.stop()
        rdtest.remove_containers(rdtest.FAKE_DOCKER, name, env=dict(os.environ, **envs[name]))


def latency(njobs):
    with rdtest.TempDir() as tmp:
        broker = Broker(tmp, {"poll_timeout_ms": 20000, "session_ttl_ms": 60000})
        hosts, envs = start_hosts(tmp, broker, ["lat"])
        log = hosts["lat"].log_path
        lat = []
        try:
            for _ in range(njobs):
                before = len(spawns(log))
                # let the host's next long poll be waiting (it re-polls right after a message)
                time.sleep(0.3)
                t0 = time.time()
                jid = broker.call("POST", "jobs", {"repo": "acme/api", "labels": LABELS,
                                                   "duration_ms": 0})["ids"][0]
                rdtest.wait_until(lambda: len(spawns(log)) > before, 30, interval=0.005,
                                  what="docker run spawned")
                lat.append((spawns(log)[before] - t0) * 1000.0)
                rdtest.wait_until(lambda: [j for j in broker.call("GET", "state")["jobs"]
                                           if j["id"] == jid][0]["state"] == "completed",
                                  30, interval=0.02, what="job done")
        finally:
            stop_hosts(hosts, envs)
            broker.stop()
        return {"figure": "broker message -> docker run spawned", "n": len(lat),
                "p50_ms": round(pct(lat, 50), 1), "p90_ms": round(pct(lat, 90), 1),
                "p99_ms": round(pct(lat, 99), 1), "max_ms": round(max(lat), 1)}


def idle(seconds):
    with rdtest.TempDir() as tmp:
        # GitHub's long poll answers after ~50 s when nothing happens (protocol 3.4).
        broker = Broker(tmp, {"poll_timeout_ms": 50000, "session_ttl_ms": 120000})
        hosts, envs = start_hosts(tmp, broker, ["idle"])
        try:
            time.sleep(2)
            broker.call("POST", "stats/reset")
            time.sleep(seconds)
            st = broker.call("GET", "stats")
        finally:
            stop_hosts(hosts, envs)
            broker.stop()
        rest = sum(v for k, v in st["by_path"].items() if not k.startswith(("GET _apis",
                   "POST _apis", "PATCH _apis", "DELETE _apis", "GET /scalesets",
                   "DELETE /scalesets")))
        per_min = 60.0 / seconds
        return {"figure": "idle scaleset target", "seconds": seconds,
                "rest_requests_per_min": round(rest * per_min, 2),
                "rest_listing_per_min": round(st["rest_listing"] * per_min, 2),
                "broker_requests_per_min": round(st["requests_total"] * per_min, 2),
                "by_path": st["by_path"]}


def makespan(names):
    with rdtest.TempDir() as tmp:
        broker = Broker(tmp, {"poll_timeout_ms": 1000, "session_ttl_ms": 10000})
        hosts, envs = start_hosts(tmp, broker, names)
        try:
            t0 = time.time()
            broker.call("POST", "jobs", {"repo": "acme/api", "labels": LABELS, "count": 12,
                                         "duration_ms": 3000})
            rdtest.wait_until(lambda: all(j["state"] == "completed" for j in
                                          broker.call("GET", "state")["jobs"]),
                              300, interval=0.1, what="12 jobs")
            m = time.time() - t0
            jobs = broker.call("GET", "state")["jobs"]
            once = all(len(j["runs"]) == 1 for j in jobs)
        finally:
            stop_hosts(hosts, envs)
            broker.stop()
        return {"figure": "12 jobs x 3 s, %d host(s) x 2 slots" % len(names),
                "makespan_s": round(m, 2), "each_job_once": once}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--skip", default="")
    a = ap.parse_args()
    rdtest.RUNNERD = os.path.join(os.path.abspath(a.build), "runnerd")
    skip = set(a.skip.split(","))
    if "latency" not in skip:
        print(json.dumps(latency(a.jobs)), flush=True)
    if "idle" not in skip:
        print(json.dumps(idle(a.idle_seconds)), flush=True)
    if "hosts" not in skip:
        one = makespan(["one"])
        three = makespan(["h1", "h2", "h3"])
        print(json.dumps(one), flush=True)
        print(json.dumps(three), flush=True)
        print(json.dumps({"figure": "three hosts vs one", "speedup":
                          round(one["makespan_s"] / three["makespan_s"], 2)}), flush=True)
    print("load average: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
