#!/usr/bin/env python3
"""bench/scaleup: how fast queued jobs become `docker run` children (not a ctest test).

Two measurements against the fake GitHub (poll_interval 1s) and the docker CLI
double (tests/fake_docker):

 1. latency: 200 jobs queued a few at a time (batches of 1-5 at random
    intervals, so queue times fall anywhere in the poll cycle). Per job:
    queued (the control call returned) -> runnerd spawned its `docker run`
    (runnerd's own log line, ms resolution); also from the first
    `GET .../actions/runs` after the job was queued ("visible to the poller"),
    and to the moment the double itself recorded the call (adds the double's
    Python start-up, which is not runnerd's).
 2. burst: 100 jobs queued at once (5 repos x 20) with host caps large enough;
    time until the 100th `docker run` is spawned, from the queueing and from the
    first runs GET after it. Target (issue 4): 100 runners within 2 s of the jobs
    becoming visible to the poller.

Also: 0. the fake GitHub alone answering the burst's generate-jitconfig POSTs,
and the burst with a /bin/sh stub as docker (no Python start-up per container)
to separate runnerd's cost from the doubles'. Environment: BENCH_LOG_LEVEL
(runnerd --log-level, default info), BENCH_ONLY_STUB=1 (burst: the stub only).

Front door of the double (--front-door): "zygote" (default when BUILD/rd_fake_docker
exists) starts `fake_docker --zygote` per bench directory and gives runnerd the C
client rd_fake_docker as docker.binary (a fork of a preloaded interpreter per
call instead of a python3 start-up); "python" gives it the Python script itself.
--double-sched (zygote only): "idle" (default) runs the double's server, calls and
containers under SCHED_IDLE, so their CPU (~130 ms per `docker run` + container in
a 2-core VM, mostly page faults) goes after runnerd's and the fake GitHub's, as the
sh stub's would; "normal" lets them compete (the double then slows runnerd down on
2 cores); "nice" is nice +19.

Usage: python3 bench/scaleup.py [--build DIR] [--jobs 200] [--burst 100] [--rate R] [--keep]
       [--front-door zygote|python] [--double-sched idle|normal|nice]
Prints a table and the ratios to the target. Standard library only.
"""
import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

import rdtest  # noqa: E402

X64 = ["self-hosted", "linux", "x64"]
SPAWNED = re.compile(r"^(\S+) INFO supervisor: (\S+): docker run spawned \(.*job (\d+)\)")
RUNS_PATH = "GET /repos/{o}/{r}/actions/runs"


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class RunsWatch:
    """Watches the fake GitHub's request counters: when did a runs listing arrive?"""

    def __init__(self, gh, interval=0.01):
        self.gh, self.interval = gh, interval
        self.times = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        last = None
        while not self._stop.is_set():
            try:
                n = self.gh.stats()["by_path"].get(RUNS_PATH, 0)
            except Exception:  # noqa: BLE001 - a missed sample is fine
                n = last
            now = time.time()
            if last is not None and n is not None and n > last:
                self.times.append(now)
            last = n
            self._stop.wait(self.interval)

    def first_after(self, t):
        for x in self.times:
            if x > t:
                return x
        return None

    def stop(self):
        self._stop.set()
        self._t.join(5)


FRONT_DOOR = {"door": "python", "client": None, "sched": "normal"}  # set by main()


