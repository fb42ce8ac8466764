#!/usr/bin/env python3
"""Build the seed corpora of the fuzz targets into OUTDIR/<target>/.

Usage: seeds.py REPO_ROOT OUTDIR

Seeds come from the repository as it is now (so they follow the fixtures):
tests/fixtures/github/*.json, conf/**/*.yaml, tests/bad-config/*.yaml,
plus the hand-written samples below (docker output, HTTP requests and
response headers). Each target's input format is described at the top of
its fuzz_*.c file. Existing files in OUTDIR are kept (the corpus grows
across runs); a seed is named by its content's hash.
"""
import glob
import hashlib
import hmac
import json
import os
import sys
import urllib.parse

root, out = sys.argv[1], sys.argv[2]


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    path = os.path.join(d, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


fixtures = sorted(glob.glob(os.path.join(root, "tests/fixtures/github/*.json")))
yamls = sorted(glob.glob(os.path.join(root, "conf/**/*.yaml"), recursive=True)
               + glob.glob(os.path.join(root, "tests/bad-config/*.yaml")))

# --- fuzz_config: the YAML text itself.
for y in yamls:
    put("fuzz_config", read(y))
put("fuzz_config", """github: {token_env: T}
pools: [{name: p, labels: [self-hosted, linux, x64], image: img, cpus: 0.5, memory: 1G}]
targets: [{org: o, repos: [a, b]}, {repo: o/c, pools: [p]}]
""")

# --- fuzz_ghjson: byte 0 picks the parser (see the enum in fuzz_ghjson.c).
NPARSERS = 15
P_STRINGS, P_ORG_REPOS = 13, 14
for fx in fixtures:
    body = read(fx)
    for sel in range(P_STRINGS):
        put("fuzz_ghjson", bytes([sel]) + body)
for s in ["2020-01-22T12:13:35.123-08:00", "2021-09-13T02:21:13Z", "queued", "in_progress"]:
    put("fuzz_ghjson", bytes([P_STRINGS]) + s.encode())
# An org listing checked against its org: "ORG\n" + the listing (issue 17 F8).
for fx in fixtures:
    if os.path.basename(fx) in ("org-repos-list.json", "installation-repositories-list.json"):
        put("fuzz_ghjson", bytes([P_ORG_REPOS]) + b"octocat\n" + read(fx))
put("fuzz_ghjson", bytes([P_ORG_REPOS]) + b"acme\n" + json.dumps([
    {"name": "a", "full_name": "acme/a"}, {"name": "x", "full_name": "victim/x"},
    {"name": "y/z", "full_name": "acme/y/z"}, {"name": "d", "full_name": "acmeinc/d"},
    {"name": "c", "full_name": "ACME/c"}]).encode())

# --- fuzz_webhook: flags byte, header lines, body.
SIGN, EVENT_LINE, DELIVERY_LINE = 4, 8, 16
for fx in fixtures:
    if "webhook" not in os.path.basename(fx):
        continue
    body = read(fx)
    put("fuzz_webhook", bytes([SIGN]) + body)
    put("fuzz_webhook", bytes([SIGN | EVENT_LINE | DELIVERY_LINE]) + b"workflow_job\nd-1\n" + body)
    sig = "sha256=" + hmac.new(b"fuzz-webhook-secret", body, hashlib.sha256).hexdigest()
    put("fuzz_webhook", bytes([0]) + sig.encode() + b"\n" + body)
    # GitHub's default content type: the JSON URL-encoded in a form's payload field.
    put("fuzz_webhook", bytes([SIGN]) + b"payload=" + urllib.parse.quote_plus(body).encode())
put("fuzz_webhook", bytes([SIGN | EVENT_LINE]) + b"ping\n{\"zen\":\"x\"}")
put("fuzz_webhook", bytes([0]) + b"sha256=0000\n{}")
put("fuzz_webhook", bytes([3, 2]) + bytes([1, 1, 3, 2, 0, 1, 41, 3, 0, 2, 101, 1, 0, 1]))

# --- fuzz_docker: byte 0 picks the mode.
ps = ("0123456789abcdef\trunnerd-host-linux-x64-lx2a9k000abc\trunning\tlinux-x64\t42\trepos/o/r\n"
      "fedcba9876543210\t/runnerd-host-arm-lx2a9k000abd\texited\tarm\t\torgs/o\r\n"
      "aaaa\trunnerd-host-p-1\tdead\tp\t7\torgs/o\n"
      "bbbb\trunnerd-host-p-2\tcreated\tp\t99999999999999999999\tx\n")
put("fuzz_docker", b"\x00" + ps.encode())
put("fuzz_docker", b"\x00" + b"abc\tn\trunning\tp\t1\ts")
for t in ["2024-05-01T10:11:12.123456789Z", "2024-05-01T10:11:12+02:00\n",
          "0001-01-01T00:00:00Z", "2024-02-29T23:59:60.5-00:30"]:
    put("fuzz_docker", b"\x01" + t.encode())
put("fuzz_docker", b"\x02build-01\nlinux-x64\nrunnerd-build-01-linux-x64-lx2a9k000abc")
put("fuzz_docker", b"\x02h\np\nrunnerd-h-p-")
put("fuzz_docker", b"\x03runnerd-h-p-1\nh\nrepos/o/r\nlinux-x64\nghcr.io/actions/actions-runner:latest\n"
    b"bridge\nrunsc\nlinux/arm64\nFOO\n/home/runner/run.sh")
put("fuzz_docker", b"\x03-rm\nh\norgs/o\np\n--privileged\nhost\n\n\nA\n")

# --- fuzz_sched: bytes decoded into host, pools, scopes, jobs and runners
# (fuzz_sched.c reads them in that order; missing bytes read as 0).
put("fuzz_sched", bytes([7, 15, 1, 15, 1, 7, 1, 2, 1, 4, 0, 0, 0, 3, 3, 3, 1, 5, 5, 1, 6, 5, 2, 3, 7, 9, 3]))
put("fuzz_sched", bytes([3, 3, 0, 3, 2] + [0x0b, 2, 2, 0, 3, 1, 2, 0] * 3 + [2, 7, 7, 12]
                        + [i for j in range(12) for i in (j * 5, 3, j)] + [6] + [1, 5, 1, 7, 2] * 6 + [1]))
put("fuzz_sched", bytes(range(256)))

# --- fuzz_headers: a raw response header block.
put("fuzz_headers", "HTTP/2 200\r\n"
    "etag: W/\"abc\"\r\n"
    "x-ratelimit-limit: 5000\r\nx-ratelimit-remaining: 4987\r\n"
    "x-ratelimit-used: 13\r\nx-ratelimit-reset: 1700000000\r\n"
    "x-ratelimit-resource: core\r\n"
    "link: <https://api.github.com/repositories/1/issues?page=2>; rel=\"next\", "
    "<https://api.github.com/repositories/1/issues?page=5>; rel=\"last\"\r\n\r\n")
put("fuzz_headers", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\n"
    "Retry-After: 60\r\nX-RateLimit-Remaining: 0\r\n"
    "Link: <https://x/?page=1>; rel=\"prev first\"\r\nLink: <https://x/?page=3>; rel=next\r\n\r\n")
put("fuzz_headers", "link: <a>;rel=\"next\"")

# --- fuzz_listener: a mode byte (bit 0: the client reads lazily), then raw request bytes
# on one connection.
def listener(data, lazy=False):
    if isinstance(data, str):
        data = data.encode()
    put("fuzz_listener", (b"\x01" if lazy else b"\x00") + data)


listener("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
listener("GET /healthz HTTP/1.0\r\n\r\n")
listener("HEAD /status?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n"
         "Connection: close\r\n\r\n")
listener("DELETE /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
listener("POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
         "X-GitHub-Event: ping\r\nX-Hub-Signature-256: sha256=fuzz\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")
# Pipelining with answers read late: the listener pauses and resumes its parser.
listener("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 64, lazy=True)
listener(("GET /metrics HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n" * 16)
         + "GET /status HTTP/1.1\r\nConnection: close\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
         lazy=True)
listener("GET /metrics HTTP/1.1\r\n\r\n" * 8 + "POST /webhook HTTP/1.1\r\nContent-Length: 2\r\n"
         "X-GitHub-Event: ping\r\nX-Hub-Signature-256: sha256=fuzz\r\n\r\n{}"
         + "GET /metrics HTTP/1.1\r\n\r\n" * 8 + "GET /metr", lazy=True)
for fx in fixtures:
    if "webhook" not in os.path.basename(fx):
        continue
    body = read(fx)
    req = ("POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "X-GitHub-Event: workflow_job\r\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n"
           "X-Hub-Signature-256: sha256=fuzz\r\nExpect: 100-continue\r\n"
           "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
    listener(req + req)  # the second is a duplicate delivery
    listener(b"GET /metrics HTTP/1.1\r\n\r\n" * 4 + req, lazy=True)
