#!/usr/bin/env python3
"""Tests of the fake scale-set broker itself (tests/fake_broker/fake_broker.py).

Standard library only. Run: python3 tests/integration/test_fake_broker.py
"""

import base64
import shutil
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

SRC = os.environ.get("RUNNERD_SRC") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FAKE = os.path.join(SRC, "tests", "fake_broker", "fake_broker.py")
BOM = b"\xef\xbb\xbf"
LABELS = ["self-hosted", "linux", "x64"]


class Broker:
    """A running fake_broker.py process plus a tiny client."""

    def __init__(self, tmp, knobs=None):
        self.port_file = os.path.join(tmp, "port.%d" % id(self))
        args = [sys.executable, FAKE, "--port", "0", "--port-file", self.port_file]
        if knobs:
            args += ["--config", json.dumps(knobs)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("fake_broker did not start")
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.base = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def req(self, method, url, body=None, headers=None, raw=False):
        u = urllib.parse.urlsplit(url if url.startswith("http") else self.base + url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        path = u.path + ("?" + u.query if u.query else "")
        c.request(method, path, body=data, headers=headers or {})
        r = c.getresponse()
        payload = r.read()
        c.close()
        if raw:
            return r.status, payload, r
        if payload.startswith(BOM):
            payload = payload[3:]
        try:
            obj = json.loads(payload) if payload else None
        except ValueError:
            obj = payload.decode("latin-1")
        return r.status, obj

    def control(self, method, path, body=None):
        st, obj = self.req(method, "/_control/" + path, body)
        assert st == 200, (st, obj)
        return obj

    # -- protocol client --------------------------------------------------------
    def bootstrap(self, scope="orgs/acme"):
        st, tok = self.req("POST", "/%s/actions/runners/registration-token" % scope,
                           headers={"Authorization": "Bearer pat"})
        assert st == 201, (st, tok)
        url = self.base + "/" + scope.split("/", 1)[1]
        st, reg = self.req("POST", "/actions/runner-registration",
                           {"url": url, "runner_event": "register"},
                           {"Authorization": "RemoteAuth " + tok["token"],
                            "Content-Type": "application/json"})
        assert st == 201, (st, reg)
        self.svc, self.admin = reg["url"], reg["token"]
        return reg

    def api(self, method, rel, body=None, token=None):
        sep = "&" if "?" in rel else "?"
        return self.req(method, self.svc + rel + sep + "api-version=6.0-preview", body,
                        {"Authorization": "Bearer " + (token or self.admin),
                         "Content-Type": "application/json"})

    def create_set(self, name, labels=LABELS):
        st, ss = self.api("POST", "_apis/runtime/runnerscalesets",
                          {"name": name, "runnerGroupId": 1,
                           "labels": [{"name": x, "type": "System"} for x in labels],
                           "RunnerSetting": {"disableUpdate": True}})
        assert st == 200, (st, ss)
        return ss

    def session(self, sid, owner="host-a"):
        return self.api("POST", "_apis/runtime/runnerscalesets/%d/sessions" % sid,
                        {"ownerName": owner})

    def poll(self, sess, last=0, cap=4, raw=False):
        url = sess["messageQueueUrl"]
        if last:
            url += "&lastMessageId=%d" % last
        return self.req("GET", url, headers={
            "Authorization": "Bearer " + sess["messageQueueAccessToken"],
            "Accept": "application/json; api-version=6.0-preview",
            "X-ScaleSetMaxCapacity": str(cap)}, raw=raw)

    def delete_msg(self, sess, mid):
        u = urllib.parse.urlsplit(sess["messageQueueUrl"])
        url = "%s://%s%s/%d?%s" % (u.scheme, u.netloc, u.path, mid, u.query)
        return self.req("DELETE", url, headers={
            "Authorization": "Bearer " + sess["messageQueueAccessToken"]})


def inner(msg):
    assert isinstance(msg["body"], str), "body must be a JSON string (double-encoded)"
    return json.loads(msg["body"])


def runner_call(jit, action, **q):
    outer = json.loads(base64.b64decode(jit))
    rn = json.loads(base64.b64decode(outer[".runner"]))
    tok = json.loads(base64.b64decode(outer[".credentials"]))["data"]["token"]
    q.update(id=rn["agentId"], token=tok)
    u = urllib.parse.urlsplit(rn["serverUrl"])
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("POST", "%s/%s?%s" % (u.path, action, urllib.parse.urlencode(q)))
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


class FakeBrokerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rd-fleet-fb-")
        self.b = Broker(self.tmp, {"poll_timeout_ms": 500, "session_ttl_ms": 1500})

    def tearDown(self):
        self.b.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_bootstrap_and_scale_set_crud(self):
        b = self.b
        reg = b.bootstrap()
        self.assertTrue(reg["url"].endswith("/tenant/1/"))
        claims = json.loads(base64.urlsafe_b64decode(reg["token"].split(".")[1] + "=="))
        self.assertGreater(claims["exp"], time.time())
        # api-version is required; a wrong admin token is 401
        st, _ = b.req("GET", b.svc + "_apis/runtime/runnerscalesets",
                      headers={"Authorization": "Bearer " + b.admin})
        self.assertEqual(st, 400)
        st, _ = b.api("GET", "_apis/runtime/runnerscalesets", token="nope")
        self.assertEqual(st, 401)
        st, g = b.api("GET", "_apis/runtime/runnergroups/?groupName=Default")
        self.assertEqual((st, g["count"], g["value"][0]["id"]), (200, 1, 1))
        ss = b.create_set("runnerd-a-linux")
        self.assertIn("RunnerSetting", ss)
        self.assertEqual([x["name"] for x in ss["labels"]], LABELS)
        st, found = b.api("GET", "_apis/runtime/runnerscalesets?runnerGroupId=1&name=runnerd-a-linux")
        self.assertEqual((st, found["count"], found["value"][0]["id"]), (200, 1, ss["id"]))
        st, none = b.api("GET", "_apis/runtime/runnerscalesets?runnerGroupId=1&name=other")
        self.assertEqual(none["count"], 0)
        st, dup = b.api("POST", "_apis/runtime/runnerscalesets", {"name": "runnerd-a-linux"})
        self.assertEqual(st, 400)
        st, up = b.api("PATCH", "_apis/runtime/runnerscalesets/%d" % ss["id"],
                       {"labels": [{"name": "gpu"}]})
        self.assertEqual((st, [x["name"] for x in up["labels"]]), (200, ["gpu"]))
        st, _ = b.api("DELETE", "_apis/runtime/runnerscalesets/%d" % ss["id"])
        self.assertEqual(st, 204)
        st, err = b.api("GET", "_apis/runtime/runnerscalesets/%d" % ss["id"])
        self.assertEqual(st, 404)
        self.assertIn("RunnerScaleSetNotFoundException", err["typeName"])

    def test_sessions_conflict_refresh_delete(self):
        b = self.b
        b.bootstrap()
        ss = b.create_set("s1")
        st, sess = b.session(ss["id"])
        self.assertEqual(st, 200)
        for k in ("sessionId", "ownerName", "runnerScaleSet", "messageQueueUrl",
                  "messageQueueAccessToken", "statistics"):
            self.assertIn(k, sess)
        st, err = b.session(ss["id"], "host-b")
        self.assertEqual(st, 409)
        self.assertIn("RunnerScaleSetSessionConflictException", err["typeName"])
        st, new = b.api("PATCH", "_apis/runtime/runnerscalesets/%d/sessions/%s"
                        % (ss["id"], sess["sessionId"]))
        self.assertEqual(st, 200)
        self.assertNotEqual(new["messageQueueAccessToken"], sess["messageQueueAccessToken"])
        st, _ = b.poll(sess)
        self.assertEqual(st, 401, "the replaced mq token is refused")
        st, _ = b.poll(new)
        self.assertEqual(st, 202)
        st, _ = b.api("DELETE", "_apis/runtime/runnerscalesets/%d/sessions/%s"
                      % (ss["id"], sess["sessionId"]))
        self.assertEqual(st, 204)
        st, err = b.api("DELETE", "_apis/runtime/runnerscalesets/%d/sessions/%s"
                        % (ss["id"], sess["sessionId"]))
        self.assertEqual(st, 400)
        self.assertIn("SessionExpiredException", err["typeName"])
        st, err = b.api("PATCH", "_apis/runtime/runnerscalesets/%d/sessions/%s"
                        % (ss["id"], sess["sessionId"]))
        self.assertEqual(st, 404)

    def test_stale_session_409_until_expiry(self):
        b = self.b
        b.bootstrap()
        ss = b.create_set("s1")
        b.control("POST", "stale_session", {"scale_set": "s1"})
        st, _ = b.session(ss["id"])
        self.assertEqual(st, 409)
        time.sleep(2.0)
        st, _ = b.session(ss["id"])
        self.assertEqual(st, 200)

    def test_available_acquire_messages(self):
        b = self.b
        b.bootstrap()
        ss = b.create_set("s1")
        _, sess = b.session(ss["id"])
        t0 = time.time()
        st, _ = b.poll(sess)
        self.assertEqual(st, 202)
        self.assertGreater(time.time() - t0, 0.4, "long poll waits")
        ids = b.control("POST", "jobs", {"repo": "acme/api", "labels": LABELS, "count": 2})["ids"]
        st, msg = b.poll(sess, cap=4)
        self.assertEqual(st, 200)
        self.assertEqual(msg["messageType"], "RunnerScaleSetJobMessages")
        av = inner(msg)
        self.assertEqual(sorted(m["runnerRequestId"] for m in av), ids)
        self.assertEqual({m["messageType"] for m in av}, {"JobAvailable"})
        self.assertIsInstance(av[0]["jobId"], str)
        self.assertEqual(msg["statistics"]["totalAvailableJobs"], 2)
        # not deleted: handed out again from lastMessageId 0
        st, again = b.poll(sess)
        self.assertEqual(again["messageId"], msg["messageId"])
        st, _ = b.delete_msg(sess, msg["messageId"])
        self.assertEqual(st, 204)
        st, acq = b.api("POST", "_apis/runtime/runnerscalesets/%d/acquirejobs" % ss["id"],
                        [ids[0]], token=sess["messageQueueAccessToken"])
        self.assertEqual((st, acq), (200, {"count": 1, "value": [ids[0]]}))
        st, acq = b.api("POST", "_apis/runtime/runnerscalesets/%d/acquirejobs" % ss["id"],
                        [ids[0]])
        self.assertEqual(st, 401, "acquirejobs takes the message-queue token")
        st, msg2 = b.poll(sess, last=msg["messageId"])
        self.assertGreater(msg2["messageId"], msg["messageId"])
        kinds = [m["messageType"] for m in inner(msg2)]
        self.assertIn("JobAssigned", kinds)
        self.assertEqual(msg2["statistics"]["totalAssignedJobs"], 1)
        b.delete_msg(sess, msg2["messageId"])
        self.assertEqual(b.control("GET", "stats")["capacity_seen"]["s1"][-1], 4)

    def test_jit_runner_and_agents(self):
        b = self.b
        b.control("POST", "config", {"mode": "assign"})
        b.bootstrap()
        ss = b.create_set("s1")
        _, sess = b.session(ss["id"])
        st, _ = b.poll(sess, cap=1)  # capacity known: the job can be assigned
        st, jit = b.api("POST", "_apis/runtime/runnerscalesets/%d/generatejitconfig" % ss["id"],
                        {"name": "runnerd-a-linux-1", "workFolder": "_work"})
        self.assertEqual(st, 200)
        rid = jit["runner"]["id"]
        self.assertEqual(jit["runner"]["runnerScaleSetId"], ss["id"])
        st, err = b.api("POST", "_apis/runtime/runnerscalesets/%d/generatejitconfig" % ss["id"],
                        {"name": "runnerd-a-linux-1"})
        self.assertIn("AgentExistsException", err["typeName"])
        jid = b.control("POST", "jobs", {"repo": "acme/api", "labels": LABELS})["ids"][0]
        st, msg = b.poll(sess, cap=1)
        self.assertEqual([m["messageType"] for m in inner(msg)], ["JobAssigned"])
        last = msg["messageId"]
        b.delete_msg(sess, last)
        jc = jit["encodedJITConfig"]
        self.assertEqual(runner_call(jc, "session", arch="x86_64")[0], 200)
        st, body = runner_call(jc, "acquire")
        self.assertEqual((st, body.split()[0]), (200, str(jid)))
        st, msg = b.poll(sess, last=last, cap=1)
        started = inner(msg)[0]
        self.assertEqual((started["messageType"], started["runnerId"], started["runnerName"]),
                         ("JobStarted", rid, "runnerd-a-linux-1"))
        last = msg["messageId"]
        b.delete_msg(sess, last)
        st, ag = b.api("GET", "_apis/distributedtask/pools/0/agents/%d" % rid)
        self.assertEqual((st, ag["busy"], ag["status"]), (200, True, "online"))
        st, ag = b.api("GET", "_apis/distributedtask/pools/0/agents?agentName=runnerd-a-linux-1")
        self.assertEqual(ag["count"], 1)
        st, err = b.api("DELETE", "_apis/distributedtask/pools/0/agents/%d" % rid)
        self.assertEqual(st, 400)
        self.assertIn("JobStillRunningException", err["typeName"])
        self.assertEqual(runner_call(jc, "complete", job=jid, conclusion="success")[0], 200)
        st, msg = b.poll(sess, last=last, cap=1)
        done = inner(msg)[0]
        self.assertEqual((done["messageType"], done["result"]), ("JobCompleted", "succeeded"))
        st, _ = b.api("GET", "_apis/distributedtask/pools/0/agents/%d" % rid)
        self.assertEqual(st, 404)
        st, _ = b.api("DELETE", "_apis/distributedtask/pools/0/agents/%d" % rid)
        self.assertEqual(st, 204, "deleting a runner that is gone is 204")
        state = b.control("GET", "state")
        self.assertEqual(state["jobs"][0]["runs"], ["runnerd-a-linux-1"])

    def test_expiry_returns_unstarted_jobs_and_capacity(self):
        b = self.b
        b.control("POST", "config", {"mode": "assign"})
        b.bootstrap()
        s1, s2 = b.create_set("s1"), b.create_set("s2")
        _, a = b.session(s1["id"], "a")
        _, c = b.session(s2["id"], "c")
        b.poll(a, cap=1)
        b.poll(c, cap=0)
        ids = b.control("POST", "jobs", {"repo": "acme/api", "labels": LABELS, "count": 3})["ids"]
        jobs = b.control("GET", "state")["jobs"]
        self.assertEqual([j["state"] for j in jobs], ["assigned", "queued", "queued"],
                         "capacity 1 and 0: one job assigned")
        self.assertEqual(jobs[0]["scale_set"], "s1")
        # s1's host dies: its session expires and its unstarted job goes back to the queue
        deadline = time.time() + 10
        while time.time() < deadline:
            st, _ = b.poll(c, cap=3)
            jobs = b.control("GET", "state")["jobs"]
            if all(j["scale_set"] == "s2" for j in jobs):
                break
        self.assertEqual([j["scale_set"] for j in jobs], ["s2"] * 3)
        self.assertEqual(jobs[0]["assignments"], ["s1", "s2"])
        ev = [e["kind"] for e in b.control("GET", "state")["events"]]
        self.assertIn("session_expired", ev)
        self.assertIn("job_requeued", ev)
        del ids

    def test_over_assignment_knob(self):
        b = self.b
        b.control("POST", "config", {"mode": "assign", "over_assign": 2})
        b.bootstrap()
        ss = b.create_set("s1")
        _, sess = b.session(ss["id"])
        b.poll(sess, cap=1)
        b.control("POST", "jobs", {"repo": "acme/api", "labels": LABELS, "count": 5})
        st, msg = b.poll(sess, cap=1)
        self.assertEqual(len(inner(msg)), 3)
        self.assertEqual(msg["statistics"]["totalAssignedJobs"], 3)

    def test_faults_bom_401_5xx_and_rest_listing(self):
        b = self.b
        b.bootstrap()
        ss = b.create_set("s1")
        b.control("POST", "config", {"bom": True})
        st, body, _ = b.req("GET", b.svc + "_apis/runtime/runnerscalesets/%d?api-version=6.0-preview"
                            % ss["id"], headers={"Authorization": "Bearer " + b.admin}, raw=True)
        self.assertTrue(body.startswith(BOM))
        _, sess = b.session(ss["id"])
        b.control("POST", "faults", {"path": "^/scalesets/message$", "kind": 401, "count": 1})
        self.assertEqual(b.poll(sess)[0], 401)
        self.assertEqual(b.poll(sess)[0], 202)
        b.control("POST", "faults", {"path": "runnerscalesets", "kind": 503, "count": 1})
        self.assertEqual(b.api("GET", "_apis/runtime/runnerscalesets")[0], 503)
        self.assertEqual(b.api("GET", "_apis/runtime/runnerscalesets")[0], 200)
        st, _ = b.req("GET", "/repos/acme/api/actions/runs?status=queued",
                      headers={"Authorization": "Bearer pat"})
        self.assertEqual(st, 404)
        self.assertEqual(b.control("GET", "stats")["rest_listing"], 1)

    def test_redeliver_knob(self):
        b = self.b
        b.bootstrap()
        ss = b.create_set("s1")
        _, sess = b.session(ss["id"])
        b.poll(sess)
        b.control("POST", "jobs", {"repo": "acme/api", "labels": LABELS})
        _, m1 = b.poll(sess)
        b.control("POST", "config", {"redeliver": True})
        _, m2 = b.poll(sess, last=m1["messageId"])
        self.assertEqual(m2["messageId"], m1["messageId"], "undeleted message handed out again")
        b.delete_msg(sess, m1["messageId"])
        st, m3 = b.poll(sess, last=m1["messageId"])
        self.assertTrue(st == 202 or m3["messageId"] != m1["messageId"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