class Bench:
    def __init__(self, tmp, name, pools, host, repos, max_connections=8, rate=None,
                 docker=None, sched=None, reg_rate=None):
        self.tmp = os.path.join(tmp, name)
        os.makedirs(self.tmp)
        self.zygote = None
        self.gh = rdtest.FakeGitHub(self.tmp)
        self.gh.repos("octo-org", repos)
        self.state_dir = os.path.join(self.tmp, "docker")
        self.env = dict(os.environ, FAKE_DOCKER_STATE=self.state_dir, FAKE_DOCKER_MAX_LIFE="300",
                        RD_TEST_TOKEN=rdtest.TOKEN)
        self.env.pop("FAKE_DOCKER_ZYGOTE", None)
        self.double = docker is None  # the docker double (not the sh stub)
        self.docker = docker or rdtest.FAKE_DOCKER
        if self.double and FRONT_DOOR["door"] == "zygote":
            self.docker = FRONT_DOOR["client"]
            self.zygote = start_zygote(self.tmp, self.state_dir, self.env,
                                       sched or FRONT_DOOR["sched"])
        self.env["STUB_DOCKER_DIR"] = os.path.join(tmp, "stub")
        if rate is not None:
            self.env["RUNNERD_MAX_REQUEST_RATE"] = str(rate)  # 0 = no rate cap
        if reg_rate is not None:
            self.env["RUNNERD_MAX_REGISTRATION_RATE"] = str(reg_rate)  # 0 = no cap
        cfg = rdtest.base_config(self.gh, self.docker, pools,
                                 [{"repo": "octo-org/" + r} for r in repos],
                                 instance="bench", host=host, shutdown_grace="5s")
        cfg["github"]["max_connections"] = max_connections
        self.cfg_path = os.path.join(self.tmp, "runnerd.yaml")
        with open(self.cfg_path, "w") as f:
            f.write(rdtest.to_yaml(cfg) + "\n")
        self.log_path = os.path.join(self.tmp, "runnerd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([rdtest.RUNNERD, "-c", self.cfg_path, "--log-level", os.environ.get("BENCH_LOG_LEVEL", "info")],
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=self.env)
        rdtest.wait_until(lambda: "running:" in open(self.log_path).read(), 20, 0.05,
                          "runnerd to run")
        time.sleep(1.5)  # first poll cycle done, repos known
        self.watch = RunsWatch(self.gh)

    def spawned(self):
        """job id -> (wall time runnerd spawned docker run, runner name)."""
        out = {}
        with open(self.log_path) as f:
            for line in f:
                m = SPAWNED.match(line)
                if m:
                    out[int(m.group(3))] = (parse_ts(m.group(1)), m.group(2))
        return out

    def double_calls(self):
        """runner name -> time the double recorded its `run` call."""
        out = {}
        path = os.path.join(self.state_dir, "calls.jsonl")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    try:
                        c = json.loads(line)
                    except ValueError:
                        continue  # a line the double is still writing: read it next time
                    if c.get("cmd") == "run" and "--name" in c["argv"]:
                        out[c["argv"][c["argv"].index("--name") + 1]] = c["t"]
        return out

    def close(self):
        self.watch.stop()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        env = dict(self.env)
        try:
            if self.double:
                rdtest.remove_containers(self.docker, "bench", env=env)
        finally:
            if self.zygote is not None:
                stop_zygote(self.zygote)
            self.gh.stop()
            self.log.close()


