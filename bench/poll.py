#!/usr/bin/env python3
"""bench/poll: one discovery cycle over 100 and 1000 (or 5000) repositories against the fake GitHub.

Runs build/rd_discover (the real github client and poller) for two cycles: the
first is cold (no ETags), the second warm (conditional requests, mostly 304).
Prints wall time, CPU time of the driver process, requests sent and its peak RSS.

  python3 bench/poll.py [--build DIR] [--repos 100,1000]

The request-rate cap (12 requests/s by default, to stay below GitHub's
secondary limits) is lifted with RUNNERD_MAX_REQUEST_RATE=0: the point here is
the daemon's own cost per cycle, not GitHub's speed limit.
Targets (issue 3): 1000 repositories < 0.5 s CPU per cycle and < 16 MiB peak RSS.
Only the 1000-repository rows are judged against them; other sizes (100, 5000)
are reported. Any failed target in any row is a failure. Exit 0 when met.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import rdtest  # noqa: E402

LABELS = ["self-hosted", "linux", "x64"]
TARGET_REPOS = 1000
TARGET_CPU_S = 0.5
TARGET_RSS_MIB = 16


def row_ok(n, r):
    """A row fails on any failed target; only the TARGET_REPOS rows are held to CPU and RSS."""
    if r["failed"]:
        return False
    if n == TARGET_REPOS and (r["cpu"] >= TARGET_CPU_S or r["rss"] >= TARGET_RSS_MIB):
        return False
    return True


def run(build, n):
    tmp = tempfile.mkdtemp(prefix="rd-bench-poll-")
    gh = rdtest.FakeGitHub(tmp)
    try:
        gh.call("POST", "/_control/ratelimit",
                {"limit": 1000000, "remaining": 1000000, "reset": int(time.time()) + 3600})
        half = n // 2
        gh.repos("bench-a", ["a%04d" % i for i in range(half)], org=True)
        gh.repos("bench-b", ["b%04d" % i for i in range(n - half)], org=True)
        # 2% of the repositories have a queued run of 2 jobs.
        for i in range(0, n, 50):
            repo = "bench-a/a%04d" % (i // 2) if i % 100 == 0 else "bench-b/b%04d" % (i // 2)
            gh.jobs(repo, LABELS, count=2)
        cfg = rdtest.base_config(gh, "docker", [rdtest.pool("p", LABELS, "img")],
                                 [{"org": "bench-a"}, {"org": "bench-b"}])
        cfg["github"]["max_connections"] = 8
        cfg["github"]["request_budget"] = "1000000/h"
        path = os.path.join(tmp, "bench.yaml")
        with open(path, "w") as f:
            f.write(rdtest.to_yaml(cfg) + "\n")
        env = dict(os.environ, RD_TEST_TOKEN=rdtest.TOKEN, RUNNERD_MAX_REQUEST_RATE="0")
        t0 = time.monotonic()
        p = subprocess.Popen([os.path.join(build, "rd_discover"), "-c", path, "--cycles", "2",
                              "--log-level", "warn"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        out, err = p.communicate(timeout=600)
        total_wall = time.monotonic() - t0
        if p.returncode != 0:
            sys.stderr.write(err)
            raise SystemExit("rd_discover failed")
        sums = [json.loads(l) for l in out.splitlines() if '"cycle"' in l]
        rows = []
        prev_req = prev_nm = 0
        for s in sums:
            watched = sum(t["repos"] for t in s["targets"])
            rows.append({"repos": watched, "cycle": "cold" if s["cycle"] == 1 else "warm",
                         "wall": s["wall_ms"] / 1000, "cpu": s["cpu_ms"] / 1000,
                         "requests": s["requests"] - prev_req,
                         "not_modified": s["not_modified"] - prev_nm,
                         "jobs": s["jobs"], "failed": s["failed"],
                         "rss": s["vmhwm_kib"] / 1024})
            prev_req, prev_nm = s["requests"], s["not_modified"]
        return rows, total_wall
    finally:
        gh.stop()
        if os.environ.get("RD_KEEP_TMP"):
            print("kept", tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="discovery cycle cost against the fake GitHub")
    ap.add_argument("--build", default=os.environ.get("RUNNERD_BUILD", os.path.join(SRC, "build")))
    ap.add_argument("--repos", default="100,1000",
                    help="comma-separated sizes, e.g. 100,1000,5000 (only 1000 is judged)")
    a = ap.parse_args(argv)
    if not os.path.exists(os.path.join(a.build, "rd_discover")):
        raise SystemExit("build %s/rd_discover first" % a.build)
    print("%6s %5s %8s %8s %9s %6s %5s %7s %13s" % ("repos", "cycle", "wall s", "cpu s",
                                                    "requests", "304s", "jobs", "failed",
                                                    "peak RSS MiB"))
    ok = True
    for n in [int(x) for x in a.repos.split(",")]:
        rows, _ = run(a.build, n)
        for r in rows:
            print("%6d %5s %8.3f %8.3f %9d %6d %5d %7d %13.1f" % (
                r["repos"], r["cycle"], r["wall"], r["cpu"], r["requests"], r["not_modified"],
                r["jobs"], r["failed"], r["rss"]))
            if not row_ok(n, r):
                ok = False
    print("targets (%d repos: cpu < %.1f s per cycle, peak RSS < %d MiB; other sizes reported, "
          "no failed target anywhere): %s"
          % (TARGET_REPOS, TARGET_CPU_S, TARGET_RSS_MIB, "met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
