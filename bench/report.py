#!/usr/bin/env python3
"""bench/report.py: run every benchmark present and write bench/RESULTS.md.

    python3 bench/report.py [--build DIR] [--out bench/RESULTS.md] [--quick]
                            [--idle-repos 200] [--idle-minutes 3] [--skip poll,scaleup,...]
                            [--update cycle,...] [--old DIR]

Benchmarks (each is optional: a missing one is reported "not available"):
  poll     bench/poll.py --repos 100,1000,5000   discovery cycles: CPU per cycle, peak RSS
  cycle    bench/cycle.py                        runnerd itself (--once --dry-run, daemon) on
           repo and org targets, N = 100..10,000, a queued and an in_progress job per repo:
           CPU per repository per cycle (cold, steady), RSS, requests, ratio to --old
  scaleup  bench/scaleup.py                      queued job -> docker run spawn, 100 at once
  webhook  bench/webhook.py                      signed delivery -> docker run spawn
  fleet    bench/fleet.py                        fleet mode: broker message -> docker run spawn,
           idle REST/broker requests, makespan on one host and on three
  idle     (built in) runnerd against the fake GitHub with N idle repositories for M minutes,
           default poll settings: API requests, 304s and core units spent per hour per
           idle repository, set against GitHub's published limits.
Writes the machine (nproc, memory, kernel, CPU model, load), the exact commands, a table of
the figures (with the value the previous RESULTS.md gave for the same figure, so a change can
be read as better or worse) and each benchmark's own output. With --old DIR (a build of the
previous release), poll, scaleup and webhook also run on that build, right after this one's
runs, and the table gets a column of those figures: the same harness on the same machine, so a
figure can be compared even when the previous RESULTS.md was made on other hardware. --update reruns only the named
benchmarks and keeps the others' results from --cache (one benchmark after a change, without
an hour of the rest). Python standard library only.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = ("poll", "cycle", "scaleup", "webhook", "fleet")
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
os.environ.setdefault("RUNNERD_SRC", SRC)

# GitHub's published limits (shared/github-api.md section 4).
RATE_CAP = 12  # src/pace.c default: requests/s, bursts of 60
POLL_S = 15  # github.poll_interval default
PRIMARY_PER_HOUR = 5000        # PAT / App installation floor, requests per hour (304s free)
SECONDARY_POINTS_PER_MIN = 900  # per REST endpoint; GET = 1 point, mutations = 5
JIT_PER_MIN = 10000 / 60.0     # actions_runner_registration bucket: 10,000/h, about 166/min
CONCURRENT_MAX = 100           # concurrent requests (secondary limit)


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    except OSError:
        pass
    return {
        "nproc": sh(["nproc"]),
        "memory": mem,
        "kernel": platform.release(),
        "cpu": cpu,
        "os": sh(["sh", "-c", ". /etc/os-release 2>/dev/null && echo $PRETTY_NAME"]),
        "commit": sh(["git", "-C", SRC, "rev-parse", "--short", "HEAD"]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def run_bench(name, cmd, timeout):
    """Run one benchmark; (ok, output, seconds)."""
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=SRC)
        out = p.stdout + (("\n[stderr]\n" + p.stderr[-3000:]) if p.returncode != 0 else "")
        return p.returncode, out, time.monotonic() - t
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"")
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return "timeout", out + "\n[timed out after %d s]" % timeout, time.monotonic() - t


def help_text(path):
    try:
        return subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True,
                              timeout=30, cwd=SRC).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def parse_poll(out):
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 9 and f[0].isdigit() and f[1] in ("cold", "warm"):
            rows.append({"repos": int(f[0]), "cycle": f[1], "wall": float(f[2]),
                         "cpu": float(f[3]), "requests": int(f[4]), "not_modified": int(f[5]),
                         "rss_mib": float(f[8])})
    return rows


def parse_latency_table(out):
    """Rows "label  p50 p90 p99 max n" of a latency table (scaleup / webhook text output)."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^(.*?\S)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s*$", line)
        if m and not m.group(1)[0].isdigit():
            rows[m.group(1)] = {"p50": float(m.group(2)), "p90": float(m.group(3)),
                                "p99": float(m.group(4)), "max": float(m.group(5)),
                                "n": int(m.group(6))}
    return rows


