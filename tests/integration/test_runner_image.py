#!/usr/bin/env python3
"""Integration test of the real-engine runner images (contrib/runner-image).

Runs runnerd-test-runner:x64 and runnerd-test-runner:arm64 (under qemu) with a
real dockerd, `docker run` exactly as runnerd does (JIT config in the
environment only, --network host, --pull never), against the fake GitHub, and
checks: each takes and completes a queued job, reports its architecture
(x86_64 / aarch64), keeps the JIT config and the runner token out of every
process's argv and out of the output, and exits 143 promptly on `docker stop`.
Needs dockerd and the images (scripts/start-dockerd.sh,
scripts/build-runner-images.sh): when missing it FAILS if CI=true, else SKIPs (77).
Standard library only.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.environ.get("RUNNERD_SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FAKE_GH = os.environ.get("FAKE_GITHUB_PY") or os.path.join(SRC, "tests", "fake_github", "fake_github.py")
DOCKER = os.environ.get("DOCKER", "docker")
JIT_VAR = "ACTIONS_RUNNER_INPUT_JITCONFIG"
TOKEN = "ghp_faketesttoken"
INSTANCE = "itest-%d" % os.getpid()
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
IMAGES = {"x64": "runnerd-test-runner:x64", "arm64": "runnerd-test-runner:arm64"}

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def skip_or_fail(reason):
    if os.environ.get("CI") == "true":
        print("FAIL: %s (CI=true: not skipping)" % reason)
        sys.exit(1)
    print("SKIP: %s" % reason)
    sys.exit(77)


def docker(*args, timeout=60):
    return subprocess.run([DOCKER] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


class FakeGitHub:
    def __init__(self, tmp):
        port_file = os.path.join(tmp, "gh.port")
        self.log = open(os.path.join(tmp, "gh.log"), "w")
        self.proc = subprocess.Popen([sys.executable, FAKE_GH, "--port", "0", "--port-file", port_file,
                                      "--token", TOKEN], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake GitHub did not start (see %s/gh.log)" % tmp)
            time.sleep(0.05)
        with open(port_file) as f:
            self.base = "http://127.0.0.1:%d" % int(f.read().strip())

    def call(self, method, path, body=None, auth=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", "Bearer " + TOKEN)
        with OPENER.open(req, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def jit(self, name, labels):
        return self.call("POST", "/repos/o/r/actions/runners/generate-jitconfig",
                         {"name": name, "runner_group_id": 1, "labels": labels}, auth=True)["encoded_jit_config"]

    def job(self, jid):
        return next(j for j in self.call("GET", "/_control/state")["jobs"] if j["id"] == jid)

    def runner(self, name):
        return next((r for r in self.call("GET", "/_control/state")["runners"] if r["name"] == name), None)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def run_argv(name, image, platform=None):
    argv = [DOCKER, "run", "--rm", "--name", name, "--sig-proxy=false",
            "--label", "runnerd.instance=" + INSTANCE, "--label", "runnerd.pool=test",
            "--label", "runnerd.runner-id=1", "--label", "runnerd.scope=repos/o/r",
            "--cpus", "1", "--memory", "256MiB", "--pids-limit", "128",
            "--security-opt", "no-new-privileges", "--network", "host", "--pull", "never"]
    if platform:
        argv += ["--platform", platform]
    return argv + ["-e", JIT_VAR, image]


def runner_token(jit):
    outer = json.loads(base64.b64decode(jit))
    return json.loads(base64.b64decode(outer[".credentials"]))["data"]["token"]


def argv_holding(secrets_):
    """PIDs whose command line contains one of the secrets."""
    hits = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cl = f.read().decode(errors="replace")
        except OSError:
            continue
        if any(s in cl for s in secrets_):
            hits.append(int(d))
    return hits


def run_job(gh, arch, labels, platform, expect_arch, secrets_, outputs):
    name = "rd-%s-%s" % (INSTANCE, arch)
    q = gh.call("POST", "/_control/jobs", {"repo": "o/r", "labels": labels, "count": 1, "duration_ms": 3000})
    jid = q["job_ids"][0]
    jit = gh.jit(name, labels)
    token = runner_token(jit)
    secrets_ += [jit, token]
    env = dict(os.environ, **{JIT_VAR: jit})
    p = subprocess.Popen(run_argv(name, IMAGES[arch], platform), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # while the job runs: nothing on this machine has a secret in its argv
    leaks, seen_busy = [], False
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        leaks += argv_holding([jit, token])
        r = gh.runner(name)
        seen_busy = seen_busy or bool(r and r["busy"])
        time.sleep(0.2)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    outputs.append(out + err)
    check(p.returncode == 0, "%s: docker run exits 0 (rc=%s; stderr=%r)" % (arch, p.returncode, err[-300:]))
    check(seen_busy, "%s: runner was seen busy" % arch)
    check(not leaks, "%s: no process had the JIT config or runner token in its argv (%s)" % (arch, leaks))
    check("\u221a Connected to GitHub" in out and "Running job: " in out
          and re.search(r"Job .* completed with result: Succeeded", out), "%s: runner log lines" % arch)
    j = gh.job(jid)
    check(j["status"] == "completed" and j["conclusion"] == "success", "%s: job completed" % arch)
    check(j["runner_name"] == name, "%s: job run by %s" % (arch, name))
    check(j["runner_arch"] == expect_arch, "%s: runner reported %s (got %s)" % (arch, expect_arch, j["runner_arch"]))
    check(gh.runner(name) is None, "%s: ephemeral registration deleted" % arch)


def test_stop(gh, secrets_, outputs):
    labels = ["self-hosted", "linux", "x64"]
    name = "rd-%s-stop" % INSTANCE
    gh.call("POST", "/_control/jobs", {"repo": "o/r", "labels": labels, "count": 1, "duration_ms": 60000})
    jit = gh.jit(name, labels)
    secrets_ += [jit, runner_token(jit)]
    p = subprocess.Popen(run_argv(name, IMAGES["x64"]), env=dict(os.environ, **{JIT_VAR: jit}),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (gh.runner(name) or {}).get("busy"):
        time.sleep(0.2)
    ps = docker("ps", "--no-trunc", "--filter", "label=runnerd.instance=" + INSTANCE,
                "--format", '{{.Names}}\t{{.State}}\t{{.Label "runnerd.pool"}}')
    check(ps.stdout.strip() == "%s\trunning\ttest" % name, "ps shows the running container: %r" % ps.stdout)
    t0 = time.monotonic()
    s = docker("stop", "-t", "10", name)
    took = time.monotonic() - t0
    out, err = p.communicate(timeout=30)
    outputs.append(out + err + s.stdout + s.stderr)
    check(s.returncode == 0, "docker stop exits 0")
    check(took < 8, "entrypoint handles SIGTERM as PID 1 (stop took %.1f s)" % took)
    check(p.returncode == 143, "docker run exits 143 after docker stop (rc=%s)" % p.returncode)


def main():
    if docker("info").returncode != 0:
        skip_or_fail("dockerd is unreachable (scripts/start-dockerd.sh)")
    for img in IMAGES.values():
        if docker("image", "inspect", img).returncode != 0:
            skip_or_fail("image %s missing (scripts/build-runner-images.sh)" % img)
    if not os.path.exists(FAKE_GH):
        skip_or_fail("fake GitHub %s is missing" % FAKE_GH)
    tmp = tempfile.mkdtemp(prefix="test_runner_image.")
    gh = FakeGitHub(tmp)
    secrets_, outputs = [], []
    try:
        gh.call("POST", "/_control/repos", {"owner": "o", "names": ["r"]})
        for arch, labels, platform, expect in (
                ("x64", ["self-hosted", "linux", "x64"], None, "x86_64"),
                ("arm64", ["self-hosted", "linux", "arm64"], "linux/arm64", "aarch64")):
            print("== %s" % arch)
            try:
                run_job(gh, arch, labels, platform, expect, secrets_, outputs)
            except Exception as e:
                check(False, "%s raised %s: %s" % (arch, type(e).__name__, e))
        print("== stop")
        try:
            test_stop(gh, secrets_, outputs)
        except Exception as e:
            check(False, "stop raised %s: %s" % (type(e).__name__, e))
        blob = "\n".join(outputs)
        check(not any(s in blob for s in secrets_), "no JIT config or runner token in any output")
    finally:
        ps = docker("ps", "-aq", "--filter", "label=runnerd.instance=" + INSTANCE)
        if ps.stdout.split():
            docker("rm", "-f", *ps.stdout.split())
        gh.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
