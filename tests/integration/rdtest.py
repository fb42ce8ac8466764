"""Shared harness for runnerd's integration tests and the demo (stdlib only).

Starts the fake GitHub (tests/fake_github/fake_github.py), writes configs,
runs runnerd, and asks docker (real or the fake) what is left behind.
"""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SRC = os.environ.get("RUNNERD_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("RUNNERD_BUILD") or os.path.join(SRC, "build")
RUNNERD = os.environ.get("RUNNERD_BIN") or os.path.join(BUILD, "runnerd")
FAKE_GH = os.path.join(SRC, "tests", "fake_github", "fake_github.py")
FAKE_DOCKER = os.path.join(SRC, "tests", "fake_docker", "fake_docker")
TOKEN = "ghp_FakeTokenForTests0123456789abcdefABCD"
# A command prefix every binary of the build (runnerd, runnerctl, rd_discover,
# rd_supervise) is run under when set, e.g. "valgrind --error-exitcode=99"
# (scripts/valgrind.sh). RUNNERD_WRAPPER is its older name. Run them through wrap().
WRAPPER = shlex.split(os.environ.get("RD_TEST_WRAPPER") or os.environ.get("RUNNERD_WRAPPER", ""))
# Every deadline a test waits on is multiplied by this (scripts/valgrind.sh sets
# it: under memcheck the binaries run 10-50 times slower). Waits grow; what is
# asserted does not change. Use scaled(seconds) or wait_until().
TIME_SCALE = max(1.0, float(os.environ.get("RD_TEST_TIMEOUT_SCALE") or 1))
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")


def skip_or_fail(reason):
    """Outside CI a missing prerequisite skips (exit 77); in CI it fails loudly."""
    if IN_CI:
        print("FAIL: " + reason, file=sys.stderr)
        sys.exit(1)
    print("SKIP: " + reason)
    sys.exit(77)


def wrap(argv):
    """argv of a build binary, under RD_TEST_WRAPPER when that is set; "{test}"
    in the wrapper becomes this test's name (valgrind.sh: one log per test):
    $RD_TEST_NAME (a test that runs a script sets it for it) or the script's."""
    test = os.environ.get("RD_TEST_NAME") or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    return [w.replace("{test}", test) for w in WRAPPER] + list(argv)


def scaled(seconds):
    """A deadline in seconds, stretched by RD_TEST_TIMEOUT_SCALE."""
    return seconds * TIME_SCALE


def wait_until(pred, timeout, interval=0.05, what="condition"):
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


class FakeGitHub:
    def __init__(self, tmp, token=TOKEN, extra_args=()):
        self.tmp = tmp
        self.port_file = os.path.join(tmp, "fakegh.port")
        self.log = open(os.path.join(tmp, "fakegh.log"), "w")
        args = [sys.executable, FAKE_GH, "--port", "0", "--port-file", self.port_file]
        if token:
            args += ["--token", token]
        args += list(extra_args)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: os.path.exists(self.port_file) or self.proc.poll() is not None, 15,
                   what="fake GitHub to listen")
        if self.proc.poll() is not None:
            raise RuntimeError("fake GitHub exited: see " + self.log.name)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "rdtest"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def repos(self, owner, names, org=False, archived=()):
        return self.call("POST", "/_control/repos",
                         {"owner": owner, "names": list(names), "org": org,
                          "archived": list(archived)})

    def jobs(self, repo, labels, count=1, duration_ms=300, status="queued", run_status="queued",
             created_ago_s=0, run_id=None):
        spec = {"repo": repo, "labels": list(labels), "count": count,
                "duration_ms": duration_ms, "status": status,
                "run_status": run_status, "created_ago_s": created_ago_s}
        if run_id is not None:
            spec["run_id"] = run_id
        return self.call("POST", "/_control/jobs", spec)

    def state(self):
        return self.call("GET", "/_control/state")

    def stats(self):
        return self.call("GET", "/_control/stats")

    def fault(self, **kw):
        return self.call("POST", "/_control/faults", kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Enough YAML for our configs: dicts, lists, scalars (flow lists for scalar lists)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict):
                if not v:
                    out.append("%s%s: {}" % (pad, k))
                else:
                    out.append("%s%s:" % (pad, k))
                    out.append(to_yaml(v, indent + 1))
            elif isinstance(v, list):
                if all(not isinstance(x, (dict, list)) for x in v):
                    out.append("%s%s: [%s]" % (pad, k, ", ".join(yaml_scalar(x) for x in v)))
                else:
                    out.append("%s%s:" % (pad, k))
                    out.append(to_yaml(v, indent + 1))
            else:
                out.append("%s%s: %s" % (pad, k, yaml_scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = to_yaml(item, indent + 1).split("\n")
                first = sub[0].lstrip()
                out.append("%s- %s" % (pad, first))
                out.extend(sub[1:])
            else:
                out.append("%s- %s" % (pad, yaml_scalar(item)))
    return "\n".join(x for x in out if x != "")


def base_config(gh, docker_binary, pools, targets, instance="rdtest", **extra):
    cfg = {
        "github": {"api_url": gh.url, "token_env": "RD_TEST_TOKEN", "poll_interval": "1s",
                   "request_budget": "100000/h", "max_connections": 4},
        "host": {"cpus": 8, "memory": "16GiB", "max_runners": 16},
        "docker": {"binary": docker_binary, "network": "host"},
        "shutdown_grace": "20s",
        "instance": instance,
        "pools": pools,
        "targets": targets,
    }
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def pool(name, labels, image, **kw):
    p = {"name": name, "labels": labels, "image": image, "cpus": 1, "memory": "512MiB",
         "pull": "never", "max_runners": 8, "startup_timeout": "60s", "idle_timeout": "30s",
         "job_timeout": "5m"}
    p.update(kw)
    return p


class Runnerd:
    def __init__(self, tmp, cfg, args=(), env=None, name="runnerd"):
        self.tmp = tmp
        self.cfg_path = os.path.join(tmp, name + ".yaml")
        self.write_config(cfg)
        self.log_path = os.path.join(tmp, name + ".log")
        self.out_path = os.path.join(tmp, name + ".out")
        self.args = list(args)
        self.env = dict(os.environ)
        self.env["RD_TEST_TOKEN"] = TOKEN
        if env:
            self.env.update(env)
        self.proc = None

    def write_config(self, cfg):
        text = cfg if isinstance(cfg, str) else to_yaml(cfg) + "\n"
        with open(self.cfg_path + ".tmp", "w") as f:
            f.write(text)
        os.rename(self.cfg_path + ".tmp", self.cfg_path)

    def start(self):
        self.log = open(self.log_path, "a")
        self.out = open(self.out_path, "a")
        self.proc = subprocess.Popen(wrap([RUNNERD, "-c", self.cfg_path, "--log-level", "debug"]
                                          + self.args), stdout=self.out, stderr=self.log, env=self.env)
        return self

    def run(self, timeout=60):
        """Run to completion (--once); return (exit code, stdout, stderr)."""
        p = subprocess.run(wrap([RUNNERD, "-c", self.cfg_path] + self.args), capture_output=True,
                           text=True, env=self.env, timeout=scaled(timeout))
        with open(self.log_path, "a") as f:
            f.write(p.stderr)
        return p.returncode, p.stdout, p.stderr

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=60):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("runnerd did not exit within %ss of SIGTERM" % timeout)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def docker_available(binary="docker"):
    try:
        return subprocess.run([binary, "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def containers(binary, instance, env=None):
    """Names of containers (any state) labelled with this instance."""
    p = subprocess.run([binary, "ps", "-a", "--filter", "label=runnerd.instance=" + instance,
                        "--format", "{{.Names}}"], capture_output=True, text=True, env=env,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError("docker ps failed: " + p.stderr)
    return [x for x in p.stdout.split("\n") if x.strip()]


def remove_containers(binary, instance, env=None):
    for name in containers(binary, instance, env):
        subprocess.run([binary, "rm", "-f", name], capture_output=True, env=env, timeout=30)


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="rdtest-")
        return self.path

    def __exit__(self, *a):
        if os.environ.get("RD_KEEP_TMP"):
            print("kept", self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