def idle_api(build, nrepos, minutes, warm):
    """runnerd against the fake GitHub with nrepos idle repositories (one org) and the default
    poll settings; returns the fake's request counters over `minutes` after a warm-up."""
    import rdtest
    tmp = tempfile.mkdtemp(prefix="rd-bench-idle-")
    gh = rdtest.FakeGitHub(tmp)
    rd = None
    try:
        gh.repos("idle-org", ["r%04d" % i for i in range(nrepos)], org=True)
        pools = [rdtest.pool("linux-x64", ["self-hosted", "linux", "x64"], "fake-runner:x64")]
        cfg = rdtest.base_config(gh, rdtest.FAKE_DOCKER, pools, [{"org": "idle-org"}],
                                 instance="bench-idle")
        cfg["github"] = {"api_url": gh.url, "token_env": "RD_TEST_TOKEN",
                         "poll_interval": "15s", "request_budget": "4000/h",
                         "max_connections": 8}
        env = {"FAKE_DOCKER_STATE": os.path.join(tmp, "docker")}
        rd = rdtest.Runnerd(tmp, cfg, env=env)
        rd.start()
        # Not the cold first cycle (200s that set the ETags), nor the pacer settling on the
        # idle repos' interval (poll_interval, slowed only as far as the rate cap needs): the
        # steady state.
        time.sleep(warm)
        gh.call("POST", "/_control/stats/reset")
        t0 = time.monotonic()
        time.sleep(minutes * 60.0)
        st = gh.stats()
        secs = time.monotonic() - t0
        rd.stop(timeout=60)
        return {"repos": nrepos, "seconds": secs, "stats": st, "warm": warm,
                "config": "poll_interval 15s, request_budget 4000/h, max_connections 8 "
                          "(the documented defaults), one org target"}
    finally:
        if rd is not None and rd.alive():
            rd.kill9()
        gh.stop()


