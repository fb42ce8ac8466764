#!/usr/bin/env python3
"""bench/cycle: what runnerd itself costs per repository per poll cycle (issue 14).

Times the real program, not a test tool, against the fake GitHub, with every
repository holding one queued and one in_progress job (the in_progress one on a
runner that is not runnerd's), request caps lifted (RUNNERD_MAX_REQUEST_RATE=0,
request_budget 1000000/h):

  cold    `runnerd --once --dry-run`: one full cycle from nothing (org listing,
          every repository's runs and jobs, the plan). CPU time (user+sys, from
          wait4; not wall time, which is mostly the fake's), peak RSS, requests;
          the median of --runs runs.
  steady  `runnerd --dry-run` as a daemon (poll_interval 2s): after its cold
          cycle, CPU time (/proc/PID/stat) over --runs windows of --steady-s in
          which every poll is answered 304, divided by the repository polls in
          the window (counted by the fake: one `status=queued` run list per
          poll); the median window. Also the requests per steady poll.

for `repo:` targets (one per repository) and for one `org:` target, N = --sizes.
With --old DIR (a build of the previous release) the same runs are timed there
too and the ratio is printed. Prints one JSON object per row and a table.

  python3 bench/cycle.py [--build DIR] [--old DIR] [--sizes 100,1000,5000,10000]
                         [--kinds repo,org] [--runs 3] [--steady-s 10] [--old-max 5000]

Targets (issue 14): a cold cycle of 5,000 repo targets at most 6x the CPU of
1,000 and at most 1 ms per repository; the steady cycle at most 0.3 ms per
repository; the same for one org; 10,000 repo targets work. Each target is
printed with its figure and PASS/FAIL (a target whose figures were not measured
is printed as such); exit 0 when every measured target holds.
Python standard library only.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import rdtest  # noqa: E402

LABELS = ["self-hosted", "linux", "x64"]
OWNER = "bench"
TICK = os.sysconf("SC_CLK_TCK")


def setup(tmp, n):
    gh = rdtest.FakeGitHub(tmp)
    gh.call("POST", "/_control/ratelimit",
            {"limit": 10000000, "remaining": 10000000, "reset": int(time.time()) + 7200})
    names = ["r%05d" % i for i in range(n)]
    gh.repos(OWNER, names, org=True)
    for name in names:
        gh.jobs(OWNER + "/" + name, LABELS, count=1)
        gh.jobs(OWNER + "/" + name, LABELS, count=1, status="in_progress",
                run_status="in_progress")
    return gh, names


def write_config(tmp, gh, kind, names):
    targets = ([{"repo": OWNER + "/" + x} for x in names] if kind == "repo"
               else [{"org": OWNER}])
    # max_runners 0 would refuse the config; a tiny host keeps the plan honest
    cfg = rdtest.base_config(gh, "/nonexistent/docker",
                             [rdtest.pool("p", LABELS, "img", max_runners=4)], targets,
                             instance="bench")
    cfg["github"]["poll_interval"] = "2s"
    cfg["github"]["request_budget"] = "1000000/h"
    cfg["github"]["max_connections"] = 8
    path = os.path.join(tmp, "bench-%s.yaml" % kind)
    with open(path, "w") as f:
        f.write(rdtest.to_yaml(cfg) + "\n")
    return path


def env():
    return dict(os.environ, RD_TEST_TOKEN=rdtest.TOKEN, RUNNERD_MAX_REQUEST_RATE="0")


def requests(gh):
    s = gh.stats()
    return (s["requests_total"], int(s["by_status"].get("304", 0)),
            int(s.get("runs_lists", {}).get("queued", 0)))


def cold(build, gh, path):
    r0 = requests(gh)[0]
    t0 = time.monotonic()
    # stdout (the plan) and stderr to files: a pipe nobody reads while we wait would block it
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen([os.path.join(build, "runnerd"), "-c", path, "--once", "--dry-run",
                              "--log-level", "error"], stdout=fo, stderr=fe, env=env())
        # Peak RSS: VmHWM sampled while it runs (wait4's ru_maxrss would report this
        # Python's own RSS: exec records the pre-exec image's high-water mark).
        hwm = 0.0
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            try:
                hwm = max(hwm, proc_rss(p.pid))
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    wall = time.monotonic() - t0
    r1 = requests(gh)[0]
    plan = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    demand = sum(x.get("demand", 0) for x in plan)
    return {"cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime, "sys": ru.ru_stime,
            "wall": wall, "rss_mib": hwm,
            "requests": r1 - r0, "exit": p.returncode, "demand": demand,
            "err": err.decode()[-500:]}


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def steady(build, gh, path, n, cold_requests, window, runs):
    """CPU per repository poll once every poll is answered 304: the median of runs windows."""
    p = subprocess.Popen([os.path.join(build, "runnerd"), "-c", path, "--dry-run",
                          "--log-level", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
    wins = []
    try:
        r0 = requests(gh)[0]
        # the cold cycle, then one more full cycle so every list has its ETag
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and p.poll() is None:
            if requests(gh)[0] - r0 >= 2 * cold_requests:
                break
            time.sleep(0.5)
        if p.poll() is not None:
            return {"error": "runnerd exited %s: %s" % (p.returncode, p.stderr.read()[-500:])}
        for _ in range(runs):
            a_req, a_304, a_polls = requests(gh)
            a_cpu = proc_cpu(p.pid)
            t0 = time.monotonic()
            time.sleep(window)
            b_req, b_304, b_polls = requests(gh)
            b_cpu = proc_cpu(p.pid)
            dt = time.monotonic() - t0
            polls = b_polls - a_polls
            if polls <= 0:
                # a fake without the per-status count: the cold cycle's requests per repository
                per_poll = cold_requests / n
                polls = (b_req - a_req) / per_poll if per_poll else 0
            wins.append({"cpu_per_repo_ms": (b_cpu - a_cpu) * 1000 / polls if polls else None,
                         "polls_per_s": polls / dt,
                         "requests_per_poll": (b_req - a_req) / polls if polls else None,
                         "share_304": (b_304 - a_304) / max(1, b_req - a_req),
                         "cpu_s": b_cpu - a_cpu, "window_s": dt})
        rss = proc_rss(p.pid)
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    good = [w for w in wins if w["cpu_per_repo_ms"] is not None]
    if not good:
        return {"error": "no repository polls in the steady windows"}
    mid = sorted(good, key=lambda w: w["cpu_per_repo_ms"])[len(good) // 2]
    out = dict(mid)
    out["runs"] = [round(w["cpu_per_repo_ms"], 4) for w in good]
    out["rss_mib"] = rss
    return out


def measure(build, kind, n, runs, window, tmp):
    gh, names = setup(tmp, n)
    try:
        path = write_config(tmp, gh, kind, names)
        colds = [cold(build, gh, path) for _ in range(runs)]
        bad = [c for c in colds if c["exit"] != 0]
        if bad:
            return {"error": "runnerd --once --dry-run exit %d: %s" % (bad[0]["exit"], bad[0]["err"])}
        cpu = statistics.median(c["cpu"] for c in colds)
        reqs = int(statistics.median(c["requests"] for c in colds))
        row = {"kind": kind, "repos": n, "cold_cpu_s": cpu,
               "cold_cpu_per_repo_ms": cpu * 1000 / n,
               "cold_user_s": statistics.median(c["user"] for c in colds),
               "cold_sys_s": statistics.median(c["sys"] for c in colds),
               "cold_wall_s": statistics.median(c["wall"] for c in colds),
               "cold_runs": [round(c["cpu"], 3) for c in colds],
               "cold_rss_mib": max(c["rss_mib"] for c in colds),
               "requests_per_repo": reqs / n, "demand": colds[0]["demand"]}
        if window > 0:
            st = steady(build, gh, path, n, reqs, window, runs)
            row.update({"steady_" + k: v for k, v in st.items()})
        return row
    finally:
        gh.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description="runnerd's own CPU per repository per cycle")
    ap.add_argument("--build", default=os.environ.get("RUNNERD_BUILD", os.path.join(SRC, "build")))
    ap.add_argument("--old", default=None, help="a build of the previous release, for ratios")
    ap.add_argument("--old-max", type=int, default=5000,
                    help="largest N timed on the old build (it is quadratic)")
    ap.add_argument("--sizes", default="100,1000,5000,10000")
    ap.add_argument("--kinds", default="repo,org")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steady-s", type=float, default=10.0)
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    a = ap.parse_args(argv)
    rows = []
    for kind in a.kinds.split(","):
        for n in [int(x) for x in a.sizes.split(",")]:
            tmp = tempfile.mkdtemp(prefix="rd-bench-cycle-")
            try:
                row = measure(a.build, kind, n, a.runs, a.steady_s, tmp)
                if a.old and n <= a.old_max and "error" not in row:
                    otmp = tempfile.mkdtemp(prefix="rd-bench-cycle-old-")
                    try:
                        old = measure(a.old, kind, n, 1, a.steady_s, otmp)
                    finally:
                        shutil.rmtree(otmp, ignore_errors=True)
                    row["old_cold_cpu_s"] = old.get("cold_cpu_s")
                    row["old_steady_cpu_per_repo_ms"] = old.get("steady_cpu_per_repo_ms")
                    row["old_cold_rss_mib"] = old.get("cold_rss_mib")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("%5s %6s %10s %9s %11s %8s %9s %9s %9s %9s" % (
        "kind", "repos", "cold cpu s", "cold ms/r", "steady ms/r", "RSS MiB", "req/repo",
        "req/poll", "cold/old", "stdy/old"))
    by = {(r["kind"], r["repos"]): r for r in rows}
    for r in rows:
        if "error" in r:
            print("%5s %6d  ERROR %s" % (r.get("kind", "?"), r.get("repos", 0), r["error"]))
            continue
        old, olds = r.get("old_cold_cpu_s"), r.get("old_steady_cpu_per_repo_ms")
        st = r.get("steady_cpu_per_repo_ms")
        print("%5s %6d %10.3f %9.3f %11s %8.1f %9.2f %9s %9s %9s" % (
            r["kind"], r["repos"], r["cold_cpu_s"], r["cold_cpu_per_repo_ms"],
            "%.3f" % st if st else "-",
            max(r["cold_rss_mib"], r.get("steady_rss_mib", 0)), r["requests_per_repo"],
            "%.2f" % r["steady_requests_per_poll"] if r.get("steady_requests_per_poll") else "-",
            "%.2f" % (r["cold_cpu_s"] / old) if old else "-",
            "%.2f" % (st / olds) if olds and st else "-"))
    print("(cold/old, stdy/old: this build's CPU over the --old build's, same N and kind)")
    ok = True
    print("targets (issue 14 item 1):")

    def verdict(name, value, limit, fmt):
        nonlocal ok
        if value is None:
            print("  %-46s not measured" % name)
            return
        good = value <= limit
        ok = ok and good
        print("  %-46s %s (limit %s)  %s" % (name, fmt % value, fmt % limit,
                                           "PASS" if good else "FAIL"))

    for kind in a.kinds.split(","):
        big, small = by.get((kind, 5000)), by.get((kind, 1000))
        if big and small and "error" not in big and "error" not in small:
            verdict("%s: cold CPU of 5,000 / 1,000" % kind,
                    big["cold_cpu_s"] / small["cold_cpu_s"], 6.0, "%.2fx")
        else:
            verdict("%s: cold CPU of 5,000 / 1,000" % kind, None, 6.0, "%.2fx")
        for r in rows:
            if r.get("kind") != kind or r.get("repos", 0) < 1000:
                continue
            if "error" in r:
                print("  %-46s FAIL: %s" % ("%s %d" % (kind, r["repos"]), r["error"][:60]))
                ok = False
                continue
            verdict("%s %d: cold ms per repository" % (kind, r["repos"]),
                    r["cold_cpu_per_repo_ms"], 1.0, "%.3f")
            verdict("%s %d: steady ms per repository poll" % (kind, r["repos"]),
                    r.get("steady_cpu_per_repo_ms"), 0.3, "%.3f")
    print("targets: %s" % ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
