"""Helpers for the end-to-end tests (test_e2e_lifecycle.py, test_adoption.py,
test_e2e_docker.py) and bench/scaleup.py: one scenario = one fake GitHub, one
docker state (the double's directory, or a real engine), one runnerd instance,
and the checks every end-to-end test ends with: zero containers with the
instance label, zero runner registrations, no JIT config in any argv or log."""
import json
import os
import signal
import sys
import threading
import time

import rdtest

X64 = ["self-hosted", "linux", "x64"]
# base64 of '{".runner"': how every JIT config the fake GitHub hands out starts.
JIT_PREFIX = "eyIucnVubmVyIj"


def events_of(st, kind):
    return [e for e in st["events"] if e["kind"] == kind]


def max_concurrent(events, prefix=None):
    """Most registrations alive at once (jit_created .. runner_deleted)."""
    cur = best = 0
    for ev in sorted(events, key=lambda e: (e["t"], e["kind"] != "runner_deleted")):
        if prefix and not (ev.get("runner") or "").startswith(prefix):
            continue
        if ev["kind"] == "jit_created":
            cur += 1
        elif ev["kind"] == "runner_deleted":
            cur -= 1
        best = max(best, cur)
    return best


class CmdlineSampler:
    """Samples /proc/*/cmdline in a thread; any argv holding a JIT config is recorded."""

    def __init__(self, interval=0.05):
        self.interval = interval
        self.hits = []
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join(5)

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self):
        try:
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return
        for pid in pids:
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            text = raw.decode("utf-8", "replace")
            # Only runnerd's world: its own processes and the `docker run` children it
            # names runnerd-*. (test_fake_docker, which may run at the same time, puts a
            # dummy JIT config in argv on purpose to prove the double refuses it.)
            if "runnerd" not in text:
                continue
            if JIT_PREFIX in text or "ACTIONS_RUNNER_INPUT_JITCONFIG=" in text:
                self.hits.append((pid, text.replace("\0", " ")[:200]))
        self.samples += 1


class Scenario:
    """A fake GitHub + the docker double's state + one runnerd (started later)."""

    def __init__(self, tmp, instance, docker=None, gh_args=()):
        self.tmp = tmp
        self.instance = instance
        self.gh = rdtest.FakeGitHub(tmp, extra_args=gh_args)
        self.state_dir = os.path.join(tmp, "docker")
        self.docker = docker or rdtest.FAKE_DOCKER
        self.fake = docker is None
        self.env = {"FAKE_DOCKER_STATE": self.state_dir, "FAKE_DOCKER_MAX_LIFE": "300"} \
            if self.fake else {}
        self.denv = dict(os.environ, **self.env)
        self.daemons = []

    def config(self, pools, targets, **extra):
        return rdtest.base_config(self.gh, self.docker, pools, targets, instance=self.instance,
                                  **extra)

    def runnerd(self, cfg, name="runnerd"):
        rd = rdtest.Runnerd(self.tmp, cfg, env=self.env, name=name)
        self.daemons.append(rd)
        return rd.start()

    def calls(self, cmd=None):
        path = os.path.join(self.state_dir, "calls.jsonl")
        if not os.path.exists(path):
            return []
        out = []
        with open(path) as f:
            for line in f:
                try:
                    c = json.loads(line)
                except ValueError:
                    continue
                if cmd is None or c.get("cmd") == cmd:
                    out.append(c)
        return out

    def containers(self):
        return rdtest.containers(self.docker, self.instance, env=self.denv)

    def state(self):
        return self.gh.state()

    def logs(self):
        return "".join(rd.logs() for rd in self.daemons if os.path.exists(rd.log_path))

    def check_clean(self, registrations=True):
        """Every end-to-end test ends here: nothing left behind, no secret anywhere."""
        left = self.containers()
        assert left == [], "containers left with label runnerd.instance=%s: %r" % (
            self.instance, left)
        if registrations:
            st = self.state()
            assert st["runners"] == [], "registrations left: %r" % st["runners"]
        self.check_no_jit()

    def check_no_jit(self):
        logs = self.logs()
        assert JIT_PREFIX not in logs, "JIT config in runnerd's log"
        assert rdtest.TOKEN not in logs, "token in runnerd's log"
        for c in self.calls():
            assert not c.get("jit_in_argv"), "JIT config in docker argv: %r" % c
            for a in c.get("argv", []):
                assert JIT_PREFIX not in a and not a.startswith(
                    "ACTIONS_RUNNER_INPUT_JITCONFIG="), "JIT config in argv: %r" % c
        for c in self.calls("run"):
            assert c.get("jit_env"), "docker run without the JIT config in its env: %r" % c

    def close(self):
        for rd in self.daemons:
            if rd.alive():
                rd.kill9()
        try:
            if self.fake:
                rdtest.remove_containers(self.docker, self.instance, env=self.denv)
        finally:
            self.gh.stop()