def fmt(v, nd=1):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("RUNNERD_BUILD", os.path.join(SRC, "build")))
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--quick", action="store_true",
                    help="smaller runs (webhook 100 deliveries, poll without 5000, idle 1 min)")
    ap.add_argument("--idle-repos", type=int, default=200)
    ap.add_argument("--idle-minutes", type=float, default=6.0)
    ap.add_argument("--idle-warmup", type=float, default=240.0, help="seconds before measuring")
    ap.add_argument("--skip", default="",
                    help="comma-separated: poll,cycle,scaleup,webhook,idle")
    ap.add_argument("--old", default=None,
                    help="a build of the previous release: bench/cycle prints ratios to it, and "
                         "poll, scaleup and webhook run on it too (a column of their figures "
                         "measured on this machine)")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "rd-bench-report.json"),
                    help="the raw results are saved here after the runs")
    ap.add_argument("--reuse", action="store_true",
                    help="do not run anything: write RESULTS.md from --cache")
    ap.add_argument("--update", default="",
                    help="comma-separated: rerun only these, keep the rest from --cache")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    os.environ["RUNNERD_BUILD"] = a.build  # rdtest (imported later) takes runnerd from there
    os.environ.setdefault("RUNNERD_BIN", os.path.join(a.build, "runnerd"))
    skip = set(x for x in a.skip.split(",") if x)
    cached = None
    if a.update:
        with open(a.cache) as f:
            cached = json.load(f)
        skip = set(BENCHES + ("idle",)) - set(x for x in a.update.split(",") if x)
    previous = read_previous(a.out)
    m = machine()
    load0 = os.getloadavg()
    print("machine: %s" % json.dumps(m))

    results = {}   # name -> dict(cmd, rc, out, secs) or None when not available
    results_old = {}  # the same, of the --old build (poll, scaleup, webhook)
    py = "python3"

    def run_old(name, cmd, shown, timeout):
        if not a.old:
            return
        print("running: bench/%s.py on the --old build" % name, flush=True)
        rc, out, secs = run_bench(name, cmd, timeout)
        results_old[name] = {"cmd": shown, "rc": rc, "out": out, "secs": secs}
    if a.reuse:
        with open(a.cache) as f:
            saved = json.load(f)
        return write(a, saved["machine"], saved["results"], saved["idle"], saved["load"],
                     saved.get("previous") or previous, saved.get("results_old"))

    # --- poll
    poll = os.path.join(HERE, "poll.py")
    if "poll" in skip:
        results["poll"] = "skipped"
    elif os.path.exists(poll):
        repos = "100,1000" if a.quick else "100,1000,5000"
        cmd = [sys.executable, poll, "--build", a.build, "--repos", repos]
        print("running: bench/poll.py --repos %s" % repos, flush=True)
        rc, out, secs = run_bench("poll", cmd, 1800)
        results["poll"] = {"cmd": "%s bench/poll.py --build %s --repos %s" % (py, a.build, repos),
                           "rc": rc, "out": out, "secs": secs}
        run_old("poll", [sys.executable, poll, "--build", a.old or "", "--repos", repos],
                "%s bench/poll.py --build %s --repos %s" % (py, a.old, repos), 1800)
    else:
        results["poll"] = None

    # --- cycle (runnerd itself, repo and org targets)
    cyc = os.path.join(HERE, "cycle.py")
    if "cycle" in skip:
        results["cycle"] = "skipped"
    elif os.path.exists(cyc):
        sizes = "100,1000" if a.quick else "100,1000,5000,10000"
        cmd = [sys.executable, cyc, "--build", a.build, "--sizes", sizes]
        shown = "%s bench/cycle.py --build %s --sizes %s" % (py, a.build, sizes)
        if a.old:
            cmd += ["--old", a.old, "--old-max", "1000"]
            shown += " --old %s --old-max 1000" % a.old
        print("running: bench/cycle.py --sizes %s" % sizes, flush=True)
        rc, out, secs = run_bench("cycle", cmd, 5400)
        results["cycle"] = {"cmd": shown, "rc": rc, "out": out, "secs": secs}
    else:
        results["cycle"] = None

    # --- scaleup
    scaleup = os.path.join(HERE, "scaleup.py")
    if "scaleup" in skip:
        results["scaleup"] = "skipped"
    elif os.path.exists(scaleup):
        h = help_text(scaleup)
        cmd = [sys.executable, scaleup]
        shown = [py, "bench/scaleup.py"]
        if "--build" in h:
            cmd += ["--build", a.build]
            shown += ["--build", a.build]
        print("running: bench/scaleup.py", flush=True)
        rc, out, secs = run_bench("scaleup", cmd, 1800)
        results["scaleup"] = {"cmd": " ".join(shown), "rc": rc, "out": out, "secs": secs}
        if "--build" in h:
            run_old("scaleup", [sys.executable, scaleup, "--build", a.old or ""],
                    "%s bench/scaleup.py --build %s" % (py, a.old), 1800)
    else:
        results["scaleup"] = None

    # --- webhook
    webhook = os.path.join(HERE, "webhook.py")
    if "webhook" in skip:
        results["webhook"] = "skipped"
    elif os.path.exists(webhook):
        runs = "100" if a.quick else "500"
        cmd = [sys.executable, webhook, "--build", a.build, "--runs", runs]
        print("running: bench/webhook.py --runs %s" % runs, flush=True)
        rc, out, secs = run_bench("webhook", cmd, 1800)
        results["webhook"] = {"cmd": "%s bench/webhook.py --build %s --runs %s" % (
            py, a.build, runs), "rc": rc, "out": out, "secs": secs}
        run_old("webhook", [sys.executable, webhook, "--build", a.old or "", "--runs", runs],
                "%s bench/webhook.py --build %s --runs %s" % (py, a.old, runs), 1800)
    else:
        results["webhook"] = None

    # --- fleet
    fleet = os.path.join(HERE, "fleet.py")
    if "fleet" in skip:
        results["fleet"] = "skipped"
    elif os.path.exists(fleet):
        cmd = [sys.executable, fleet, "--build", a.build]
        print("running: bench/fleet.py", flush=True)
        rc, out, secs = run_bench("fleet", cmd, 1800)
        results["fleet"] = {"cmd": "%s bench/fleet.py --build %s" % (py, a.build), "rc": rc,
                            "out": out, "secs": secs}
    else:
        results["fleet"] = None

    # --- idle API cost
    idle = None
    if "idle" not in skip:
        minutes = min(1.0, a.idle_minutes) if a.quick else a.idle_minutes
        print("running: idle API cost, %d repositories, %.1f min" % (a.idle_repos, minutes),
              flush=True)
        try:
            idle = idle_api(a.build, a.idle_repos, minutes, 60.0 if a.quick else a.idle_warmup)
        except Exception as e:  # report it rather than lose the other figures
            idle = {"error": str(e)}
    load = [load0[0], os.getloadavg()[0]]
    if cached is not None:
        # --update: the benchmarks not named keep their cached results.
        for name in BENCHES:
            if results.get(name) == "skipped" and isinstance(cached["results"].get(name), dict):
                results[name] = cached["results"][name]
            if name not in results_old and name in (cached.get("results_old") or {}):
                results_old[name] = cached["results_old"][name]
        if "idle" in skip:
            idle = cached.get("idle")
        previous = cached.get("previous") or previous
        load = [min(load[0], cached["load"][0]), max(load[1], cached["load"][1])]
    with open(a.cache, "w") as f:
        json.dump({"machine": m, "results": results, "idle": idle, "load": load,
                   "previous": previous, "results_old": results_old}, f)
    return write(a, m, results, idle, load, previous, results_old)


