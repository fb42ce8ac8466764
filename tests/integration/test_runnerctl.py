#!/usr/bin/env python3
"""runnerctl against a canned /status (docs/status.md) served by a tiny HTTP server:
tables are aligned and say what the document says, --json passes the JSON through,
errors (daemon down, HTTP 500, not JSON) exit 1 with a message, reload goes to the control socket.
The canned document is first checked with status_schema, the checker the daemon's own
tests use, so runnerctl and the daemon agree on one schema."""
import http.server
import json
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rdtest  # noqa: E402
import status_schema  # noqa: E402

SRC = os.environ.get("RUNNERD_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("RUNNERD_BUILD") or os.path.join(SRC, "build")
RUNNERCTL = os.environ.get("RUNNERCTL_BIN") or os.path.join(BUILD, "runnerctl")
FIXTURE = os.path.join(SRC, "tests", "fixtures", "status", "status-example.json")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


class Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    status = 200
    ctype = "application/json"
    requests = []

    def do_GET(self):
        Handler.requests.append(self.path)
        if self.path != "/status":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(Handler.status)
        self.send_header("Content-Type", Handler.ctype)
        self.send_header("Content-Length", str(len(Handler.body)))
        self.end_headers()
        self.wfile.write(Handler.body)

    def log_message(self, *args):
        pass


def serve():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv


def ctl(url, *args, env_url=None):
    env = dict(os.environ)
    env.pop("RUNNERCTL_URL", None)
    if env_url:
        env["RUNNERCTL_URL"] = env_url
    cmd = [RUNNERCTL] + (["--url", url] if url else []) + list(args)
    p = subprocess.run(rdtest.wrap(cmd), capture_output=True, text=True, timeout=rdtest.scaled(30), env=env)
    return p.returncode, p.stdout, p.stderr


def table(out):
    """Rows of an aligned table: split on runs of 2+ spaces, check columns line up."""
    lines = [l for l in out.splitlines() if l.strip()]
    return lines


def columns_aligned(lines):
    # Every header column starts where the data column starts (left-aligned) or
    # ends where it ends (right-aligned numbers): check that all lines have the
    # same length up to the last column's start.
    head = lines[0]
    starts = [i for i in range(len(head)) if head[i] != " " and (i == 0 or head[i - 1] == " ")]
    last = starts[-1]
    for l in lines[1:]:
        if len(l) < last or (l[last - 1] != " " and last > 0):
            return False
        if last > 1 and l[last - 2:last] != "  ":
            return False
    return True


def main():
    with open(FIXTURE, "rb") as f:
        canned = f.read()
    doc = json.loads(canned)
    try:
        status_schema.validate(doc)
        check(True, "canned /status follows docs/status.md (status_schema.validate)")
    except ValueError as e:
        check(False, "canned /status follows the schema: %s" % e)

    # The checker rejects what it should.
    bad = json.loads(canned)
    del bad["pools"][0]["busy"]
    try:
        status_schema.validate(bad)
        check(False, "status_schema rejects a pool without busy")
    except ValueError as e:
        check("busy" in str(e), "status_schema rejects a pool without busy (%s)" % e)
    bad = json.loads(canned)
    bad["runners"][0]["state"] = "running"
    try:
        status_schema.validate(bad)
        check(False, "status_schema rejects runner state 'running'")
    except ValueError:
        check(True, "status_schema rejects runner state 'running'")

    srv = serve()
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    Handler.body = canned

    # pools
    rc, out, err = ctl(url, "pools")
    check(rc == 0, "pools exits 0 (rc=%d, err=%r)" % (rc, err))
    lines = table(out)
    check(lines and lines[0].split()[:4] == ["POOL", "MAX", "RUNNING", "STARTING"],
          "pools header: %r" % (lines[:1],))
    check(len(lines) == 4, "pools: header + 3 rows (%d lines)" % len(lines))
    check(columns_aligned(lines), "pools columns aligned")
    x64 = [l for l in lines if l.startswith("linux-x64 ")]
    check(len(x64) == 1 and x64[0].split()[1:7] == ["4", "2", "1", "0", "1", "2"],
          "linux-x64 row: max 4 running 2 starting 1 idle 0 busy 1 queued 2: %r" % x64)
    arm = [l for l in lines if l.startswith("linux-arm64")]
    check(arm and "degraded (retry in 30s)" in arm[0] and "emulated arm64" in arm[0],
          "arm64 row says degraded, retry in 30s, emulated: %r" % arm)
    check(any(l.startswith("old-pool") and "draining" in l for l in lines), "old-pool draining")
    check("self-hosted,linux,x64,docker" in out, "labels joined with commas")

    # runners
    rc, out, err = ctl(url, "runners")
    lines = table(out)
    check(rc == 0 and lines[0].split() == ["RUNNER", "POOL", "SCOPE", "STATE", "AGE", "JOB"],
          "runners header: %r" % lines[:1])
    check(len(lines) == 4, "runners: header + 3 rows")
    check(columns_aligned(lines), "runners columns aligned")
    busy = [l for l in lines if "k3x9q2" in l]
    check(busy and "busy (adopted)" in busy[0] and "1h02m" in busy[0] and
          busy[0].rstrip().endswith("289782451"), "busy runner: adopted, age 1h02m, job: %r" % busy)
    idle = [l for l in lines if "zz9" in l]
    check(idle and idle[0].rstrip().endswith("-") and "1m35s" in idle[0],
          "idle runner without job shows '-', age 1m35s: %r" % idle)

    # targets
    rc, out, err = ctl(url, "targets")
    lines = table(out)
    check(rc == 0 and lines[0].startswith("TARGET") and "LAST POLL" in lines[0],
          "targets header: %r" % lines[:1])
    check(columns_aligned(lines), "targets columns aligned")
    org = [l for l in lines if l.startswith("orgs/octo-org")]
    check(org and "web,docs" in org[0] and "5m00s ago" in org[0] and "1m00s" in org[0] and
          "502 Bad Gateway" in org[0], "org target: repos, last poll 5m ago, backoff 1m, error: %r" % org)
    new = [l for l in lines if l.startswith("repos/octo-org/new")]
    check(new and "never" in new[0], "never-polled target says never: %r" % new)

    # status
    rc, out, err = ctl(url, "status")
    check(rc == 0, "status exits 0")
    check(out.startswith("runnerd 0.1.0, instance build-01, running, up 1h01m"),
          "status first line: %r" % out.splitlines()[:1])
    check("4 queued, 1 unmatched" in out, "status: jobs line")
    check("rate limit 4321/5000 left, resets in 30m00s" in out, "status: rate limit line")
    check("cpus 6/8" in out and "memory 12.0GiB/31.0GiB" in out and "runners 3/16" in out,
          "status: host line")
    check("reloads 1 ok / 1 failed" in out, "status: reloads")
    check("POOL" in out and "RUNNER" in out and "TARGET" in out, "status: includes the tables")

    # --json passes through
    rc, out, err = ctl(url, "status", "--json")
    check(rc == 0 and json.loads(out) == doc, "status --json is the document")
    rc, out, err = ctl(url, "pools", "--json")
    check(rc == 0 and json.loads(out) == doc["pools"], "pools --json is .pools")
    rc, out, err = ctl(url, "runners", "--json")
    check(rc == 0 and json.loads(out) == doc["runners"], "runners --json is .runners")
    rc, out, err = ctl(url, "targets", "--json")
    check(rc == 0 and json.loads(out) == doc["targets"], "targets --json is .targets")
    rc, out, err = ctl(url + "/", "pools", "--json")
    check(rc == 0 and Handler.requests[-1] == "/status", "trailing slash in --url is fine")

    # RUNNERCTL_URL is the default
    rc, out, err = ctl(None, "pools", env_url=url)
    check(rc == 0 and "linux-x64" in out, "RUNNERCTL_URL is used without --url")

    # A minimal document (keys missing) does not crash: missing values print as '-'.
    Handler.body = b'{"schema":1,"pools":[{"name":"p"}],"runners":[{}],"targets":[{}]}'
    for c in ("status", "pools", "runners", "targets"):
        rc, out, err = ctl(url, c)
        check(rc == 0, "%s with a sparse document exits 0 (rc=%d %r)" % (c, rc, err))

    # Errors
    Handler.body = b"not json"
    rc, out, err = ctl(url, "status")
    check(rc == 1 and "JSON" in err, "non-JSON answer: exit 1 with a message (%r)" % err)
    Handler.body = b"boom"
    Handler.status = 500
    rc, out, err = ctl(url, "status")
    check(rc == 1 and "HTTP 500" in err, "HTTP 500: exit 1 (%r)" % err)
    Handler.status = 200
    srv.shutdown()
    srv.server_close()
    rc, out, err = ctl(url, "status", "--timeout", "2")
    check(rc == 1 and "cannot read" in err, "daemon down: exit 1 (%r)" % err)

    # Usage
    # reload goes to the control socket, never to the listener (test_control has the rest).
    rc, out, err = ctl(url, "-s", "/nonexistent/runnerd.sock", "reload")
    check(rc == 1 and "control socket /nonexistent/runnerd.sock" in err,
          "reload uses the control socket, not the listener (%r)" % err)
    rc, out, err = ctl(url, "frobnicate")
    check(rc == 2 and "unknown command" in err, "unknown command: exit 2")
    rc, out, err = ctl(None, "--help")
    check(rc == 0 and "usage: runnerctl" in out, "--help")
    rc, out, err = ctl(None, "--version")
    check(rc == 0 and out.startswith("runnerctl "), "--version")

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all runnerctl checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
