#!/usr/bin/env python3
"""Fleet mode under broker faults (docs/fleet.md), one runnerd (2 slots) and the fake broker:

- github.com mode (direct JobAssigned), BOM-prefixed bodies, over-assignment 2 beyond the
  advertised capacity: every job runs once, never more than 2 at a time;
- 401 on the message queue refreshes the session (PATCH) and polling goes on;
- 503s on generatejitconfig are retried; 503s on the message queue make /healthz say the
  broker is failing, and it recovers;
- /status has scale_sets, /metrics the runnerd_scaleset_* families;
- SIGHUP adds a pool: its scale set appears with a session; removing it again deletes the
  session and the scale set once empty;
- SIGTERM: capacity 0 is advertised, then the session is deleted.
"""
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdtest  # noqa: E402
from test_fleet import Broker, LABELS, check_once, max_concurrency  # noqa: E402


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def cfg_with(broker, port, pools):
    cfg = rdtest.base_config(broker, rdtest.FAKE_DOCKER, pools,
                             [{"org": "acme", "discovery": "scaleset"}], instance="solo",
                             listen="127.0.0.1:%d" % port)
    cfg["host"] = {"cpus": 4, "memory": "8GiB", "max_runners": 2}
    return cfg


def main():
    with rdtest.TempDir() as tmp:
        # admin tokens live 65 s: runnerd renews them 60 s before exp (protocol 1.5)
        broker = Broker(tmp, {"poll_timeout_ms": 1000, "session_ttl_ms": 4000, "mode": "assign",
                              "bom": True, "over_assign": 2, "admin_ttl_s": 65})
        port = rdtest.free_port()
        linux = rdtest.pool("linux", LABELS, "runner:fake", cpus=1, max_runners=2)
        big = rdtest.pool("big", LABELS + ["big"], "runner:fake", cpus=1, max_runners=1)
        state = os.path.join(tmp, "docker")
        os.makedirs(state)
        env = {"FAKE_DOCKER_STATE": state}
        rd = rdtest.Runnerd(tmp, cfg_with(broker, port, [linux]), env=env).start()
        base = "http://127.0.0.1:%d" % port
        try:
            rdtest.wait_until(lambda: any(s["session"] for s in
                                          broker.call("GET", "state")["scale_sets"]),
                              30, what="a session")
            broker.call("POST", "faults", {"path": "^/scalesets/message$", "kind": 401,
                                           "count": 2})
            broker.call("POST", "faults", {"path": "generatejitconfig", "kind": 503, "count": 2})
            ids = broker.call("POST", "jobs", {"repo": "acme/api", "labels": LABELS, "count": 6,
                                               "duration_ms": 1500})["ids"]
            rdtest.wait_until(lambda: all(j["state"] == "completed" for j in
                                          broker.call("GET", "state")["jobs"]),
                              120, interval=0.3, what="6 jobs completed")
            st = broker.call("GET", "state")
            check_once(st, ids)
            conc = max_concurrency(st["events"], "runnerd-solo-")
            assert conc <= 2, "ran %d jobs at once with 2 slots (over-assigned)" % conc
            stats = broker.call("GET", "stats")
            patches = sum(v for k, v in stats["by_path"].items() if "sessions/{sessionId}" in k
                          and k.startswith("PATCH"))
            assert patches >= 1, "401 on the queue did not refresh the session: %s" % stats
            assert stats["rest_listing"] == 0
            regs = stats["by_path"].get("POST /actions/runner-registration", 0)
            assert regs >= 2, "admin token never renewed before its exp: %s" % stats
            print("faults: 6 jobs once each, at most %d at once, %d session refreshes, "
                  "%d admin tokens" % (conc, patches, regs))

            code, body = get(base + "/status")
            doc = json.loads(body)
            ss = doc["scale_sets"][0]
            assert ss["name"] == "runnerd-solo-linux" and ss["session"] == "polling", ss
            assert ss["last_message_id"] > 0 and ss["id"] > 0, ss
            code, text = get(base + "/metrics")
            assert 'runnerd_scaleset_advertised_capacity{scale_set="runnerd-solo-linux"} 2' \
                in text, text[-1500:]
            assert 'runnerd_scaleset_session_up{scale_set="runnerd-solo-linux"} 1' in text

            # a failing broker shows in /healthz, and recovers
            broker.call("POST", "faults", {"path": "^/scalesets/message$", "kind": 503,
                                           "count": -1})
            rdtest.wait_until(lambda: get(base + "/healthz")[0] == 503, 20,
                              what="healthz 503 while the broker fails")
            code, body = get(base + "/healthz")
            assert "broker" in body, body
            broker.call("DELETE", "faults")
            rdtest.wait_until(lambda: get(base + "/healthz")[0] == 200, 90,
                              what="healthz 200 after the broker recovered")

            # SIGHUP adds a pool (a second scale set), then removes it again
            rd.write_config(cfg_with(broker, port, [linux, big]))
            rd.signal(signal.SIGHUP)
            rdtest.wait_until(lambda: any(s["name"] == "runnerd-solo-big" and s["session"] for s in
                                          broker.call("GET", "state")["scale_sets"]),
                              30, what="the new pool's scale set with a session")
            jid = broker.call("POST", "jobs", {"repo": "acme/api", "labels": LABELS + ["big"],
                                               "duration_ms": 300})["ids"][0]
            rdtest.wait_until(lambda: [j for j in broker.call("GET", "state")["jobs"]
                                       if j["id"] == jid][0]["state"] == "completed",
                              60, what="the big job")
            rd.write_config(cfg_with(broker, port, [linux]))
            rd.signal(signal.SIGHUP)
            rdtest.wait_until(lambda: not any(s["name"] == "runnerd-solo-big" for s in
                                              broker.call("GET", "state")["scale_sets"]),
                              60, what="the removed pool's scale set deleted")
            print("reload: scale set runnerd-solo-big created, used, deleted")

            # SIGTERM while a job runs: capacity 0 while draining, then the session goes
            jid = broker.call("POST", "jobs", {"repo": "acme/api", "labels": LABELS,
                                               "duration_ms": 4000})["ids"][0]
            rdtest.wait_until(lambda: [j for j in broker.call("GET", "state")["jobs"]
                                       if j["id"] == jid][0]["state"] == "started",
                              60, what="a running job")
            broker.call("POST", "stats/reset")
            code = rd.stop(timeout=60)
            assert code == 0, rd.logs()[-3000:]
            seen = broker.call("GET", "stats")["capacity_seen"].get("runnerd-solo-linux", [])
            sets = broker.call("GET", "state")["scale_sets"]
            assert all(s["session"] is None for s in sets), sets
            print("SIGTERM: capacity sent while draining %s; sessions deleted" % seen)
            # One long poll is open per scale set: the one runnerd sent just before SIGTERM
            # (after the reset) may carry the old capacity; every poll after it says 0.
            assert seen and seen[-1] == 0 and set(seen[1:]) <= {0}, \
                "capacity while draining: %s" % seen
            check_once(broker.call("GET", "state"), [jid])
        finally:
            if rd.alive():
                rd.proc.kill()
            rdtest.remove_containers(rdtest.FAKE_DOCKER, "solo", env=dict(os.environ, **env))
            broker.stop()
    print("ok")


if __name__ == "__main__":
    main()
