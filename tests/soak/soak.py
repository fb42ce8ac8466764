#!/usr/bin/env python3
"""Fault-injection soak of runnerd against the fake GitHub and the fake docker.

    python3 tests/soak/soak.py --minutes N --seed S [--keep] [--verbose]

A steady stream of queued jobs across an org and two repo targets (plus jobs no
pool serves) while faults chosen at random from a fixed seed hit the daemon:
API 500s, hangs, resets, primary and secondary limits (403/429), malformed
JSON; `docker run` failures (FAKE_DOCKER_FAIL_RUN) and image switches by
SIGHUP to a missing or crashing image; containers killed mid-job; containers
that hang; jobs cancelled while their runner starts; kill -9 of runnerd and a
restart; SIGHUP storms with valid and invalid files; signed webhooks.

Invariants, checked while it runs and at the end (see README.md):
  served      every servable job got a runner and completed (none left queued)
  one-runner  no job started twice; no second runner started for a job while the
              first one started for it was still starting or idle
  caps        live containers never above host max_runners / cpus / pool max_runners;
              registrations never above host max_runners (+ the ones whose container
              was killed mid-job and that GitHub has not released yet)
  unserved    jobs no pool serves never got a runner
  clean       after the final SIGTERM drain: runnerd exits 0, zero containers,
              zero registrations
  rss         runnerd's VmRSS (last instance) grows < 20% from warm-up to end
  secrets     no token, JIT config or runner credential in any log, argv
              (fake docker's calls and /proc/*/cmdline samples) or container label

Exit 0 when every invariant holds, 1 otherwise; a failing invariant prints the
event timeline of the jobs/runners concerned. Python standard library only.
"""
import argparse
import base64
import hashlib
import heapq
import hmac
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import rdtest  # noqa: E402

JIT_PREFIX = "eyIucnVubmVyIj"  # base64 of '{".runner"': how every JIT config starts
INSTANCE = "soak"
X64 = ["self-hosted", "linux", "x64"]
BIG = ["self-hosted", "linux", "x64", "big"]
HANG = ["self-hosted", "linux", "x64", "soak-hang"]
HOST = {"cpus": 5, "memory": "8GiB", "max_runners": 5}
POOL_MAX = {"linux-x64": 4, "big": 2, "hang": 1}
POOL_CPUS = {"linux-x64": 1, "big": 2, "hang": 1}
ORG = "soak-org"
ORG_REPOS = ["alpha", "beta", "gamma"]
REPO_TARGETS = ["soak-u1/app", "soak-u2/lib"]
WEBHOOK_SECRET = "soak-webhook-secret-" + "5f3c9a1e7b"