def read_previous(path):
    """The figures table of the RESULTS.md about to be replaced: {figure: value}, and the
    commit it was made at."""
    prev = {"commit": None, "figures": {}}
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return prev
    mt = re.search(r"\(commit ([0-9a-f]+)\)", text)
    if mt:
        prev["commit"] = mt.group(1)
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) >= 3 and cells[0] not in ("figure", "---"):
            prev["figures"].setdefault(cells[0], cells[1])
    return prev


def figures(results):
    """[(figure, value, source)] of the benchmarks' outputs in results."""
    figs = []
    res = results.get("poll")
    poll_rows = parse_poll(res["out"]) if isinstance(res, dict) else []
    for r in poll_rows:
        if r["repos"]:
            figs.append(("CPU per poll cycle per repo, %d repos, %s cycle" % (r["repos"], r["cycle"]),
                         "%.1f µs (%.3f s per cycle, %d requests, %d 304s, wall %.2f s)" % (
                             r["cpu"] / r["repos"] * 1e6, r["cpu"], r["requests"],
                             r["not_modified"], r["wall"]), "bench/poll"))
    by_n = {}
    for r in poll_rows:
        by_n[r["repos"]] = max(by_n.get(r["repos"], 0), r["rss_mib"])
    for n in sorted(by_n):
        figs.append(("Peak RSS (VmHWM), %d repos" % n, "%.1f MiB" % by_n[n], "bench/poll"))
    res = results.get("cycle")
    if isinstance(res, dict):
        for line in res["out"].splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if "error" in r:
                figs.append(("runnerd cycle, %s targets, %d repos" % (r.get("kind"), r.get("repos", 0)),
                             "error: %s" % r["error"][:200], "bench/cycle"))
                continue
            what = ("%d `repo:` targets" % r["repos"] if r["kind"] == "repo"
                    else "one org of %d repos" % r["repos"])
            old = r.get("old_cold_cpu_s")
            figs.append(("runnerd --once --dry-run cold cycle, %s: CPU per repo" % what,
                         "%.3f ms (%.3f s CPU, median of %d: %s; wall %.1f s; %.2f requests per "
                         "repo; peak RSS %.1f MiB)%s" % (
                             r["cold_cpu_per_repo_ms"], r["cold_cpu_s"], len(r["cold_runs"]),
                             ", ".join("%.3f" % x for x in r["cold_runs"]), r["cold_wall_s"],
                             r["requests_per_repo"], r["cold_rss_mib"],
                             "; previous release %.3f s, ratio %.2f" % (old, r["cold_cpu_s"] / old)
                             if old else ""), "bench/cycle"))
            if r.get("steady_cpu_per_repo_ms") is not None:
                oldst = r.get("old_steady_cpu_per_repo_ms")
                figs.append(("runnerd daemon steady cycle (304s), %s: CPU per repo" % what,
                             "%.3f ms (%.0f%% 304s, %.0f repo polls/s, RSS %.1f MiB)%s" % (
                                 r["steady_cpu_per_repo_ms"], 100 * r["steady_share_304"],
                                 r["steady_polls_per_s"], r["steady_rss_mib"],
                                 "; previous release %.3f ms" % oldst if oldst else ""),
                             "bench/cycle"))
    res = results.get("scaleup")
    if isinstance(res, dict):
        # "label  n  p50s p90s p99s maxs" rows, then per-burst "key  1.234s" lines and a
        # "target: ..." line per burst variant.
        section = ""
        for line in res["out"].splitlines():
            if line.startswith("2. burst"):
                section = line.split(",", 2)[-1].rsplit(", load", 1)[0].strip()
            mt = re.match(r"^(\S.*?\S)\s+(\d+)\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s*$",
                          line)
            if mt:
                figs.append(("spawn latency (scaleup): %s" % mt.group(1),
                             "p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms (n=%s)" % (
                                 float(mt.group(3)) * 1e3, float(mt.group(4)) * 1e3,
                                 float(mt.group(5)) * 1e3, float(mt.group(6)) * 1e3,
                                 mt.group(2)), "bench/scaleup"))
            mt = re.match(r"^(visible->last spawned|queued->last spawned|runnerd_cpu)\s+([\d.]+)s$",
                          line)
            if mt and section:
                figs.append(("burst (scaleup, %s): %s" % (section, mt.group(1)),
                             "%.3f s" % float(mt.group(2)), "bench/scaleup"))
    res = results.get("webhook")
    if isinstance(res, dict):
        for label, row in parse_latency_table(res["out"]).items():
            figs.append(("webhook: %s" % label, "p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, "
                         "max %.1f ms (n=%d)" % (row["p50"], row["p90"], row["p99"], row["max"],
                                                 row["n"]), "bench/webhook"))
    res = results.get("fleet")
    if isinstance(res, dict):
        for line in res["out"].splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            name = r.pop("figure", None)
            if name:
                figs.append(("fleet: %s" % name, ", ".join(
                    "%s %s" % (k.replace("_", " "), v) for k, v in r.items()), "bench/fleet"))
    return figs