def run_scenarios(funcs, parallel=3):
    """Run scenario functions (each takes a tmp dir) in a few threads; report all failures."""
    results = {}
    lock = threading.Lock()
    pending = list(funcs)

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                fn = pending.pop(0)
            t0 = time.monotonic()
            try:
                with rdtest.TempDir() as tmp:
                    fn(tmp)
                res = None
            except BaseException as e:  # noqa: BLE001 - reported below
                import traceback
                res = traceback.format_exc()
                del e
            with lock:
                results[fn.__name__] = (res, time.monotonic() - t0)
                print("%-32s %s (%.1fs)" % (fn.__name__, "OK" if res is None else "FAIL",
                                            time.monotonic() - t0), flush=True)

    threads = [threading.Thread(target=worker) for _ in range(max(1, parallel))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [(n, r[0]) for n, r in results.items() if r[0] is not None]
    for n, tb in failed:
        print("---- %s failed:\n%s" % (n, tb), file=sys.stderr)
    return 1 if failed else 0


def busy_then_kill9(sc, repo, owner_repos=("octo-cat", ["hello"]), duration_ms=15000):
    """One x64 pool, one job of duration_ms in REPO; runnerd is killed with SIGKILL while
    the job runs, leaving its container behind. Returns (cfg, job id) for the next runnerd."""
    gh = sc.gh
    gh.repos(*owner_repos)
    cfg = sc.config([rdtest.pool("x64", X64, "fake-runner:x64")], [{"repo": repo}],
                    shutdown_grace="20s")
    job = gh.jobs(repo, X64, duration_ms=duration_ms)["job_ids"][0]
    rd1 = sc.runnerd(cfg, name="runnerd1")
    rdtest.wait_until(lambda: events_of(sc.state(), "job_started"), 30, 0.1, "the job to start")
    rd1.kill9()
    assert len(sc.containers()) == 1, "the container must outlive runnerd"
    return cfg, job


def adopted_job_finishes(sc, rd, job):
    """After busy_then_kill9 and a runnerd RD that adopted the container: the job
    completes on its one runner (one registration, one `docker run`), RD exits 0 on
    SIGTERM, and nothing is left behind."""
    rdtest.wait_until(lambda: [j for j in sc.state()["jobs"] if j["id"] == job][0]["status"]
                      == "completed", 40, 0.2, "the adopted job to complete")
    rdtest.wait_until(lambda: sc.containers() == [], 30, 0.2, "the runner's container to exit")
    rdtest.wait_until(lambda: "capacity released" in rd.logs(), 30, 0.2,
                      "runnerd to see the adopted runner exit")
    created = events_of(sc.state(), "jit_created")
    assert len(created) == 1, "one registration for one job, got %r" % created
    assert len(sc.calls("run")) == 1, "a second docker run: %r" % sc.calls("run")
    rd.signal(signal.SIGTERM)
    code = rd.proc.wait(40)
    assert code == 0, "runnerd exit %r" % code
    sc.check_clean()


def dump_on_failure(sc, tail=6000):
    sys.stderr.write("---- runnerd log (%s) tail:\n%s\n" % (sc.instance, sc.logs()[-tail:]))


def sigterm(rd):
    rd.proc.send_signal(signal.SIGTERM)
