"""Helpers for the operating tests (reload, webhook, notify, metrics, listener load) and
bench/webhook.py: a free loopback port, raw HTTP requests to runnerd's listener, signed
workflow_job deliveries built from GitHub's example payload, and a daemon + fake GitHub +
fake docker set-up. Standard library only."""
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rdtest  # noqa: E402

X64 = ["self-hosted", "linux", "x64"]
FIXTURE = os.path.join(rdtest.SRC, "tests", "fixtures", "github",
                       "webhook-workflow_job-queued.json")
SECRET = "opskit-webhook-secret-0123456789"


class TempDir(rdtest.TempDir):
    """rdtest.TempDir under its own prefix (other tests clean up rdtest-* directories)."""

    def __enter__(self):
        import tempfile
        self.path = tempfile.mkdtemp(prefix="rdops-")
        return self.path


def log_time(ts):
    """Epoch seconds of a runnerd log timestamp (2026-11-29T20:46:23.073Z)."""
    import datetime
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def free_port():
    """A loopback TCP port nobody listens on now (the config refuses port 0)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection: (status, headers dict lower-cased, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def get(port, path, timeout=10):
    return request(port, "GET", path, timeout=timeout)


def get_json(port, path="/status"):
    st, _, body = get(port, path)
    assert st == 200, (path, st, body[:300])
    return json.loads(body)


def sign(secret, body):
    if isinstance(secret, str):
        secret = secret.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def queued_payload(repo, job_id, run_id, labels, action="queued", status="queued"):
    """GitHub's example workflow_job delivery with repo, ids, labels and status replaced."""
    with open(FIXTURE) as f:
        d = json.load(f)
    owner, name = repo.split("/", 1)
    d["action"] = action
    wj = d["workflow_job"]
    wj["id"] = job_id
    wj["run_id"] = run_id
    wj["labels"] = list(labels)
    wj["status"] = status
    wj["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    wj["started_at"] = wj["created_at"]
    wj["run_url"] = "https://api.github.com/repos/%s/actions/runs/%d" % (repo, run_id)
    wj["url"] = "https://api.github.com/repos/%s/actions/jobs/%d" % (repo, job_id)
    if action == "queued":
        # The published example has runner fields set; a real queued delivery has nulls.
        wj["runner_id"] = wj["runner_name"] = None
        wj["runner_group_id"] = wj["runner_group_name"] = None
    repo_obj = d["repository"]
    repo_obj["name"] = name
    repo_obj["full_name"] = repo
    repo_obj["owner"]["login"] = owner
    return json.dumps(d).encode()


def deliver(port, body, secret=SECRET, event="workflow_job", delivery=None, signature=None,
            timeout=10, conn=None):
    """POST /webhook like GitHub does; returns (status, body text, delivery id)."""
    delivery = delivery or str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/opskit",
               "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
               "X-GitHub-Hook-ID": "1", "X-GitHub-Hook-Installation-Target-Type": "repository"}
    if signature is None and secret is not None:
        signature = sign(secret, body)
    if signature:
        headers["X-Hub-Signature-256"] = signature
    if conn is not None:
        conn.request("POST", "/webhook", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), delivery
    st, _, data = request(port, "POST", "/webhook", body=body, headers=headers, timeout=timeout)
    return st, data.decode("utf-8", "replace"), delivery


def docker_calls(state_dir, cmd=None):
    path = os.path.join(state_dir, "calls.jsonl")
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                c = json.loads(line)
            except ValueError:
                continue  # a line being written
            if cmd is None or c.get("cmd") == cmd:
                out.append(c)
    return out


def run_names(state_dir):
    """Container names of every `docker run` the fake docker saw."""
    names = []
    for c in docker_calls(state_dir, "run"):
        argv = c.get("argv", [])
        if "--name" in argv:
            names.append(argv[argv.index("--name") + 1])
    return names


def pool_of(name, instance):
    """Pool of a runner named runnerd-INSTANCE-POOL-SUFFIX."""
    m = re.match(r"runnerd-%s-(.+)-[a-z0-9]+$" % re.escape(instance), name)
    return m.group(1) if m else None


class Setup:
    """Fake GitHub + fake docker + a config with a listener; start() runs runnerd."""

    def __init__(self, tmp, instance="ops", pools=None, targets=None, listen=True,
                 secret=SECRET, poll_interval="1s", extra_env=None, gh_args=(), **cfg_extra):
        self.tmp = tmp
        self.instance = instance
        self.gh = rdtest.FakeGitHub(tmp, extra_args=gh_args)
        self.state_dir = os.path.join(tmp, "docker")
        self.env = {"FAKE_DOCKER_STATE": self.state_dir}
        if extra_env:
            self.env.update(extra_env)
        self.port = free_port() if listen else None
        self.secret_path = None
        if secret is not None:
            self.secret_path = os.path.join(tmp, "webhook-secret")
            with open(self.secret_path, "w") as f:
                f.write(secret + "\n")
            os.chmod(self.secret_path, 0o600)
        self.pools = pools if pools is not None else [rdtest.pool("linux-x64", X64, "fake:x64")]
        self.targets = targets if targets is not None else []
        self.cfg_extra = cfg_extra
        self.poll_interval = poll_interval
        self.rd = None

    def config(self, pools=None, targets=None, github=None, **extra):
        kw = dict(self.cfg_extra)
        kw.update(extra)
        if self.port:
            kw.setdefault("listen", "127.0.0.1:%d" % self.port)
        if self.secret_path and self.port:
            kw.setdefault("webhook_secret_file", self.secret_path)
        cfg = rdtest.base_config(self.gh, rdtest.FAKE_DOCKER,
                                 pools if pools is not None else self.pools,
                                 targets if targets is not None else self.targets,
                                 instance=self.instance, **kw)
        cfg["github"]["poll_interval"] = self.poll_interval
        if github:
            cfg["github"].update(github)
            if "token_file" in github:
                cfg["github"].pop("token_env", None)
            if "token_env" in github:
                cfg["github"].pop("token_file", None)
        return cfg

    def start(self, cfg=None, env=None, args=(), wait_listen=True):
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        self.rd = rdtest.Runnerd(self.tmp, cfg or self.config(), env=full_env, args=args)
        self.rd.start()
        if self.port and wait_listen:
            self.wait_listening()
        return self.rd

    def wait_listening(self, timeout=20):
        def up():
            if not self.rd.alive():
                raise AssertionError("runnerd exited: %s" % self.rd.logs()[-3000:])
            try:
                return get(self.port, "/healthz", timeout=2)[0] in (200, 503)
            except OSError:
                return False
        rdtest.wait_until(up, timeout, 0.05, "the listener on port %d" % self.port)

    def wait_log(self, pattern, timeout=20, start=0):
        """Wait for a regex in runnerd's log (searching from offset start); returns the match."""
        rx = re.compile(pattern)

        def found():
            m = rx.search(self.rd.logs(), start)
            return m
        return rdtest.wait_until(found, timeout, 0.05, "log line %r" % pattern)

    def log_size(self):
        return len(self.rd.logs())

    def fake_env(self):
        return dict(os.environ, **self.env)

    def close(self, dump=False):
        if dump and self.rd is not None:
            sys.stderr.write("---- runnerd log (tail) ----\n" + self.rd.logs()[-8000:])
        if self.rd is not None and self.rd.alive():
            try:
                self.rd.stop(timeout=30)
            except AssertionError:
                pass
        if self.rd is not None and self.rd.alive():
            self.rd.kill9()
        try:
            rdtest.remove_containers(rdtest.FAKE_DOCKER, self.instance, env=self.fake_env())
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass
        self.gh.stop()