def start_zygote(tmp, state_dir, env, sched_name):
    """`fake_docker --zygote` serving $FAKE_DOCKER_STATE/zygote.sock; returns once it listens."""
    os.makedirs(state_dir, exist_ok=True)
    sock = os.path.join(state_dir, "zygote.sock")
    log = open(os.path.join(tmp, "zygote.log"), "w")
    # Through its shebang (/usr/bin/python3), like the double without a server.
    sched = {"normal": [], "nice": ["--nice", "19"], "idle": ["--idle"]}[sched_name]
    proc = subprocess.Popen([rdtest.FAKE_DOCKER, "--zygote", "--socket", sock] + sched,
                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        rdtest.wait_until(lambda: os.path.exists(sock) or proc.poll() is not None, 20, 0.05,
                          "the fake docker server to listen")
    except AssertionError:
        stop_zygote(proc)
        raise
    if proc.poll() is not None:
        raise RuntimeError("fake_docker --zygote exited %s (see %s/zygote.log)" % (proc.returncode, tmp))
    return proc


def stop_zygote(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def latency(tmp, njobs, rate=None):
    repos = ["r0"]  # one repository: every runs listing is the one that can see the jobs
    pool = rdtest.pool("x64", X64, "fake-runner:x64", cpus=0.1, memory="64MiB",
                       max_runners=200, idle_timeout="5s")
    # ~3.7 jobs/s for a minute: more registrations than GitHub's 10,000/h allows, so
    # runnerd's registration bucket is lifted here (as in bench/webhook).
    b = Bench(tmp, "latency", [pool], {"cpus": 64, "memory": "64GiB", "max_runners": 200}, repos,
              rate=rate, reg_rate=0)
    queued = {}
    try:
        rnd = random.Random(4)
        t_first = time.time()
        while len(queued) < njobs:
            n = min(njobs - len(queued), rnd.randint(1, 5))
            repo = "octo-org/" + rnd.choice(repos)
            ids = b.gh.jobs(repo, X64, count=n, duration_ms=100)["job_ids"]
            t = time.time()
            for j in ids:
                queued[j] = t
            time.sleep(rnd.uniform(0.05, 0.5))
        # A runner may take another queued job than its own (GitHub hands a job to any
        # idle runner that fits); runnerd then sees that job in progress and starts none
        # for it. So: every job spawned for, or none queued any more and no spawn for 3 s.
        last = [0, time.time()]

        def settled():
            n = len(b.spawned())
            if n >= njobs:
                return True
            if n != last[0]:
                last[0], last[1] = n, time.time()
                return False
            if time.time() - last[1] < 3.0:
                return False
            return not [j for j in b.gh.state()["jobs"] if j["status"] == "queued"]
        rdtest.wait_until(settled, 180, 0.2, "%d docker run spawned" % njobs)
        time.sleep(1.0)
        sp = b.spawned()
        dc = b.double_calls()
        q2s, v2s, q2d = [], [], []
        missing = 0
        for j, tq in queued.items():
            if j not in sp:
                missing += 1
                continue
            ts, name = sp[j]
            q2s.append(ts - tq)
            tv = b.watch.first_after(tq)
            if tv is not None:
                v2s.append(ts - tv)
            if name in dc:
                q2d.append(dc[name] - tq)
        stats = b.gh.stats()
        return {"requests": stats.get("by_path", {}), "elapsed": time.time() - t_first,
                "queued->spawned": q2s, "first runs GET->spawned": v2s,
                "queued->double saw run": q2d, "missing": missing,
                "runs_gets": len(b.watch.times)}
    finally:
        b.close()


def proc_cpu(pid):
    """CPU seconds (user + system) of a process."""
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


STARTING = re.compile(r"^(\S+) INFO supervisor: (\S+): starting for job")


def registration_times(log_path):
    """Per runner: 'starting' (JIT request queued) -> 'docker run spawned'."""
    start, out = {}, []
    with open(log_path) as f:
        for line in f:
            m = STARTING.match(line)
            if m:
                start[m.group(2)] = parse_ts(m.group(1))
                continue
            m = SPAWNED.match(line)
            if m and m.group(2) in start:
                out.append(parse_ts(m.group(1)) - start[m.group(2)])
    return out


def sched_times(log_path):
    """Times of the scheduler's 'starting N' decisions."""
    out = []
    with open(log_path) as f:
        for line in f:
            if " INFO sched: " in line and ": starting " in line:
                out.append(parse_ts(line.split()[0]))
    return out


STUB_DOCKER = """#!/bin/sh
# A docker CLI stub for the burst: `run` sleeps (the runner never comes online),
# stop/kill/rm end it; ps lists nothing. Costs no Python start-up per container.
d="$STUB_DOCKER_DIR"
cmd="$1"; shift
name=""
prev=""
for a in "$@"; do [ "$prev" = "--name" ] && name="$a"; prev="$a"; done
case "$cmd" in
run) echo $$ > "$d/$name.pid"; exec sleep 300 ;;
stop|kill|rm) for a in "$@"; do [ -f "$d/$a.pid" ] && kill "$(cat "$d/$a.pid")" 2>/dev/null; done; exit 0 ;;
ps|version|info) exit 0 ;;
*) exit 0 ;;
esac
"""


def burst(tmp, njobs, rate=None, name="burst", stub=False, sched=None):
    repos = ["b0"]  # one repository: every runs listing is the one that can see the jobs
    # "hang": the runner opens its session and waits, so 100 doubles stay light.
    pool = rdtest.pool("x64", X64, "fake-runner:hang", cpus=0.1, memory="64MiB",
                       max_runners=njobs + 10, startup_timeout="120s", idle_timeout="10m")
    docker = None
    if stub:
        docker = os.path.join(tmp, "stub-docker")
        with open(docker, "w") as f:
            f.write(STUB_DOCKER)
        os.chmod(docker, 0o755)
        os.makedirs(os.path.join(tmp, "stub"), exist_ok=True)
    b = Bench(tmp, name, [pool],
              {"cpus": 256, "memory": "256GiB", "max_runners": njobs + 10}, repos, rate=rate,
              docker=docker, sched=sched)
    try:
        runs = 5
        per = njobs // runs
        ids = []
        t_start = time.time()
        cpu0 = proc_cpu(b.proc.pid)
        for k in range(runs):
            n = per if k < runs - 1 else njobs - per * (runs - 1)
            ids += b.gh.jobs("octo-org/" + repos[0], X64, count=n, duration_ms=60000)["job_ids"]
        t_queued = time.time()
        rdtest.wait_until(lambda: len(b.spawned()) >= njobs, 120, 0.1,
                          "%d docker run spawned" % njobs)
        cpu = proc_cpu(b.proc.pid) - cpu0
        sp = b.spawned()
        times = sorted(v[0] for j, v in sp.items() if j in set(ids))
        t_visible = b.watch.first_after(t_queued)
        dc = [float("nan")] * njobs
        if not stub:
            rdtest.wait_until(lambda: len(b.double_calls()) >= njobs, 120, 0.2,
                              "the double to record %d runs" % njobs)
            dc = sorted(b.double_calls().values())
        reg = registration_times(b.log_path)
        jit = b.gh.stats().get("jit_created", 0)
        st = [t for t in sched_times(b.log_path) if t >= t_queued]
        return {"decided first": st[0] - t_queued if st else None,
                "decided last": st[-1] - t_queued if st else None,"n": len(times), "queue_calls_s": t_queued - t_start,
                "queued->first spawned": times[0] - t_queued,
                "queued->last spawned": times[-1] - t_queued,
                "visible->first spawned": times[0] - t_visible if t_visible else None,
                "visible->last spawned": times[-1] - t_visible if t_visible else None,
                "queued->double saw last run": dc[njobs - 1] - t_queued,
                "jit_created": jit, "runnerd_cpu": cpu,
                "start->spawned p50": statistics.median(reg) if reg else None,
                "start->spawned max": max(reg) if reg else None}
    finally:
        b.close()


def jit_floor(tmp, n, conns=8):
    """The fake GitHub alone: n generate-jitconfig POSTs over conns connections (no runnerd)."""
    import http.client
    d = os.path.join(tmp, "jitfloor")
    os.makedirs(d)
    gh = rdtest.FakeGitHub(d)
    try:
        gh.repos("octo-org", ["f0"])
        names = ["floor-%d" % i for i in range(n)]
        lock = threading.Lock()

        def worker():
            c = http.client.HTTPConnection("127.0.0.1", gh.port, timeout=30)
            while True:
                with lock:
                    if not names:
                        break
                    name = names.pop()
                body = json.dumps({"name": name, "runner_group_id": 1, "labels": X64})
                c.request("POST", "/repos/octo-org/f0/actions/runners/generate-jitconfig", body,
                          {"Authorization": "Bearer " + rdtest.TOKEN, "User-Agent": "bench",
                           "Content-Type": "application/json"})
                c.getresponse().read()
            c.close()
        t0 = time.time()
        ts = [threading.Thread(target=worker) for _ in range(conns)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.time() - t0
    finally:
        gh.stop()


def row(name, v):
    if not v:
        return "%-34s %5d %8s %8s %8s %8s" % (name, 0, "-", "-", "-", "-")
    return "%-34s %5d %7.3fs %7.3fs %7.3fs %7.3fs" % (
        name, len(v), statistics.median(v), pct(v, 90), pct(v, 99), max(v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("RUNNERD_BUILD",
                                                     os.path.join(SRC, "build")))
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-burst", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--front-door", choices=("zygote", "python"), default=None,
                    help="how runnerd calls the docker double (default: zygote if built)")
    ap.add_argument("--double-sched", choices=("normal", "nice", "idle"), default="normal",
                    help="zygote front door: scheduling of the double's server, calls and "
                         "containers (nice: +19; idle: SCHED_IDLE, its CPU goes after runnerd's "
                         "and the fake GitHub's)")
    ap.add_argument("--rate", type=float, default=None,
                    help="latency part: RUNNERD_MAX_REQUEST_RATE (0 = no request rate cap)")
    a = ap.parse_args()
    rdtest.RUNNERD = os.path.join(a.build, "runnerd")
    if not os.access(rdtest.RUNNERD, os.X_OK):
        print("no runnerd at %s (build first)" % rdtest.RUNNERD, file=sys.stderr)
        return 1
    client = os.path.join(a.build, "rd_fake_docker")
    door = a.front_door or ("zygote" if os.access(client, os.X_OK) else "python")
    if door == "zygote" and not os.access(client, os.X_OK):
        print("no %s (build first, or --front-door python)" % client, file=sys.stderr)
        return 1
    FRONT_DOOR.update(door=door, client=client, sched=a.double_sched)
    tmp = tempfile.mkdtemp(prefix="rdbench-")
    try:
        print("bench/scaleup: runnerd %s, poll_interval 1s, docker double, %d cores, load %.2f"
              % (rdtest.RUNNERD, os.cpu_count(), os.getloadavg()[0]))
        print("front door of the docker double: %s" % (
            "rd_fake_docker (C client) -> fake_docker --zygote (one preloaded python3, a fork per "
            "call, scheduling %s), %s" % (a.double_sched, client) if door == "zygote" else
            "the Python script itself (a python3 start-up per call), %s" % rdtest.FAKE_DOCKER))
        if not a.skip_latency:
            lat = latency(tmp, a.jobs, a.rate)
            print("\n1. latency, %d jobs queued in batches of 1-5 (%d runs listings seen), "
                  "request rate cap %s, registration bucket lifted, load %.1f"
                  % (a.jobs, lat["runs_gets"], "default" if a.rate is None else a.rate,
                     os.getloadavg()[0]))
            print("%-34s %5s %8s %8s %8s %8s" % ("", "n", "p50", "p90", "p99", "max"))
            for k in ("queued->spawned", "first runs GET->spawned", "queued->double saw run"):
                print(row(k, lat[k]))
            print("GitHub requests in %.0fs: %s" % (lat["elapsed"], ", ".join(
                "%s %d" % (k, v) for k, v in sorted(lat["requests"].items(), key=lambda x: -x[1])
                if v >= 5)))
            if lat["missing"]:
                print("(%d jobs got no runner of their own: another runner took them)"
                      % lat["missing"])
        dd = "docker double via %s" % ("rd_fake_docker + zygote" if door == "zygote" else "python3")
        # The acceptance figure is the first: the double competes for the CPU like
        # containers do. The SCHED_IDLE one shows runnerd's own path when the double's
        # CPU goes last; the stub, runnerd with children that cost next to nothing.
        sched = a.double_sched if door == "zygote" else "normal"
        variants = [("%s (%s), default request rate cap (12/s, burst 60)" % (dd, sched), None,
                     "burst", False, sched),
                    ("%s (%s), rate cap lifted (RUNNERD_MAX_REQUEST_RATE=0)" % (dd, sched), 0,
                     "burst-nocap", False, sched)]
        if door == "zygote" and sched != "idle":
            variants.append(("%s (SCHED_IDLE: its CPU after runnerd's and the fake GitHub's), "
                             "default request rate cap" % dd, None, "burst-idle", False, "idle"))
        variants.append(("sh stub as docker, rate cap lifted", 0, "burst-stub", True, None))
        if not a.skip_burst:
            fl = jit_floor(tmp, a.burst)
            print("\n0. the fake GitHub alone answers %d generate-jitconfig POSTs over 8 "
                  "connections in %.3fs (load %.1f): no runnerd can spawn faster here"
                  % (a.burst, fl, os.getloadavg()[0]))
        if os.environ.get("BENCH_ONLY_STUB"):
            variants = variants[-1:]
        for title, rate, name, stub, vsched in ([] if a.skip_burst else variants):
            b = burst(tmp, a.burst, rate, name, stub, vsched)
            print("\n2. burst, %d jobs queued at once (1 repo, 5 runs), %s, load %.1f"
                  % (a.burst, title, os.getloadavg()[0]))
            for k in ("decided first", "decided last", "queued->first spawned",
                      "queued->last spawned", "visible->first spawned",
                      "visible->last spawned", "queued->double saw last run",
                      "start->spawned p50", "start->spawned max", "runnerd_cpu"):
                v = b[k]
                print("%-34s %s" % (k, "-" if v is None else "%7.3fs" % v))
            print("%-34s %d (spawned %d)" % ("registrations created", b["jit_created"], b["n"]))
            target = 2.0
            v = b["visible->last spawned"]
            if v is not None:
                print("target: %d runners spawned within %.1fs of the jobs becoming visible: "
                      "%.3fs = %.2fx the target -> %s" % (a.burst, target, v, v / target,
                                                           "MET" if v <= target else "MISSED"))
    finally:
        if a.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
