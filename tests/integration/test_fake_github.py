#!/usr/bin/env python3
"""Tests of the fake GitHub server itself (tests/fake_github/fake_github.py).

Standard library only; needs the `openssl` CLI for the JWT test.
Run: python3 tests/integration/test_fake_github.py  (exits non-zero on failure)
"""

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

SRC = os.environ.get("RUNNERD_SRC") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FAKE = os.path.join(SRC, "tests", "fake_github", "fake_github.py")
TOKEN = "test-token-123"
APP_ID = 4242
UA = {"User-Agent": "runnerd-test"}
AUTH = dict(UA, Authorization="Bearer " + TOKEN)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Fake:
    """A running fake_github.py process."""

    def __init__(self, tmp, extra=()):
        self.port_file = os.path.join(tmp, "port.%d" % id(self))
        args = [sys.executable, FAKE, "--port", "0", "--port-file", self.port_file,
                "--token", TOKEN] + list(extra)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("fake_github did not start")
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())
        self.base = "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def req(self, method, path, body=None, headers=None, timeout=10, conn=None):
        """Return (status, headers-dict-lowercase, raw body bytes)."""
        c = conn or self.conn(timeout)
        h = dict(AUTH if headers is None else headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if path.startswith("http://"):
            path = path[len(self.base):]
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
        finally:
            if conn is None:
                c.close()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, hdrs, raw

    def get(self, path, **kw):
        st, h, raw = self.req("GET", path, **kw)
        return st, h, (json.loads(raw) if raw else None)

    def ctl(self, method, path, body=None):
        st, h, raw = self.req(method, "/_control/" + path, body=body, headers={})
        if st != 200:
            raise AssertionError("control %s %s -> %d %s" % (method, path, st, raw))
        return json.loads(raw)


def parse_link(value):
    out = []
    for part in value.split(", "):
        m = re.match(r'^<([^>]+)>; rel="(\w+)"$', part)
        assert m, part
        out.append((m.group(2), m.group(1)))
    return out


def decode_jit(enc):
    files = json.loads(base64.b64decode(enc))
    return {k: json.loads(base64.b64decode(v)) for k, v in files.items()}


class FakeGitHubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fakegh-test-")
        cls.key = os.path.join(cls.tmp, "app.pem")
        cls.pub = os.path.join(cls.tmp, "app.pub.pem")
        cls.key2 = os.path.join(cls.tmp, "other.pem")
        for k in (cls.key, cls.key2):
            subprocess.run(["openssl", "genrsa", "-out", k, "2048"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["openssl", "rsa", "-in", cls.key, "-pubout", "-out", cls.pub],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.fake = Fake(cls.tmp, ["--app-id", str(APP_ID), "--app-public-key", cls.pub])

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.f = self.fake
        self.f.ctl("POST", "reset")

    # -- helpers ------------------------------------------------------------
    def jwt(self, key=None, iat=None, exp=None, iss=APP_ID, alg="RS256"):
        now = int(time.time())
        iat = now - 60 if iat is None else iat
        exp = now + 540 if exp is None else exp
        head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        claims = b64url(json.dumps({"iat": iat, "exp": exp, "iss": iss}).encode())
        signing = (head + "." + claims).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key or self.key],
                             input=signing, stdout=subprocess.PIPE, check=True).stdout
        return head + "." + claims + "." + b64url(sig)

    def jit(self, scope, name, labels=("self-hosted", "linux", "x64"), gid=1):
        st, h, raw = self.f.req("POST", "/%s/actions/runners/generate-jitconfig" %
                                ("repos/" + scope if "/" in scope else "orgs/" + scope),
                                body={"name": name, "runner_group_id": gid,
                                      "labels": list(labels)})
        return st, json.loads(raw)

    def runner_call(self, cfg, action, **params):
        r = cfg[".runner"]
        q = {"id": r["agentId"], "token": cfg[".credentials"]["data"]["token"]}
        q.update(params)
        url = "%s/%s?%s" % (r["serverUrl"], action, urllib.parse.urlencode(q))
        req = urllib.request.Request(url, data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    # -- tests ----------------------------------------------------------------
    def test_auth_and_user_agent(self):
        self.f.ctl("POST", "repos", {"owner": "o", "names": ["r"]})
        st, h, raw = self.f.req("GET", "/repos/o/r/actions/runs",
                                headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(st, 403)
        self.assertIn(b"User-Agent", raw)
        st, _, body = self.f.get("/repos/o/r/actions/runs",
                                 headers=dict(UA, Authorization="Bearer wrong"))
        self.assertEqual(st, 401)
        self.assertEqual(body["message"], "Bad credentials")
        st, _, _ = self.f.get("/repos/o/r/actions/runs", headers=dict(UA))
        self.assertEqual(st, 401)
        for scheme in ("Bearer", "token"):
            st, _, body = self.f.get("/repos/o/r/actions/runs",
                                     headers=dict(UA, Authorization=scheme + " " + TOKEN))
            self.assertEqual(st, 200, scheme)
            self.assertEqual(body, {"total_count": 0, "workflow_runs": []})
        st, _, body = self.f.get("/repos/o/nope/actions/runs")
        self.assertEqual((st, body["message"]), (404, "Not Found"))

    def test_pagination_and_link(self):
        names = ["repo%03d" % i for i in range(75)]
        self.f.ctl("POST", "repos", {"owner": "big", "names": names, "org": True,
                                     "archived": ["repo005"]})
        # default per_page 30, first page: next, last
        st, h, body = self.f.get("/orgs/big/repos")
        self.assertEqual(st, 200)
        self.assertIsInstance(body, list)
        self.assertEqual(len(body), 30)
        rels = parse_link(h["link"])
        self.assertEqual([r for r, _ in rels], ["next", "last"])
        # cap 100: one page, no Link
        st, h, body = self.f.get("/orgs/big/repos?per_page=500")
        self.assertEqual(len(body), 75)
        self.assertNotIn("link", h)
        self.assertTrue([r for r in body if r["name"] == "repo005"][0]["archived"])
        self.assertFalse([r for r in body if r["name"] == "repo006"][0]["archived"])
        # follow next verbatim with per_page=20: 4 pages
        url = "/orgs/big/repos?per_page=20"
        seen, orders = [], []
        while url:
            st, h, body = self.f.get(url)
            self.assertEqual(st, 200)
            seen += [r["full_name"] for r in body]
            rels = parse_link(h["link"])
            orders.append([r for r, _ in rels])
            nxt = dict(rels).get("next")
            if nxt:
                self.assertTrue(nxt.startswith(self.f.base + "/organizations/"), nxt)
                self.assertNotEqual(nxt, self.f.base + url)
                self.assertIn("per_page=20", nxt)
            url = nxt
        self.assertEqual(seen, ["big/" + n for n in names])
        self.assertEqual(orders, [["next", "last"], ["prev", "next", "last", "first"],
                                  ["prev", "next", "last", "first"], ["prev", "first"]])
        # runs: Link goes to /repositories/{id}/actions/runs and is served
        self.f.ctl("POST", "repos", {"owner": "u", "names": ["r"]})
        for _ in range(3):
            self.f.ctl("POST", "jobs", {"repo": "u/r", "labels": ["self-hosted"]})
        st, h, body = self.f.get("/repos/u/r/actions/runs?status=queued&per_page=2")
        self.assertEqual((body["total_count"], len(body["workflow_runs"])), (3, 2))
        nxt = dict(parse_link(h["link"]))["next"]
        self.assertRegex(nxt, r"^http://127\.0\.0\.1:\d+/repositories/\d+/actions/runs\?"
                              r"status=queued&per_page=2&page=2$")
        st, h, body2 = self.f.get(nxt)
        self.assertEqual(st, 200)
        self.assertEqual(len(body2["workflow_runs"]), 1)
        ids = [r["id"] for r in body["workflow_runs"] + body2["workflow_runs"]]
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual([r for r, _ in parse_link(h["link"])], ["prev", "first"])

    def test_etag_and_304(self):
        self.f.ctl("POST", "repos", {"owner": "o", "names": ["r"]})
        self.f.ctl("POST", "jobs", {"repo": "o/r", "labels": ["self-hosted"]})
        st, h, _ = self.f.get("/repos/o/r/actions/runs?status=queued")
        etag = h["etag"]
        self.assertRegex(etag, r'^"[0-9a-f]{64}"$')
        rem = int(h["x-ratelimit-remaining"])
        used0 = self.f.ctl("GET", "stats")["core_used"]
        for _ in range(3):
            st, h2, raw = self.f.req("GET", "/repos/o/r/actions/runs?status=queued",
                                     headers=dict(AUTH, **{"If-None-Match": etag}))
            self.assertEqual(st, 304)
            self.assertEqual(raw, b"")
            self.assertEqual(h2["etag"], etag)
            self.assertEqual(int(h2["x-ratelimit-remaining"]), rem)
        stats = self.f.ctl("GET", "stats")
        self.assertEqual(stats["conditional_hits"], 3)
        self.assertEqual(stats["core_used"], used0)
        self.assertEqual(stats["by_status"].get("304"), 3)
        # a change makes the old ETag stale
        self.f.ctl("POST", "jobs", {"repo": "o/r", "labels": ["self-hosted"]})
        st, h3, body = self.f.get("/repos/o/r/actions/runs?status=queued",
                                  headers=dict(AUTH, **{"If-None-Match": etag}))
        self.assertEqual(st, 200)
        self.assertNotEqual(h3["etag"], etag)
        self.assertEqual(int(h3["x-ratelimit-remaining"]), rem - 1)
        # ETags on single gets too
        jid = self.f.ctl("GET", "state")["jobs"][0]["id"]
        st, h4, _ = self.f.get("/repos/o/r/actions/jobs/%d" % jid)
        self.assertEqual(st, 200)
        st, _, _ = self.f.get("/repos/o/r/actions/jobs/%d" % jid,
                              headers=dict(AUTH, **{"If-None-Match": h4["etag"]}))
        self.assertEqual(st, 304)

    def test_in_progress_run_with_queued_jobs_and_waiting(self):
        self.f.ctl("POST", "repos", {"owner": "o", "names": ["r"]})
        out = self.f.ctl("POST", "jobs", {"repo": "o/r", "labels": ["self-hosted", "linux"],
                                          "count": 2, "run_status": "in_progress"})
        wait = self.f.ctl("POST", "jobs", {"repo": "o/r", "labels": ["self-hosted"],
                                           "status": "waiting"})
        _, _, q = self.f.get("/repos/o/r/actions/runs?status=queued")
        self.assertEqual(q["total_count"], 0)
        _, _, ip = self.f.get("/repos/o/r/actions/runs?status=in_progress")
        self.assertEqual([r["id"] for r in ip["workflow_runs"]], [out["run_id"]])
        run = ip["workflow_runs"][0]
        self.assertEqual(run["repository"]["full_name"], "o/r")
        self.assertTrue(run["jobs_url"].endswith("/repos/o/r/actions/runs/%d/jobs" % run["id"]))
        _, _, jobs = self.f.get("/repos/o/r/actions/runs/%d/jobs?filter=latest" % out["run_id"])
        self.assertEqual(jobs["total_count"], 2)
        for j in jobs["jobs"]:
            self.assertEqual(j["status"], "queued")
            self.assertIsNone(j["runner_id"])
            self.assertIsNone(j["conclusion"])
            self.assertEqual(j["labels"], ["self-hosted", "linux"])
            self.assertRegex(j["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual(j["run_id"], out["run_id"])
        st, _, j = self.f.get("/repos/o/r/actions/jobs/%d" % wait["job_ids"][0])
        self.assertEqual((st, j["status"]), (200, "waiting"))
        _, _, all_runs = self.f.get("/repos/o/r/actions/runs")
        self.assertEqual(all_runs["total_count"], 2)
        # approving the waiting job makes its run queued
        self.f.ctl("POST", "jobs/%d" % wait["job_ids"][0], {"status": "queued"})
        _, _, q = self.f.get("/repos/o/r/actions/runs?status=queued")
        self.assertEqual([r["id"] for r in q["workflow_runs"]], [wait["run_id"]])
        # cancelling
        self.f.ctl("POST", "jobs/%d" % wait["job_ids"][0], {"status": "cancelled"})
        _, _, j = self.f.get("/repos/o/r/actions/jobs/%d" % wait["job_ids"][0])
        self.assertEqual((j["status"], j["conclusion"]), ("completed", "cancelled"))
        _, _, c = self.f.get("/repos/o/r/actions/runs?status=cancelled")
        self.assertEqual(c["total_count"], 1)

    def test_jit_config(self):
        self.f.ctl("POST", "repos", {"owner": "o", "names": ["r"], "org": True})
        st, body = self.jit("o/r", "run-1", labels=("self-hosted", "X64", "gpu"))
        self.assertEqual(st, 201)
        rn = body["runner"]
        self.assertEqual((rn["os"], rn["status"], rn["busy"], rn["name"]),
                         ("unknown", "offline", False, "run-1"))
        self.assertEqual([(x["name"], x["type"]) for x in rn["labels"]],
                         [("self-hosted", "read-only"), ("X64", "read-only"), ("gpu", "custom")])
        cfg = decode_jit(body["encoded_jit_config"])
        self.assertEqual(set(cfg), {".runner", ".credentials", ".credentials_rsaparams"})
        r = cfg[".runner"]
        self.assertEqual(r["agentId"], rn["id"])
        self.assertEqual(r["agentName"], "run-1")
        self.assertEqual(r["workFolder"], "_work")
        self.assertEqual(r["gitHubUrl"], self.f.base + "/o/r")
        self.assertEqual(r["serverUrl"], self.f.base + "/_fake/runner")
        self.assertEqual(cfg[".credentials"]["scheme"], "OAuthAccessToken")
        self.assertTrue(cfg[".credentials"]["data"]["token"])
        st, body = self.jit("o/r", "run-1")
        self.assertEqual(st, 409)
        self.assertEqual(body["message"],
                         "Already exists - A runner with the name run-1 already exists.")
        st, body = self.jit("o/r", "run-2", labels=())
        self.assertEqual(st, 422)
        st, body = self.jit("o/r", "run-3", labels=["l%d" % i for i in range(101)])
        self.assertEqual(st, 422)
        st, body = self.jit("o/r", "run-4", labels=["l%d" % i for i in range(100)])
        self.assertEqual(st, 201)
        # org level: Default group and configured groups
        st, body = self.jit("o", "org-1")
        self.assertEqual(st, 201)
        self.assertEqual(decode_jit(body["encoded_jit_config"])[".runner"]["gitHubUrl"],
                         self.f.base + "/o")
        st, body = self.jit("o", "org-2", gid=7)
        self.assertEqual(st, 404)
        self.f.ctl("POST", "runner_groups", {"org": "o", "groups": [{"id": 7, "name": "big"}]})
        _, _, groups = self.f.get("/orgs/o/actions/runner-groups")
        self.assertEqual([(g["id"], g["name"], g["default"]) for g in groups["runner_groups"]],
                         [(1, "Default", True), (7, "big", False)])
        st, body = self.jit("o", "org-2", gid=7)
        self.assertEqual(st, 201)
        self.assertEqual(body["runner"]["runner_group_id"], 7)
        # listing with the name filter; org list does not show repo runners
        _, _, lst = self.f.get("/repos/o/r/actions/runners?name=run-1")
        self.assertEqual([x["name"] for x in lst["runners"]], ["run-1"])
        _, _, lst = self.f.get("/orgs/o/actions/runners")
        self.assertEqual(sorted(x["name"] for x in lst["runners"]), ["org-1", "org-2"])
        self.assertEqual(self.f.ctl("GET", "stats")["jit_created"], 4)
        # registration and remove tokens
        for kind in ("registration-token", "remove-token"):
            st, _, raw = self.f.req("POST", "/repos/o/r/actions/runners/" + kind)
            self.assertEqual(st, 201)
            tb = json.loads(raw)
            self.assertTrue(tb["token"])
            self.assertRegex(tb["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")

    def test_delete_runner(self):
        self.f.ctl("POST", "repos", {"owner": "o", "names": ["r"]})
        self.f.ctl("POST", "jobs", {"repo": "o/r", "labels": ["self-hosted", "linux", "x64"]})
        st, busy = self.jit("o/r", "busy")
        st, idle = self.jit("o/r", "idle")
        cfg = decode_jit(busy["encoded_jit_config"])
        self.assertEqual(self.runner_call(cfg, "session", arch="x86_64"), (200, "ok"))
        st, txt = self.runner_call(cfg, "acquire")
        self.assertEqual(st, 200)
        path = "/repos/o/r/actions/runners/%d"
        st, _, raw = self.f.req("DELETE", path % busy["runner"]["id"])
        self.assertEqual(st, 422)
        self.assertEqual(json.loads(raw)["message"],
                         'Bad request - Runner "busy" is still running a job')
        st, _, raw = self.f.req("DELETE", path % idle["runner"]["id"])
        self.assertEqual((st, raw), (204, b""))
        st, _, raw = self.f.req("DELETE", path % idle["runner"]["id"])
        self.assertEqual(st, 404)
        st, _, _ = self.f.get(path % idle["runner"]["id"])
        self.assertEqual(st, 404)
        st, _, r = self.f.get(path % busy["runner"]["id"])
        self.assertEqual((st, r["status"], r["busy"]), (200, "online", True))
        self.assertEqual(self.f.ctl("GET", "stats")["runner_deletes"], 1)
        # the deleted registration cannot open a session
        icfg = decode_jit(idle["encoded_jit_config"])
        self.assertEqual(self.runner_call(icfg, "session")[0], 404)

    def test_runner_protocol_end_to_end(self):
        self.f.ctl("POST", "repos", {"owner": "org", "names": ["a", "b"], "org": True})
        j1 = self.f.ctl("POST", "jobs", {"repo": "org/a", "labels": ["self-hosted", "linux", "x64"],
                                         "duration_ms": 123})
        j2 = self.f.ctl("POST", "jobs", {"repo": "org/b", "labels": ["self-hosted", "ARM64"]})
        st, x64 = self.jit("org/a", "x64-1", labels=("self-hosted", "Linux", "amd64"))
        st, arm = self.jit("org", "arm-1", labels=("self-hosted", "linux", "aarch64"))
        cx, ca = decode_jit(x64["encoded_jit_config"]), decode_jit(arm["encoded_jit_config"])
        # wrong token, no session yet
        bad = json.loads(json.dumps(cx))
        bad[".credentials"]["data"]["token"] = "nope"
        self.assertEqual(self.runner_call(bad, "session")[0], 401)
        self.assertEqual(self.runner_call(cx, "session", arch="x86_64"), (200, "ok"))
        self.assertEqual(self.runner_call(ca, "session", arch="aarch64"), (200, "ok"))
        _, _, r = self.f.get("/repos/org/a/actions/runners/%d" % x64["runner"]["id"])
        self.assertEqual((r["status"], r["busy"]), ("online", False))
        st, txt = self.runner_call(cx, "acquire")
        self.assertEqual((st, txt), (200, "%d 123" % j1["job_ids"][0]))
        st, txt = self.runner_call(ca, "acquire")
        self.assertEqual(st, 200)
        self.assertEqual(int(txt.split()[0]), j2["job_ids"][0])
        _, _, job = self.f.get("/repos/org/a/actions/jobs/%d" % j1["job_ids"][0])
        self.assertEqual((job["status"], job["runner_name"], job["runner_id"]),
                         ("in_progress", "x64-1", x64["runner"]["id"]))
        _, _, ip = self.f.get("/repos/org/a/actions/runs?status=in_progress")
        self.assertEqual(ip["total_count"], 1)
        _, _, r = self.f.get("/repos/org/a/actions/runners/%d" % x64["runner"]["id"])
        self.assertTrue(r["busy"])
        # nothing else to take: a third runner gets 204
        st, other = self.jit("org/a", "x64-2")
        co = decode_jit(other["encoded_jit_config"])
        self.runner_call(co, "session", arch="x86_64")
        self.assertEqual(self.runner_call(co, "acquire"), (204, ""))
        # complete
        self.assertEqual(self.runner_call(cx, "complete", job=j1["job_ids"][0],
                                          conclusion="success"), (200, "ok"))
        _, _, job = self.f.get("/repos/org/a/actions/jobs/%d" % j1["job_ids"][0])
        self.assertEqual((job["status"], job["conclusion"]), ("completed", "success"))
        self.assertIsNotNone(job["completed_at"])
        _, _, done = self.f.get("/repos/org/a/actions/runs?status=success")
        self.assertEqual(done["total_count"], 1)
        st, _, _ = self.f.get("/repos/org/a/actions/runners/%d" % x64["runner"]["id"])
        self.assertEqual(st, 404)
        self.assertEqual(self.runner_call(cx, "acquire")[0], 404)
        # cancelled while running: complete still 200
        self.f.ctl("POST", "jobs/%d" % j2["job_ids"][0], {"status": "cancelled"})
        self.assertEqual(self.runner_call(ca, "complete", job=j2["job_ids"][0],
                                          conclusion="success")[0], 200)
        state = self.f.ctl("GET", "state")
        jobs = {j["id"]: j for j in state["jobs"]}
        self.assertEqual(jobs[j2["job_ids"][0]]["conclusion"], "cancelled")
        self.assertEqual(jobs[j2["job_ids"][0]]["runner_arch"], "aarch64")
        self.assertEqual(jobs[j1["job_ids"][0]]["runner_arch"], "x86_64")
        started = [e for e in state["events"] if e["kind"] == "job_started"]
        self.assertEqual(sorted(e["job"] for e in started), sorted(jobs))
        kinds = [e["kind"] for e in state["events"] if e["runner"] == "x64-1"]
        self.assertEqual(kinds, ["jit_created", "runner_online", "job_started",
                                 "job_completed", "runner_deleted"])
        self.assertEqual([r["name"] for r in state["runners"]], ["x64-2"])

    def test_faults(self):
        self.f.ctl("POST", "repos", {"owner": "o", "names": ["r"]})
        p = "/repos/o/r/actions/runs"

        def fault(**kw):
            kw.setdefault("path", "^/repos/o/r/actions/runs$")
            kw.setdefault("count", 1)
            self.f.ctl("POST", "faults", kw)

        fault(kind="500")
        self.assertEqual(self.f.get(p)[0], 500)
        self.assertEqual(self.f.get(p)[0], 200)  # count 1 used up
        # method filter
        fault(kind="500", method="POST")
        self.assertEqual(self.f.get(p)[0], 200)
        self.f.ctl("DELETE", "faults")
        # malformed
        fault(kind="malformed")
        st, h, raw = self.f.req("GET", p)
        self.assertEqual(st, 200)
        self.assertRaises(ValueError, json.loads, raw)
        # huge: 50 MiB with Content-Length
        fault(kind="huge")
        c = self.f.conn(30)
        c.request("GET", p, headers=AUTH)
        r = c.getresponse()
        self.assertEqual(int(r.getheader("Content-Length")), 50 * 1024 * 1024)
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        self.assertEqual(n, 50 * 1024 * 1024)
        c.close()
        # slow
        fault(kind="slow", delay_ms=400)
        t0 = time.time()
        self.assertEqual(self.f.get(p)[0], 200)
        self.assertGreaterEqual(time.time() - t0, 0.39)
        # reset: connection closed without a response
        fault(kind="reset")
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected,
                                http.client.BadStatusLine)):
            self.f.get(p)
        # hang: the client gives up
        fault(kind="hang")
        t0 = time.time()
        with self.assertRaises(socket.timeout):
            self.f.get(p, timeout=0.7)
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(self.f.get(p)[0], 200)
        # primary limits
        for kind, code in (("primary403", 403), ("primary429", 429)):
            fault(kind=kind)
            st, h, body = self.f.get(p)
            self.assertEqual(st, code)
            self.assertEqual(h["x-ratelimit-remaining"], "0")
            self.assertTrue(time.time() < int(h["x-ratelimit-reset"]) <= time.time() + 3)
            self.assertEqual(body["message"], "API rate limit exceeded for user ID 1.")
        # secondary limits, with and without Retry-After
        fault(kind="primary403", reset=1234567890, retry_after=3)
        st, h, body = self.f.get(p)
        self.assertEqual((h["x-ratelimit-reset"], h["retry-after"]), ("1234567890", "3"))
        self.assertEqual(self.f.get(p)[0], 200)
        fault(kind="secondary403", retry_after=7)
        st, h, body = self.f.get(p)
        self.assertEqual((st, h.get("retry-after")), (403, "7"))
        self.assertTrue(body["message"].startswith("You have exceeded a secondary rate limit"))
        self.assertTrue(body["documentation_url"].endswith("#secondary-rate-limits"))
        self.assertNotEqual(h["x-ratelimit-remaining"], "0")
        fault(kind="secondary429")
        st, h, body = self.f.get(p)
        self.assertEqual(st, 429)
        self.assertNotIn("retry-after", h)
        self.assertEqual(body["message"], "You have exceeded a secondary rate limit. "
                         "Please wait a few minutes before you try again.")
        fault(kind="401")
        st, h, body = self.f.get(p)
        self.assertEqual((st, body["message"]), (401, "Bad credentials"))
        # count -1 until cleared; a catch-all API fault does not touch the runner protocol
        fault(kind="500", path=".*", count=-1)
        for _ in range(3):
            self.assertEqual(self.f.get(p)[0], 500)
        st, body = self.jit("o/r", "x")
        self.assertEqual(st, 500)
        self.f.ctl("DELETE", "faults")
        self.assertEqual(self.f.get(p)[0], 200)
        # faults that name /_fake apply to the runner protocol
        st, rb = self.jit("o/r", "rn")
        cfg = decode_jit(rb["encoded_jit_config"])
        fault(kind="500", path="^/_fake/runner/session$")
        self.assertEqual(self.runner_call(cfg, "session")[0], 500)
        self.assertEqual(self.runner_call(cfg, "session")[0], 200)

    def test_rate_limit(self):
        self.f.ctl("POST", "repos", {"owner": "o", "names": ["r"]})
        p = "/repos/o/r/actions/runs"
        names = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used",
                 "x-ratelimit-reset", "x-ratelimit-resource"]
        for path, hdr in ((p, AUTH), ("/repos/o/none/actions/runs", AUTH),
                          (p, dict(UA, Authorization="token bad")), ("/rate_limit", AUTH)):
            st, h, _ = self.f.req("GET", path, headers=hdr)
            for n in names:
                self.assertIn(n, h, (path, st))
        _, h, _ = self.f.get(p)
        rem = int(h["x-ratelimit-remaining"])
        self.assertEqual(int(h["x-ratelimit-used"]) + rem, int(h["x-ratelimit-limit"]))
        _, h, _ = self.f.get(p)
        self.assertEqual(int(h["x-ratelimit-remaining"]), rem - 1)
        for _ in range(2):
            st, h, body = self.f.get("/rate_limit")
            self.assertEqual(st, 200)
            self.assertEqual(body["resources"]["core"]["remaining"], rem - 1)
            self.assertEqual(body["rate"]["remaining"], rem - 1)
        # exhaust via control: primary errors until reset, then served again
        reset = int(time.time()) + 2
        self.f.ctl("POST", "ratelimit", {"limit": 5000, "remaining": 0, "reset": reset})
        st, h, body = self.f.get(p)
        self.assertEqual(st, 403)
        self.assertEqual(h["x-ratelimit-remaining"], "0")
        self.assertEqual(h["x-ratelimit-reset"], str(reset))
        self.assertEqual(body["message"], "API rate limit exceeded for user ID 1.")
        self.assertEqual(self.f.get("/rate_limit")[0], 200)
        time.sleep(max(0, reset - time.time()) + 0.2)
        st, h, _ = self.f.get(p)
        self.assertEqual(st, 200)
        self.assertEqual(h["x-ratelimit-remaining"], "4999")
        # remaining 1: one more call, then limited
        self.f.ctl("POST", "ratelimit", {"remaining": 1, "reset": int(time.time()) + 60,
                                         "status": 429})
        self.assertEqual(self.f.get(p)[0], 200)
        self.assertEqual(self.f.get(p)[0], 429)

    def test_jwt_app_endpoints(self):
        self.f.ctl("POST", "repos", {"owner": "acme", "names": ["a", "b"], "org": True})
        self.f.ctl("POST", "repos", {"owner": "solo", "names": ["c"]})
        good = {"Authorization": "Bearer " + self.jwt(), "User-Agent": "t"}
        st, _, inst = self.f.get("/app/installations", headers=good)
        self.assertEqual(st, 200)
        self.assertIsInstance(inst, list)
        self.assertEqual([(i["account"]["login"], i["target_type"]) for i in inst],
                         [("acme", "Organization"), ("solo", "User")])
        st, _, i1 = self.f.get("/repos/acme/a/installation", headers=good)
        self.assertEqual((st, i1["id"]), (200, inst[0]["id"]))
        st, _, i2 = self.f.get("/orgs/acme/installation", headers=good)
        self.assertEqual((st, i2["id"]), (200, inst[0]["id"]))
        self.assertEqual(self.f.get("/orgs/solo/installation", headers=good)[0], 404)
        # bad JWTs
        bads = {
            "other key": self.jwt(key=self.key2),
            "exp-iat > 600": self.jwt(iat=int(time.time()) - 30, exp=int(time.time()) + 600),
            "expired": self.jwt(iat=int(time.time()) - 700, exp=int(time.time()) - 100),
            "wrong iss": self.jwt(iss=1),
            "PAT": TOKEN,
        }
        for what, tok in bads.items():
            st, _, body = self.f.get("/app/installations",
                                     headers={"Authorization": "Bearer " + tok, "User-Agent": "t"})
            self.assertEqual(st, 401, what)
        st, _, _ = self.f.get("/app/installations",
                              headers={"Authorization": "token " + self.jwt(), "User-Agent": "t"})
        self.assertEqual(st, 401, "JWT needs Bearer")
        # installation token
        st, _, raw = self.f.req("POST", "/app/installations/%d/access_tokens" % inst[0]["id"],
                                headers=good)
        self.assertEqual(st, 201)
        tok = json.loads(raw)
        self.assertTrue(tok["token"].startswith("ghs_"))
        self.assertRegex(tok["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        ih = {"Authorization": "token " + tok["token"], "User-Agent": "t"}
        st, h, body = self.f.get("/installation/repositories", headers=ih)
        self.assertEqual(st, 200)
        self.assertEqual(sorted(r["full_name"] for r in body["repositories"]),
                         ["acme/a", "acme/b"])
        self.assertEqual(body["total_count"], 2)
        self.assertEqual(self.f.get("/repos/acme/a/actions/runs", headers=ih)[0], 200)
        self.assertEqual(self.f.get("/repos/solo/c/actions/runs", headers=ih)[0], 404)
        self.assertEqual(self.f.get("/app/installations", headers=ih)[0], 401)
        self.assertEqual(self.f.req("POST", "/app/installations/999/access_tokens",
                                    headers=good)[0], 404)
        # expiry
        self.f.ctl("POST", "token_ttl", {"seconds": 1})
        st, _, raw = self.f.req("POST", "/app/installations/%d/access_tokens" % inst[0]["id"],
                                headers=good)
        short = {"Authorization": "Bearer " + json.loads(raw)["token"], "User-Agent": "t"}
        self.assertEqual(self.f.get("/installation/repositories", headers=short)[0], 200)
        time.sleep(1.2)
        st, _, body = self.f.get("/installation/repositories", headers=short)
        self.assertEqual((st, body["message"]), (401, "Bad credentials"))

    def test_app_key_given_as_private_pem_text(self):
        with open(self.key) as f:
            pem = f.read()
        other = Fake(self.tmp, ["--app-id", str(APP_ID), "--app-public-key", pem])
        try:
            other.ctl("POST", "repos", {"owner": "acme", "names": ["a"], "org": True})
            ok = {"Authorization": "Bearer " + self.jwt(), "User-Agent": "t"}
            self.assertEqual(other.get("/orgs/acme/installation", headers=ok)[0], 200)
            bad = {"Authorization": "Bearer " + self.jwt(key=self.key2), "User-Agent": "t"}
            self.assertEqual(other.get("/orgs/acme/installation", headers=bad)[0], 401)
        finally:
            other.stop()

    def test_stats_and_concurrency(self):
        self.f.ctl("POST", "repos", {"owner": "o", "names": ["r"]})
        self.f.ctl("POST", "stats/reset")
        self.f.get("/repos/o/r/actions/runs")
        self.f.get("/repos/o/r/actions/runs?status=queued")
        self.f.get("/repos/o/zz/actions/runs")
        self.f.get("/rate_limit")
        s = self.f.ctl("GET", "stats")
        self.assertEqual(s["requests_total"], 4)
        self.assertEqual(s["by_path"]["GET /repos/{o}/{r}/actions/runs"], 3)
        self.assertEqual(s["by_path"]["GET /rate_limit"], 1)
        self.assertEqual(s["by_status"], {"200": 3, "404": 1})
        self.assertEqual(s["core_used"], 3)
        # 6 concurrent slow requests on 6 connections
        self.f.ctl("POST", "faults", {"path": "runs", "kind": "slow", "delay_ms": 1500,
                                      "count": 6})
        self.f.ctl("POST", "stats/reset")
        ths = [threading.Thread(target=self.f.get, args=("/repos/o/r/actions/runs",))
               for _ in range(6)]
        for t in ths:
            t.start()
        time.sleep(0.6)
        mid = self.f.ctl("GET", "stats")
        for t in ths:
            t.join()
        self.assertGreaterEqual(mid["current_connections"], 7)  # 6 + the stats request
        s = self.f.ctl("GET", "stats")
        self.assertGreaterEqual(s["max_concurrent_connections"], 7)
        self.assertEqual(s["requests_total"], 6)
        # keep-alive: many requests on one connection
        c = self.f.conn()
        for _ in range(20):
            st, h, _ = self.f.req("GET", "/repos/o/r/actions/runs", conn=c)
            self.assertEqual(st, 200)
        c.close()

    def test_discovery_cycle_1000_repos(self):
        self.f.ctl("POST", "repos", {"owner": "big", "org": True,
                                     "names": ["r%04d" % i for i in range(1000)]})
        for i in range(0, 1000, 50):
            self.f.ctl("POST", "jobs", {"repo": "big/r%04d" % i, "labels": ["self-hosted"]})
        t0 = time.time()
        repos = []
        c = self.f.conn()
        url = "/orgs/big/repos?per_page=100"
        while url:
            st, h, body = self.f.req("GET", url, conn=c)
            repos += [r["full_name"] for r in json.loads(body)]
            url = dict(parse_link(h["link"])).get("next") if "link" in h else None
        c.close()
        self.assertEqual(len(repos), 1000)
        found = []
        lock = threading.Lock()

        def worker(chunk):
            conn = self.f.conn()
            for full in chunk:
                for status in ("queued", "in_progress"):
                    st, _, raw = self.f.req(
                        "GET", "/repos/%s/actions/runs?status=%s&per_page=100" % (full, status),
                        conn=conn)
                    assert st == 200, st
                    n = json.loads(raw)["total_count"]
                    if n:
                        with lock:
                            found.append(full)
            conn.close()
        ths = [threading.Thread(target=worker, args=(repos[i::8],)) for i in range(8)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        dt = time.time() - t0
        sys.stderr.write("\n  discovery of 1000 repos (2010 requests): %.2f s\n" % dt)
        self.assertEqual(len(found), 20)
        self.assertLess(dt, 30.0)

    def test_scenario_file(self):
        sc = os.path.join(self.tmp, "scenario.json")
        with open(sc, "w") as f:
            json.dump({"repos": [{"owner": "s", "names": ["x", "y"], "org": True}],
                       "jobs": [{"repo": "s/x", "labels": ["self-hosted"], "count": 2}]}, f)
        other = Fake(self.tmp, ["--scenario", sc, "--per-page-default", "1"])
        try:
            st, h, body = other.get("/orgs/s/repos")
            self.assertEqual((st, len(body)), (200, 1))
            self.assertIn("link", h)
            _, _, runs = other.get("/repos/s/x/actions/runs?status=queued")
            self.assertEqual(runs["total_count"], 1)
            _, _, jobs = other.get("/repos/s/x/actions/runs/%d/jobs?per_page=10"
                                   % runs["workflow_runs"][0]["id"])
            self.assertEqual(jobs["total_count"], 2)
        finally:
            other.stop()
        self.assertEqual(other.proc.returncode, 0)


if __name__ == "__main__":
    if not shutil.which("openssl"):
        print("FAIL: the openssl CLI is needed", file=sys.stderr)
        sys.exit(1)
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