def now_ms():
    return int(time.time() * 1000)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Soak:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.rng = random.Random(args.seed)
        self.t0 = time.monotonic()
        self.duration = args.minutes * 60.0
        self.fault_end = self.duration * 0.70      # no new faults after this
        self.kill_end = self.duration * 0.55       # no kill -9 after this (RSS of the last instance)
        self.jobs_end = self.duration * 0.85       # no new jobs after this
        self.timeline = []                         # (t_ms, what) of the soak's own actions
        self.violations = []
        self.notes = []
        self.jobs = {}       # job id -> {"kind": servable|unservable|hang|cancel, "repo", "labels", "t"}
        self.crashed = {}    # job id -> runner name whose container we killed
        self.gone_since = {}  # runner name -> when its container was first seen gone
        self.samples = {"containers": 0, "cpus": 0.0, "per_pool": {}, "n": 0}
        self.cmdline_hits = []
        self.cmdline_scanned = 0
        self.rss = []        # (instance no, t, kib)
        # runnerd built with ASan or run under valgrind (rdtest.wrap): its RSS grows by
        # design (ASan's quarantine, memcheck's shadow memory and freed-block queue).
        self.sanitized = "valgrind" if any("valgrind" in w for w in rdtest.WRAPPER) else None
        self.instances = []  # (start t, pid)
        self.counts = {}
        self.queue = []      # heap of (t, seq, fn, args)
        self.seq = 0
        self.rd = None
        self.rd_log = None
        self.rd_started_at = 0.0
        self.image_override = None
        self.extra_target = False
        self.poll_interval = "1s"
        self.docker_state = os.path.join(tmp, "docker")
        os.makedirs(self.docker_state)
        self.secrets_path = os.path.join(tmp, "runner-secrets")
        self.cfg_path = os.path.join(tmp, "runnerd.yaml")
        self.log_path = os.path.join(tmp, "runnerd.log")
        self.wh_secret_path = os.path.join(tmp, "webhook-secret")
        with open(self.wh_secret_path, "w") as f:
            f.write(WEBHOOK_SECRET + "\n")
        os.chmod(self.wh_secret_path, 0o600)
        self.port = free_port()
        self.fail_base = 10 ** 9
        with open(os.path.join(self.docker_state, "fail_run_count"), "w") as f:
            f.write(str(self.fail_base))
        self.env = dict(os.environ)
        self.env.update({
            "RD_SOAK_TOKEN": rdtest.TOKEN,
            "FAKE_DOCKER_STATE": self.docker_state,
            "FAKE_DOCKER_FAIL_RUN": str(self.fail_base),
            "FAKE_DOCKER_MAX_LIFE": "600",
            "FAKE_DOCKER_SOAK_BIN": rdtest.FAKE_DOCKER,
            "FAKE_DOCKER_SOAK_SECRETS": self.secrets_path,
        })
        with open(os.path.join(rdtest.SRC, "tests", "fixtures", "github",
                               "webhook-workflow_job-queued.json")) as f:
            self.wh_template = json.load(f)

    # ------------------------------------------------------------------ utils
    def t(self):
        return time.monotonic() - self.t0

    def note(self, what):
        self.timeline.append((now_ms(), what))
        if self.args.verbose:
            print("[%7.2f] %s" % (self.t(), what), flush=True)

    def count(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n

    def at(self, delay, fn, *a):
        self.seq += 1
        heapq.heappush(self.queue, (self.t() + delay, self.seq, fn, a))

    def gh_call(self, method, path, body=None, quiet=False):
        try:
            return self.gh.call(method, path, body)
        except Exception as e:  # the fake never fails control calls; be loud if it does
            if not quiet:
                self.notes.append("control call %s %s failed: %s" % (method, path, e))
            return None

    # ------------------------------------------------------------------ config
    def config(self, invalid=None):
        pools = [
            rdtest.pool("linux-x64", X64, self.image_override or "fake-runner:x64", cpus=1,
                        memory="1GiB", max_runners=POOL_MAX["linux-x64"], startup_timeout="20s",
                        idle_timeout="4s", job_timeout="2m"),
            rdtest.pool("big", BIG, "fake-runner:big", cpus=2, memory="1GiB",
                        max_runners=POOL_MAX["big"], startup_timeout="20s", idle_timeout="4s",
                        job_timeout="2m"),
            rdtest.pool("hang", HANG, "fake-runner-hang:x64", cpus=1, memory="512MiB",
                        max_runners=POOL_MAX["hang"], startup_timeout="20s", idle_timeout="3s",
                        job_timeout="8s"),
        ]
        targets = [{"org": ORG}, {"repo": REPO_TARGETS[0]},
                   {"repo": REPO_TARGETS[1], "pools": ["linux-x64"]}]
        if self.extra_target:
            targets.append({"repo": "soak-u3/extra"})
        cfg = {
            "github": {"api_url": self.gh.url, "token_env": "RD_SOAK_TOKEN",
                       "poll_interval": self.poll_interval, "request_budget": "100000/h",
                       "max_connections": 4},
            "host": dict(HOST),
            "docker": {"binary": os.path.join(HERE, "docker_wrapper.py"), "network": "host"},
            "shutdown_grace": "20s",
            "instance": INSTANCE,
            "listen": "127.0.0.1:%d" % self.port,
            "webhook_secret_file": self.wh_secret_path,
            "pools": pools,
            "targets": targets,
        }
        text = rdtest.to_yaml(cfg) + "\n"
        if invalid == "syntax":
            text = text.replace("pools:", "pools: [\n", 1)
        elif invalid == "unknown-key":
            text = text.replace("host:", "host:\n  bogus_key: 1", 1)
        elif invalid == "cpus-zero":
            text = text.replace("cpus: 1", "cpus: 0", 1)
        elif invalid == "unknown-pool":
            text = text.replace('"pools": ["linux-x64"]', '"pools": ["nope"]').replace(
                'pools: ["linux-x64"]', 'pools: ["nope"]')
        elif invalid == "empty":
            text = ""
        elif invalid == "truncated":
            text = text[: len(text) // 2]
        return text

    def write_config(self, invalid=None):
        text = self.config(invalid)
        tmp = self.cfg_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.cfg_path)

    # ------------------------------------------------------------------ runnerd
    def start_runnerd(self):
        self.write_config()
        log = open(self.log_path, "a")
        self.rd_log_from = log.tell()
        self.rd_logged = False
        self.rd = subprocess.Popen(rdtest.wrap([rdtest.RUNNERD, "-c", self.cfg_path, "--log-level",
                                                "debug", "--log-format", "json"]),
                                   stdout=log, stderr=log, env=self.env)
        log.close()
        self.rd_started_at = self.t()
        self.instances.append((self.t(), self.rd.pid))
        self.note("runnerd started (pid %d, instance %d)" % (self.rd.pid, len(self.instances)))

    def rd_alive(self):
        return self.rd is not None and self.rd.poll() is None

    def rd_ready(self):
        """Up long enough to have its signal handlers (SIGHUP before that kills it):
        1.5 s, and a line of the daemon in the log (it ignores SIGHUP before its
        first one). Under valgrind the start alone can take seconds."""
        if not self.rd_alive() or self.t() - self.rd_started_at <= 1.5:
            return False
        if not self.rd_logged:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(self.rd_log_from)
                    tail = f.read()
            except OSError:
                return False
            self.rd_logged = b'"component":"daemon"' in tail or b'"component":"listener"' in tail
        return self.rd_logged

    def hup(self):
        if self.rd_ready():
            self.rd.send_signal(signal.SIGHUP)
            self.count("sighups")
            return True
        return False

    # ------------------------------------------------------------------ jobs
    def new_job(self, kind="servable", repo=None, labels=None, count=1, webhook=None):
        if repo is None:
            repo = self.rng.choice(["%s/%s" % (ORG, r) for r in ORG_REPOS] + REPO_TARGETS)
        if labels is None:
            x = self.rng.random()
            labels = BIG if x < 0.2 and repo != REPO_TARGETS[1] else (
                ["self-hosted", "x64"] if x < 0.3 else X64)
        dur = self.rng.randint(800, 4000)
        run_status = "in_progress" if self.rng.random() < 0.15 else "queued"
        res = self.gh_call("POST", "/_control/jobs",
                           {"repo": repo, "labels": labels, "count": count, "duration_ms": dur,
                            "status": "queued", "run_status": run_status})
        if res is None:
            return []
        for jid in res["job_ids"]:
            self.jobs[jid] = {"kind": kind, "repo": repo, "labels": labels, "t": now_ms()}
            if webhook is None:
                webhook = self.rng.random() < 0.3
            if webhook:
                self.send_webhook(jid, res["run_id"], repo, labels)
        self.count("jobs_" + kind, len(res["job_ids"]))
        return res["job_ids"]

    def send_webhook(self, jid, run_id, repo, labels):
        body = json.loads(json.dumps(self.wh_template))
        wj = body["workflow_job"]
        wj.update({"id": jid, "run_id": run_id, "labels": labels, "status": "queued",
                   "runner_id": None, "runner_name": None, "runner_group_id": None,
                   "runner_group_name": None,
                   "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        body["repository"]["full_name"] = repo
        body["repository"]["name"] = repo.split("/")[1]
        body["repository"]["owner"]["login"] = repo.split("/")[0]
        raw = json.dumps(body).encode()
        sig = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        if self.rng.random() < 0.1:
            sig = "sha256=" + "0" * 64  # a forged delivery: must be refused, change nothing
            self.count("webhooks_forged")
        req = urllib_request("http://127.0.0.1:%d/webhook" % self.port, raw, {
            "X-GitHub-Event": "workflow_job", "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sig, "Content-Type": "application/json"})
        try:
            code = req()
            self.count("webhooks_%d" % code)
        except Exception as e:
            self.count("webhooks_error")
            if self.args.verbose:
                self.note("webhook for job %d: %s" % (jid, e))

    def job_stream(self):
        if self.t() < self.jobs_end:
            n = 3 if self.rng.random() < 0.1 else 1
            self.new_job(count=n)
            self.at(self.rng.expovariate(1 / 1.6), self.job_stream)

    def hang_stream(self):
        if self.t() < self.fault_end:
            ids = self.new_job(kind="hang", repo=REPO_TARGETS[0], labels=HANG, webhook=False)
            self.note("hang job %s queued (a container that opens a session and hangs)" % ids)
            for jid in ids:
                self.at(self.rng.uniform(12, 25), self.cancel_job, jid, "hang")
            self.at(self.rng.uniform(20, 35), self.hang_stream)

    def cancel_job(self, jid, why):
        self.gh_call("POST", "/_control/jobs/%d" % jid, {"status": "cancelled"})
        self.note("job %d cancelled (%s)" % (jid, why))

    # ------------------------------------------------------------------ faults
    def fault_loop(self):
        if self.t() >= self.fault_end:
            return
        kinds = [("api", 5), ("docker_fail", 1), ("image", 1), ("crash", 2), ("cancel", 2),
                 ("storm", 1), ("kill9", 1 if self.t() < self.kill_end else 0)]
        total = sum(w for _, w in kinds)
        x = self.rng.uniform(0, total)
        for k, w in kinds:
            if x < w:
                break
            x -= w
        getattr(self, "fault_" + k)()
        self.count("fault_" + k)
        self.at(self.rng.expovariate(1 / 3.5), self.fault_loop)

    def fault_api(self):
        kind = self.rng.choice(["500", "500", "hang", "reset", "reset", "primary403", "primary429",
                                "secondary403", "secondary429", "malformed", "malformed", "slow"])
        path = self.rng.choice([r"/actions/runs$", r"/actions/runs/\d+/jobs", r"/orgs/[^/]+/repos",
                                r"/actions/runners$", r"generate-jitconfig",
                                r"/actions/runners/\d+$", r"/runner-groups", r"."])
        spec = {"path": path, "kind": kind, "count": self.rng.randint(1, 4)}
        if kind == "hang":
            spec["count"] = 1
        if kind == "slow":
            spec["delay_ms"] = self.rng.randint(500, 3000)
        if kind.startswith("secondary") or (kind.startswith("primary") and self.rng.random() < 0.5):
            spec["retry_after"] = self.rng.randint(1, 3)
        if kind in ("hang", "secondary403", "secondary429", "primary403", "primary429"):
            spec["count"] = 1
        if kind in ("malformed", "slow"):
            # A 200 with a broken body: only reads (GitHub does not answer 200 to a DELETE
            # it did not carry out).
            spec["method"] = "GET"
        self.gh_call("POST", "/_control/faults", spec)
        self.note("API fault %s x%d on %s" % (kind, spec["count"], path))

    def fault_docker_fail(self):
        k = self.rng.randint(1, 3)
        import fcntl
        fd = os.open(os.path.join(self.docker_state, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = os.path.join(self.docker_state, "fail_run_count")
            with open(path, "w") as f:
                f.write(str(self.fail_base - k))
        finally:
            os.close(fd)
        self.note("docker run fails for the next %d runs" % k)

    def fault_image(self):
        if self.image_override is not None or not self.rd_ready():
            return
        self.image_override = self.rng.choice(["fake-runner-missing:x64", "fake-runner-crash:x64"])
        self.write_config()
        self.hup()
        self.note("SIGHUP: pool linux-x64 image -> %s" % self.image_override)
        self.at(self.rng.uniform(3, 7), self.image_restore)

    def image_restore(self):
        self.image_override = None
        self.write_config()
        if not self.hup():
            self.at(1.0, self.image_restore_hup)
        self.note("SIGHUP: pool linux-x64 image restored")

    def image_restore_hup(self):
        if not self.hup():
            self.at(1.0, self.image_restore_hup)

    def running_containers(self):
        out = []
        cdir = os.path.join(self.docker_state, "containers")
        try:
            names = os.listdir(cdir)
        except OSError:
            return out
        for fn in names:
            if not fn.endswith(".json"):
                continue
            try:
                with open(os.path.join(cdir, fn)) as f:
                    rec = json.load(f)
            except (OSError, ValueError):
                continue
            if rec.get("state") not in ("running", "created"):
                continue
            pid = rec.get("pid") or rec.get("client_pid")
            if pid and os.path.exists("/proc/%d" % pid):
                out.append(rec)
        return out

    def fault_crash(self):
        st = self.gh_call("GET", "/_control/state")
        if st is None:
            return
        busy = {r["name"]: r for r in st["runners"] if r["busy"]}
        cands = [c for c in self.running_containers() if c["name"] in busy and c.get("pid")]
        if not cands:
            return
        c = self.rng.choice(cands)
        job = busy[c["name"]].get("job")
        try:
            os.kill(c["pid"], signal.SIGKILL)
        except OSError:
            return
        self.count("containers_killed_mid_job")
        self.note("container %s killed mid-job (job %s)" % (c["name"], job))
        if job is not None:
            self.crashed[job] = c["name"]
            # GitHub notices a vanished runner and fails its job some time later.
            self.at(self.rng.uniform(2, 6), self.fail_job, job)

    def fail_job(self, jid):
        self.gh_call("POST", "/_control/jobs/%d" % jid, {"status": "completed",
                                                         "conclusion": "failure"})
        self.note("job %d failed by GitHub (its runner vanished)" % jid)

    def janitor(self):
        """GitHub's side of a runner process that died without ending its session (a
        crashing image, a container killed while the daemon was down): after a while
        the registration shows offline."""
        st = self.gh_call("GET", "/_control/state", quiet=True)
        if st is not None:
            alive = {c["name"] for c in self.running_containers()}
            now = time.monotonic()
            for r in st["runners"]:
                if r["status"] != "online" or r["name"] in alive:
                    self.gone_since.pop(r["name"], None)
                    continue
                first = self.gone_since.setdefault(r["name"], now)
                if now - first >= 4.0:
                    self.gh_call("POST", "/_control/runners/%d" % r["id"], {"status": "offline"})
                    self.note("GitHub shows %s offline (its container is gone)" % r["name"])
                    self.count("runners_marked_offline")
                    self.gone_since.pop(r["name"], None)
        self.at(2.0, self.janitor)

    def fault_cancel(self):
        ids = self.new_job(kind="cancel", webhook=self.rng.random() < 0.5)
        for jid in ids:
            self.at(self.rng.uniform(0.2, 2.0), self.cancel_job, jid, "cancelled while starting")

    def fault_storm(self):
        if not self.rd_ready():
            return
        n = self.rng.randint(4, 12)
        bad = ["syntax", "unknown-key", "cpus-zero", "unknown-pool", "empty", "truncated"]
        for i in range(n):
            if self.rng.random() < 0.5:
                which = self.rng.choice(bad)
                self.write_config(invalid=which)
            else:
                self.poll_interval = self.rng.choice(["1s", "2s", "1s"])
                self.extra_target = self.rng.random() < 0.5
                self.write_config()
            self.hup()
            time.sleep(self.rng.uniform(0.01, 0.15))
        self.extra_target = False
        self.poll_interval = "1s"
        self.write_config()
        time.sleep(0.05)
        self.hup()
        self.note("SIGHUP storm: %d signals, valid and invalid files, ending valid" % (n + 1))

    def fault_kill9(self):
        if not self.rd_alive():
            return
        self.rss_sample()
        self.rd.kill()
        self.rd.wait()
        with open(self.log_path, "a") as f:  # lets the log checks end that instance's runners
            f.write(json.dumps({"ts": iso_now(), "level": "info", "component": "soak",
                                "msg": "SIGKILL-marker"}) + "\n")
        self.note("runnerd killed with SIGKILL")
        time.sleep(self.rng.uniform(0, 1.5))
        self.start_runnerd()

    # ------------------------------------------------------------------ sampling
    def rss_sample(self):
        if not self.rd_alive() or self.t() - self.rd_started_at < 2.0:
            return
        if self.sanitized is None:
            try:
                with open("/proc/%d/maps" % self.rd.pid) as f:
                    self.sanitized = "ASan" if "libasan" in f.read() else False
            except OSError:
                pass
        try:
            with open("/proc/%d/status" % self.rd.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.rss.append((len(self.instances), self.t() - self.rd_started_at,
                                         int(line.split()[1])))
        except OSError:
            pass

    def sample(self):
        cons = self.running_containers()
        mine = [c for c in cons if c.get("labels", {}).get("runnerd.instance") == INSTANCE]
        cpus = sum(float(c.get("cpus") or 0) for c in mine)
        per_pool = {}
        for c in mine:
            p = c.get("labels", {}).get("runnerd.pool", "?")
            per_pool[p] = per_pool.get(p, 0) + 1
        s = self.samples
        s["n"] += 1
        if len(mine) > s["containers"]:
            s["containers"] = len(mine)
        s["cpus"] = max(s["cpus"], cpus)
        for p, n in per_pool.items():
            s["per_pool"][p] = max(s["per_pool"].get(p, 0), n)
        if len(mine) > HOST["max_runners"] or cpus > HOST["cpus"]:
            self.violations.append(("caps", "at %.1fs: %d containers using %.1f cpus: %s" % (
                self.t(), len(mine), cpus, sorted(c["name"] for c in mine))))
        for p, n in per_pool.items():
            if n > POOL_MAX.get(p, 0):
                self.violations.append(("caps", "at %.1fs: pool %s has %d containers (max %d)" % (
                    self.t(), p, n, POOL_MAX.get(p, 0))))
        for c in mine:
            for k, v in c.get("labels", {}).items():
                if JIT_PREFIX in v or rdtest.TOKEN in v:
                    self.violations.append(("secrets", "secret in label %s of %s" % (k, c["name"])))

    def scan_cmdlines(self):
        secrets = self.secret_list()
        mark = ("FAKE_DOCKER_STATE=" + self.docker_state).encode() + b"\0"
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                # Only runnerd and what it started (they carry our fake docker state
                # directory in their environment); the fakes are given the token.
                with open("/proc/%s/environ" % pid, "rb") as f:
                    if mark not in f.read():
                        continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            self.cmdline_scanned += 1
            for sec in secrets:
                if sec in cmd:
                    self.cmdline_hits.append("pid %s: %s" % (pid, cmd.replace("\0", " ")[:200]))

    def secret_list(self):
        out = [rdtest.TOKEN, JIT_PREFIX, WEBHOOK_SECRET]
        try:
            with open(self.secrets_path) as f:
                out += [x.strip() for x in f if len(x.strip()) >= 12]
        except OSError:
            pass
        return out

    # ------------------------------------------------------------------ main loop
    def run(self):
        self.gh = rdtest.FakeGitHub(self.tmp)
        try:
            self._run()
        finally:
            if self.rd_alive():
                self.rd.kill()
                self.rd.wait()
            env = dict(os.environ, FAKE_DOCKER_STATE=self.docker_state)
            try:
                rdtest.remove_containers(rdtest.FAKE_DOCKER, INSTANCE, env=env)
            except Exception as e:
                print("cleanup: %s" % e, file=sys.stderr)
            self.gh.stop()

    def _run(self):
        self.gh.repos(ORG, ORG_REPOS, org=True)
        for r in REPO_TARGETS + ["soak-u3/extra"]:
            o, n = r.split("/")
            self.gh.repos(o, [n])
        # Jobs no pool serves: a label set nobody has, and the big pool's labels in a
        # target restricted to linux-x64.
        self.new_job(kind="unservable", repo="%s/alpha" % ORG, labels=["self-hosted", "windows"],
                     webhook=True)
        self.new_job(kind="unservable", repo=REPO_TARGETS[1], labels=BIG, webhook=False)
        self.start_runnerd()
        self.at(1.0, self.job_stream)
        self.at(4.0, self.fault_loop)
        self.at(6.0, self.hang_stream)
        self.at(2.0, self.janitor)
        next_sample = next_rss = next_cmd = 0.0
        while self.t() < self.duration:
            now = self.t()
            if now >= next_sample:
                self.sample()
                next_sample = now + 0.5
            if now >= next_rss:
                self.rss_sample()
                next_rss = now + 2.0
            if now >= next_cmd:
                self.scan_cmdlines()
                next_cmd = now + 3.0
            if not self.rd_alive():
                self.violations.append(("clean", "runnerd exited unexpectedly with %r at %.1fs" % (
                    self.rd.returncode, self.t())))
                self.start_runnerd()
            while self.queue and self.queue[0][0] <= self.t():
                _, _, fn, a = heapq.heappop(self.queue)
                fn(*a)
            time.sleep(0.05)
        self.settle()

    def settle(self):
        """Faults off; wait for every servable job; then SIGTERM and check the drain."""
        self.note("settling: faults cleared, no new jobs")
        self.gh_call("DELETE", "/_control/faults")
        self.image_override = None
        self.extra_target = False
        self.write_config()
        self.hup()
        deadline = time.monotonic() + rdtest.scaled(max(90.0, self.duration * 0.5))
        next_janitor = 0.0
        while time.monotonic() < deadline:
            self.sample()
            if time.monotonic() >= next_janitor:
                self.queue = [q for q in self.queue if q[2] != self.janitor]
                self.janitor()
                next_janitor = time.monotonic() + 2.0
            st = self.gh_call("GET", "/_control/state")
            if st is not None and not self.pending_servable(st):
                break
            if not self.rd_alive():
                self.violations.append(("clean", "runnerd exited during settle: %r" %
                                        self.rd.returncode))
                self.start_runnerd()
            time.sleep(0.5)
        self.settle_s = time.monotonic() - (deadline - rdtest.scaled(max(90.0, self.duration * 0.5)))
        self.rss_sample()
        self.scan_cmdlines()
        self.note("SIGTERM")
        t = time.monotonic()
        self.rd.send_signal(signal.SIGTERM)
        try:
            code = self.rd.wait(rdtest.scaled(60))
        except subprocess.TimeoutExpired:
            self.rd.kill()
            code = "no exit within 60 s of SIGTERM"
        self.drain_s = time.monotonic() - t
        self.exit_code = code
        if code != 0:
            self.violations.append(("clean", "runnerd exit after SIGTERM: %r" % code))
        self.final_state = self.gh.state()
        self.final_stats = self.gh.stats()
        env = dict(os.environ, FAKE_DOCKER_STATE=self.docker_state)
        self.left_containers = rdtest.containers(rdtest.FAKE_DOCKER, INSTANCE, env=env)

    def pending_servable(self, st):
        out = []
        for j in st["jobs"]:
            info = self.jobs.get(j["id"])
            if info and info["kind"] == "servable" and j["status"] != "completed":
                out.append(j["id"])
        return out

    # ------------------------------------------------------------------ checks
    def load_log(self):
        lines = []
        with open(self.log_path, errors="replace") as f:
            raw = f.read()
        for line in raw.splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"ts": "", "msg": line, "component": "?", "level": "?"})
        return raw, lines

    def check(self):
        st = self.final_state
        events = sorted(st["events"], key=lambda e: e["t"])
        jobs = {j["id"]: j for j in st["jobs"]}
        raw_log, log = self.load_log()
        by_runner = {}
        for e in events:
            if e.get("runner"):
                by_runner.setdefault(e["runner"], []).append(e)
        self.by_runner = by_runner
        self.events = events
        self.log_lines = log

        # served / unserved
        started = {}
        for e in events:
            if e["kind"] == "job_started":
                started.setdefault(e["job"], []).append(e["runner"])
        for jid, info in sorted(self.jobs.items()):
            j = jobs.get(jid)
            if info["kind"] == "servable":
                if j is None or j["status"] != "completed" or jid not in started:
                    self.violations.append(("served", "job %d (%s %s) not served: %s" % (
                        jid, info["repo"], info["labels"], j and j["status"]), [jid]))
            if info["kind"] == "unservable":
                if jid in started or (j and j["status"] != "queued"):
                    self.violations.append(("unserved", "job %d no pool serves got a runner" % jid,
                                            [jid]))
            if info["kind"] == "hang" and jid in started:
                self.violations.append(("unserved", "hang job %d was started" % jid, [jid]))
        for jid, runners in started.items():
            if len(runners) > 1:
                self.violations.append(("one-runner", "job %d started on %d runners: %s" % (
                    jid, len(runners), runners), [jid]))

        # second runner for a job while the first one for it was still starting/idle
        self.check_double_starts(log, by_runner)

        # Registrations of live runners over the host cap. A runner stops counting when
        # GitHub deletes it or when runnerd logs its exit (capacity is released at exit:
        # the DELETE of the registration follows, and may wait for GitHub to let go of a
        # runner killed mid-job).
        ends = {}
        for rec in log:
            msg = rec.get("msg", "")
            nm = None
            if msg.endswith(": exited; capacity released"):
                nm = msg.split(":", 1)[0]
            elif "deleting offline registration " in msg:
                nm = msg.split("deleting offline registration ", 1)[1].split()[0]
            elif msg.startswith("restart: removing dead container "):
                nm = msg.split()[4]
            if nm and nm not in ends:
                ends[nm] = parse_ts(rec.get("ts", ""))
        # Runners of a killed daemon: gone at the kill when they had no container yet, or
        # when the next daemon starts without adopting them (check_double_starts).
        for nm, lf in getattr(self, "life", {}).items():
            if lf.get("kill_end") and (nm not in ends or lf["kill_end"] < ends[nm]):
                ends[nm] = lf["kill_end"]
        marks = []
        for e in events:
            if e["kind"] == "jit_created":
                marks.append((e["t"], 1, e["runner"]))
            elif e["kind"] == "runner_deleted":
                marks.append((e["t"], -1, e["runner"]))
        for nm, t in ends.items():
            marks.append((t, -1, nm))
        marks.sort(key=lambda m: (m[0], m[1]))
        live, best, best_live = set(), 0, 0
        cur = 0
        for t, d, nm in marks:
            if d > 0:
                live.add(nm)
            else:
                live.discard(nm)
            if len(live) > HOST["max_runners"]:
                self.violations.append(("caps", "%d live registrations at %s: %s" % (
                    len(live), fmt_ms(t), sorted(live)), [], sorted(live)))
            best_live = max(best_live, len(live))
        cur = 0
        for e in events:
            if e["kind"] == "jit_created":
                cur += 1
            elif e["kind"] == "runner_deleted":
                cur -= 1
            best = max(best, cur)
        self.max_live_registrations = best_live
        self.max_registrations = best

        # clean
        if st["runners"]:
            self.violations.append(("clean", "registrations left after drain: %s" % [
                (r["name"], r["status"], r["busy"]) for r in st["runners"]],
                [], [r["name"] for r in st["runners"]]))
        if self.left_containers:
            self.violations.append(("clean", "containers left after drain: %s" %
                                    self.left_containers, [], self.left_containers))

        # rss: the last instance, warm-up = first sample >= 15 s after its start
        last = len(self.instances)
        mine = [(t, k) for (i, t, k) in self.rss if i == last]
        self.rss_first = self.rss[0][2] if self.rss else None
        warm = [k for (t, k) in mine if t >= 15.0]
        self.rss_warm = warm[0] if warm else (mine[0][1] if mine else None)
        self.rss_end = mine[-1][1] if mine else None
        self.rss_max = max((k for (_, _, k) in self.rss), default=None)
        self.rss_life = mine[-1][0] if mine else 0
        if self.rss_warm and self.rss_end and self.rss_end > self.rss_warm * 1.2 and \
                not self.sanitized:
            self.violations.append(("rss", "VmRSS grew from %d KiB (warm) to %d KiB" % (
                self.rss_warm, self.rss_end)))

        # secrets
        secrets = self.secret_list()
        self.nsecrets = len(secrets)
        for sec in secrets:
            if sec in raw_log:
                self.violations.append(("secrets", "a secret (%s...) is in runnerd's log" %
                                        sec[:4]))
        calls_path = os.path.join(self.docker_state, "calls.jsonl")
        ncalls = 0
        if os.path.exists(calls_path):
            with open(calls_path) as f:
                for line in f:
                    ncalls += 1
                    call = json.loads(line)
                    if call.get("jit_in_argv"):
                        self.violations.append(("secrets", "JIT config in docker argv: %s" %
                                                call.get("argv")))
                    text = " ".join(call.get("argv", []))
                    for sec in secrets:
                        if sec in text:
                            self.violations.append(("secrets", "a secret in docker argv: %s" %
                                                    call.get("cmd")))
                    if call.get("cmd") == "run" and not call.get("jit_env"):
                        self.violations.append(("secrets", "docker run without the JIT env"))
        self.ncalls = ncalls
        cdir = os.path.join(self.docker_state, "containers")
        for fn in os.listdir(cdir) if os.path.isdir(cdir) else []:
            with open(os.path.join(cdir, fn), errors="replace") as f:
                text = f.read()
            for sec in secrets:
                if sec in text:
                    self.violations.append(("secrets", "a secret in fake docker file %s" % fn))
        for hit in self.cmdline_hits:
            self.violations.append(("secrets", "a secret in /proc/*/cmdline: " + hit))

    def check_double_starts(self, log, by_runner):
        """A runner started for job J while another runner started for J was still
        starting or idle (not failed, not stopping, not busy, not gone)."""
        life = {}   # name -> dict(job, start, end, spawned)
        ends = ("exited; capacity released", ": failed", ": stopping", "over its job timeout",
                "not online within", "cannot register", "generate-jitconfig failed",
                "refusing to build")
        for rec in log:
            msg = rec.get("msg", "")
            ts = parse_ts(rec.get("ts", ""))
            if msg == "SIGKILL-marker":
                # Runners of the killed daemon without a container are gone. The others
                # keep covering their job only if the next daemon adopts them (a `docker
                # run` still creating its container when the next one lists them is not
                # adopted: its registration is deleted and the container fails).
                for lf in life.values():
                    if lf["end"] is None:
                        if not lf["spawned"]:
                            lf["end"] = lf["kill_end"] = ts
                        else:
                            lf["pending_adoption"] = True
                    elif not lf.get("released") and lf["spawned"]:
                        # Being stopped (job timeout, drain) when the daemon died: its
                        # exit is never logged. Its capacity ends like an unadopted
                        # runner's, when the next daemon starts without adopting it
                        # (that daemon's reconciliation then deletes the registration).
                        lf["pending_release"] = True
                continue
            if msg.startswith("restart: adopted "):
                nm = msg.split()[2]
                if nm in life:
                    life[nm]["pending_adoption"] = False
                    life[nm]["pending_release"] = False
                continue
            if rec.get("component") == "daemon" and msg.startswith("running:"):
                for lf in life.values():
                    if lf["end"] is None and lf.get("pending_adoption"):
                        lf["end"] = lf["kill_end"] = ts
                    elif lf.get("pending_release"):
                        lf["pending_release"] = False
                        lf["kill_end"] = ts
                continue
            name = msg.split(":", 1)[0] if ":" in msg else ""
            if name in life and "docker run spawned" in msg:
                life[name]["spawned"] = True
            if name in life and msg.endswith(": exited; capacity released"):
                life[name]["released"] = True
            if " starting for job " in msg and name.startswith("runnerd-"):
                jid = int(msg.split(" starting for job ")[1].split()[0])
                life[name] = {"job": jid, "start": ts, "end": None, "name": name,
                              "spawned": False}
                if jid:
                    for other in life.values():
                        if other["name"] == name or other["job"] != jid or other["end"] is not None:
                            continue
                        busy = [e for e in by_runner.get(other["name"], [])
                                if e["kind"] == "job_started" and e["t"] <= ts]
                        if busy:
                            continue
                        self.violations.append(("one-runner", "%s started for job %d while %s "
                                                "(started for it at %s) was still starting/idle" % (
                                                    name, jid, other["name"],
                                                    fmt_ms(other["start"])),
                                                [jid], [name, other["name"]]))
            elif name in life and life[name]["end"] is None and any(x in msg for x in ends):
                life[name]["end"] = ts
        self.life = life

    # ------------------------------------------------------------------ report
    def timeline_for(self, jobs=(), runners=()):
        jobs, runners = set(jobs), set(runners)
        for e in self.events:
            if e.get("job") in jobs and e.get("runner"):
                runners.add(e["runner"])
        rows = []
        for e in self.events:
            if e.get("job") in jobs or e.get("runner") in runners:
                rows.append((e["t"], "github", "%s runner=%s job=%s" % (e["kind"], e["runner"],
                                                                       e["job"])))
        for t, what in self.timeline:
            if any(("job %d" % j) in what or ("job %s" % j) in what for j in jobs) or \
                    any(r in what for r in runners):
                rows.append((t, "soak", what))
        keys = [str(j) for j in jobs] + list(runners)
        for rec in self.log_lines:
            msg = rec.get("msg", "")
            if any(k in msg for k in keys):
                rows.append((parse_ts(rec.get("ts", "")), "runnerd", msg[:220]))
        rows.sort(key=lambda r: r[0])
        return ["    %s %-7s %s" % (fmt_ms(t), src, what) for t, src, what in rows[:120]]

    def report(self):
        st = self.final_state
        events = self.events
        created = [e["runner"] for e in events if e["kind"] == "jit_created"]
        ran = {e["runner"] for e in events if e["kind"] == "job_started"}
        spare = [r for r in created if r not in ran]
        pools = {}
        for r in spare:
            p = r.split("-")[2] if r.count("-") >= 3 else "?"
            for name in ("linux-x64", "big", "hang"):
                if ("-%s-" % name) in r:
                    p = name
            pools[p] = pools.get(p, 0) + 1
        kinds = {}
        for info in self.jobs.values():
            kinds[info["kind"]] = kinds.get(info["kind"], 0) + 1
        completed = sum(1 for j in st["jobs"] if j["status"] == "completed" and
                        self.jobs.get(j["id"], {}).get("kind") == "servable")
        failures = sorted({v[0] for v in self.violations})
        inv = ["served", "one-runner", "caps", "unserved", "clean", "rss", "secrets"]
        print()
        print("runnerd soak: seed %d, %.1f min (+%.0f s settle, %.1f s drain), %d runnerd instances"
              % (self.args.seed, self.args.minutes, self.settle_s, self.drain_s,
                 len(self.instances)))
        print()
        print("%-12s %-6s %s" % ("invariant", "result", "detail"))
        detail = {
            "served": "%d/%d servable jobs completed (%d failed by a killed container)" % (
                completed, kinds.get("servable", 0), len(self.crashed)),
            "one-runner": "%d jobs started, each once; no second runner for a job still covered"
                          % len({e["job"] for e in events if e["kind"] == "job_started"}),
            "caps": "max %d containers (host %d), %.0f cpus (host %d), per pool %s; "
                    "max %d live registrations (%d incl. ones being deleted)" % (
                        self.samples["containers"], HOST["max_runners"], self.samples["cpus"],
                        HOST["cpus"], json.dumps(self.samples["per_pool"], sort_keys=True),
                        self.max_live_registrations, self.max_registrations),
            "unserved": "%d unservable + %d hang jobs never started" % (
                kinds.get("unservable", 0), kinds.get("hang", 0)),
            "clean": "exit %r; %d containers, %d registrations left" % (
                self.exit_code, len(self.left_containers), len(st["runners"])),
            "rss": "VmRSS first %s KiB, last instance warm %s KiB -> end %s KiB (%.0f s), max %s KiB"
                   % (self.rss_first, self.rss_warm, self.rss_end, self.rss_life, self.rss_max)
                   + (" (%s: not judged)" % self.sanitized if self.sanitized else ""),
            "secrets": "%d secrets searched in the log, %d docker calls, %d /proc cmdlines, "
                       "labels" % (self.nsecrets, self.ncalls, self.cmdline_scanned),
        }
        for k in inv:
            print("%-12s %-6s %s" % (k, "FAIL" if k in failures else "ok", detail[k]))
        print()
        print("runners: %d created, %d ran a job, %d spare (never ran one) by pool %s" % (
            len(created), len(ran), len(spare), json.dumps(pools, sort_keys=True)))
        print("jobs: %s" % json.dumps(kinds, sort_keys=True))
        print("faults: %s" % json.dumps({k: v for k, v in sorted(self.counts.items())
                                         if k.startswith("fault_")}))
        print("injected: %d containers killed mid-job, %d SIGHUPs, %d dead runners marked offline"
              " by 'GitHub'; a fault finds nothing to hit at times (no busy container, daemon "
              "just restarted)" % (self.counts.get("containers_killed_mid_job", 0),
                                   self.counts.get("sighups", 0),
                                   self.counts.get("runners_marked_offline", 0)))
        print("webhooks: %s" % json.dumps({k: v for k, v in sorted(self.counts.items())
                                           if k.startswith("webhooks")}))
        fs = self.final_stats
        print("github: %d requests, by status %s, %d jit configs, %d deletes" % (
            fs["requests_total"], json.dumps(fs["by_status"], sort_keys=True), fs["jit_created"],
            fs["runner_deletes"]))
        for n in self.notes[:20]:
            print("note: " + n)
        if self.violations:
            print()
            print("%d VIOLATIONS" % len(self.violations))
            shown = 0
            for v in self.violations:
                print("- [%s] %s" % (v[0], v[1]))
                if shown < 8 and (len(v) > 2 and (v[2] or (len(v) > 3 and v[3]))):
                    shown += 1
                    print("  timeline:")
                    for line in self.timeline_for(v[2], v[3] if len(v) > 3 else ()):
                        print(line)
            print("logs: %s" % self.tmp)
        return 1 if self.violations else 0


def parse_ts(ts):
    """'2026-11-29T20:55:01.123Z' -> epoch ms (0 when unparsable)."""
    try:
        import calendar
        base, frac = ts.rstrip("Z").split(".")
        return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac)
    except (ValueError, AttributeError):
        return 0


def iso_now():
    ms = now_ms()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)


def fmt_ms(ms):
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000)) + ".%03d" % (ms % 1000)


def urllib_request(url, data, headers):
    import urllib.error
    import urllib.request

    def go():
        req = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
    return go


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--verbose", action="store_true", help="print each action as it happens")
    args = ap.parse_args()
    if not os.path.exists(rdtest.RUNNERD):
        print("FAIL: runnerd not built: %s" % rdtest.RUNNERD, file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="rdsoak-")
    soak = Soak(args, tmp)
    try:
        soak.run()
        soak.check()
        rc = soak.report()
    except Exception:
        print("soak aborted; logs in %s" % tmp, file=sys.stderr)
        raise
    if rc == 0 and not args.keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    elif rc == 0:
        print("kept %s" % tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