def write(a, m, results, idle, load, previous=None, results_old=None):
    previous = previous or {"commit": None, "figures": {}}
    figs = figures(results)
    oldf = {f: v for f, v, _ in figures(results_old or {})}

    limits = []
    if idle and "stats" in idle:
        st = idle["stats"]
        hours = idle["seconds"] / 3600.0
        n = idle["repos"]
        req_h = st["requests_total"] / hours
        core_h = st.get("core_used", 0) / hours
        nm = st.get("conditional_hits", st.get("by_status", {}).get("304", 0))
        runs_path = "GET /repos/{o}/{r}/actions/runs"
        runs_per_min = st.get("by_path", {}).get(runs_path, 0) / (idle["seconds"] / 60.0)
        per_min_points = 0.0
        for k, v in st.get("by_path", {}).items():
            w = 1 if k.split(" ")[0] in ("GET", "HEAD", "OPTIONS") else 5
            per_min_points = max(per_min_points, v * w / (idle["seconds"] / 60.0))
        figs.append(("API requests per hour per idle repo (ETags on)",
                     "%.2f requests, of which %.0f%% 304s; %.2f core units" % (
                         req_h / n, 100.0 * nm / max(1, st["requests_total"]), core_h / n),
                     "idle run"))
        limits = [
            ("Primary: %d/h (PAT / App floor; 304s free)" % PRIMARY_PER_HOUR,
             "%.0f core units/h for %d repos (%.2f per repo)" % (core_h, n, core_h / n),
             "%.1f%%" % (100.0 * core_h / PRIMARY_PER_HOUR),
             ("idle repos cost none of it (their polls are 304s)" if core_h == 0 else
              "%.0f idle repos" % (PRIMARY_PER_HOUR / (core_h / n)))),
            ("runnerd's own budget: request_budget 4000/h (charged requests; 304s refunded)",
             "%.0f charged requests/h" % core_h, "%.1f%%" % (100.0 * core_h / 4000), ""),
            ("runnerd's rate cap: %d requests/s (all requests but registrations, 304s too)" % RATE_CAP,
             "%.0f requests/h for %d repos (%.2f per repo)" % (req_h, n, req_h / n),
             "%.1f%%" % (100.0 * req_h / (RATE_CAP * 3600)),
             "idle repos are polled at poll_interval while the fleet fits 80%% of the cap "
             "(%.0f repos at 2 requests per %d s poll); past that the pacer slows them, so "
             "polls never pass 80%% of it" % (0.8 * RATE_CAP * POLL_S / 2, POLL_S)),
            ("Secondary: %d points/min per endpoint (GET 1, POST/DELETE 5; 304s count)" %
             SECONDARY_POINTS_PER_MIN,
             "%.1f points/min on the busiest endpoint (%.1f run-list GETs/min)" % (
                 per_min_points, runs_per_min),
             "%.1f%%" % (100.0 * per_min_points / SECONDARY_POINTS_PER_MIN),
             "any number of repos: the rate cap keeps every endpoint under %d GETs/min" % (
                 RATE_CAP * 60) if RATE_CAP * 60 < SECONDARY_POINTS_PER_MIN else
             "%.0f idle repos per endpoint" % (SECONDARY_POINTS_PER_MIN / (per_min_points / n))
             if per_min_points else ""),
            ("Secondary: %d concurrent requests" % CONCURRENT_MAX,
             "%d concurrent connections at most (max_connections 8)" % st.get(
                 "max_concurrent_connections", 0),
             "%.0f%%" % (100.0 * st.get("max_concurrent_connections", 0) / CONCURRENT_MAX), ""),
            ("JIT configs: ~%d/min (actions_runner_registration 10,000/h)" % JIT_PER_MIN,
             "one per runner start; 0 while idle", "0%",
             "bounded by host max_runners per start wave"),
        ]

    # ------------------------------------------------------------------ write
    L = []
    L.append("# runnerd benchmark results")
    L.append("")
    flags = (" --quick" if a.quick else "") + (
        " --idle-minutes %g" % a.idle_minutes if a.idle_minutes != 6.0 else "") + (
        " --idle-repos %d" % a.idle_repos if a.idle_repos != 200 else "")
    L.append("Generated by `python3 bench/report.py%s` on %s (commit %s). Do not edit by hand: "
             "run it again." % (flags, m["date"], m["commit"]))
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append("| CPU | %s |" % m["cpu"])
    L.append("| nproc | %s |" % m["nproc"])
    L.append("| memory | %s |" % m["memory"])
    L.append("| kernel | %s |" % m["kernel"])
    L.append("| OS | %s |" % m["os"])
    L.append("| load average (1 min) | %.1f at start, %.1f at end; the benchmarks print the load "
             "during their runs below (on a shared machine, a load above ~1 means other work ran "
             "at the same time and the latencies are pessimistic) |" % (load[0], load[1]))
    L.append("")
    L.append("## Figures")
    L.append("")
    if figs:
        pf = previous["figures"]
        L.append("The previous column is the same figure in the RESULTS.md this file replaced "
                 "(commit %s); a dash: that file had no such figure." % (
                     previous["commit"] or "none"))
        L.append("")
        if oldf:
            L.append("The column after it is the same figure of the previous release, built "
                     "at `%s`, measured by the same harness on this machine right after this "
                     "build's run (bench/cycle gives its own ratios in the value column)."
                     % a.old)
            L.append("")
            L.append("| figure | value | previous | previous release, this machine | source |")
            L.append("|---|---|---|---|---|")
        else:
            L.append("| figure | value | previous | source |")
            L.append("|---|---|---|---|")
        for f, v, src in figs:
            if oldf:
                L.append("| %s | %s | %s | %s | %s |" % (f, v, pf.get(f, "-"), oldf.get(f, "-"),
                                                         src))
            else:
                L.append("| %s | %s | %s | %s |" % (f, v, pf.get(f, "-"), src))
    else:
        L.append("(no figures: no benchmark ran)")
    L.append("")
    L.append("## API spend of idle repositories against GitHub's limits")
    L.append("")
    if idle and "stats" in idle:
        L.append("runnerd ran against the fake GitHub with %d idle repositories (%s) for %.1f "
                 "minutes after a %.0f s warm-up (the cold first cycle, and the pacer settling the idle "
                 "repos' interval: poll_interval, slowed only as far as the budget and the rate "
                 "cap need). The figures "
                 "are the fake's counters (`/_control/stats`) over that window, extrapolated "
                 "to one hour. The fake counts every TCP connection, the harness's own control "
                 "calls included." % (idle["repos"], idle["config"], idle["seconds"] / 60.0,
                                      idle["warm"]))
        L.append("")
        L.append("| limit | runnerd | share | fits |")
        L.append("|---|---|---|---|")
        for row in limits:
            L.append("| %s |" % " | ".join(row))
        L.append("")
        L.append("Raw counters: `%s`" % json.dumps({k: idle["stats"].get(k) for k in (
            "requests_total", "by_status", "conditional_hits", "core_used",
            "max_concurrent_connections")}, sort_keys=True))
    elif idle:
        L.append("The idle run failed: %s" % idle.get("error"))
    else:
        L.append("skipped")
    L.append("")
    L.append("## Benchmarks and commands")
    L.append("")
    missing = []
    for name in BENCHES:
        res = results.get(name)
        L.append("### bench/%s" % name)
        L.append("")
        if res is None:
            L.append("not available (bench/%s.py is not in this checkout)" % name)
            missing.append(name)
        elif res == "skipped":
            L.append("skipped (--skip)")
        else:
            L.append("Command: `%s` (exit %s, %.0f s)" % (res["cmd"], res["rc"], res["secs"]))
            L.append("")
            L.append("```")
            L.append(res["out"].rstrip())
            L.append("```")
        res = (results_old or {}).get(name)
        if isinstance(res, dict):
            L.append("")
            L.append("The previous release, on this machine: `%s` (exit %s, %.0f s)" % (
                res["cmd"], res["rc"], res["secs"]))
            L.append("")
            L.append("```")
            L.append(res["out"].rstrip())
            L.append("```")
        L.append("")
    if missing:
        L.append("Not available: %s." % ", ".join("bench/%s" % x for x in missing))
        L.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(L))
    print("wrote %s" % a.out)
    for name in BENCHES:
        res = results.get(name)
        state = ("not available" if res is None else res if isinstance(res, str)
                 else "exit %s" % res["rc"])
        print("  bench/%s: %s" % (name, state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
