#!/usr/bin/env python3
"""Stateful fake of GitHub's runner scale-set broker for runnerd's fleet tests.

Standard library only. Built from /work/shared/scaleset-protocol.md (section numbers
below refer to it); README.md beside this file lists the endpoints, the control API and
the fault knobs. One process plays three hosts on one port:

  * the REST API bootstrap (protocol 1.3, 1.4): registration tokens and
    POST /actions/runner-registration (also under /api/v3 for the GHES form);
    any other REST request answers 404 and is counted (a fleet test asserts that
    no workflow run or job was listed);
  * the Actions service under /tenant/<n>/ (protocol 2, 3): runner groups, scale
    sets, sessions, acquirejobs, generatejitconfig, agents;
  * the message queue /scalesets/message (protocol 3.4, 3.5), a long poll;
  * the runner side /_fake/runner/{session,acquire,complete}, the protocol the
    docker doubles already speak with tests/fake_github (JIT config of the same
    shape), so a runner started from a scale set's JIT config takes a job that the
    broker assigned to its scale set.
"""

import argparse
import base64
import http.server
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import uuid

API_VERSION = "6.0-preview"
ARCH_ALIASES = {"amd64": "x64", "x86_64": "x64", "aarch64": "arm64"}
EXC_NS = "GitHub.Actions.Runtime.WebApi."
MAX_BATCH = 50  # protocol 3.4: at most 50 messages a response
BOM = b"\xef\xbb\xbf"
VERBOSE = False

DEFAULT_KNOBS = {
    "poll_timeout_ms": 2000,    # long poll answers 202 after this (GitHub: ~50 s)
    "session_ttl_ms": 6000,     # a session not polled for this long expires
    "admin_ttl_s": 3600,        # life of admin tokens (JWT exp)
    "mq_ttl_s": 3600,           # life of message-queue tokens
    "mode": "available",        # "available": JobAvailable + acquirejobs (GHES);
                                # "assign": JobAssigned directly (github.com)
    "reoffer_ms": 1000,         # JobAvailable offered again to a set after this
    "over_assign": 0,           # assign this many jobs beyond the advertised capacity
    "bom": False,               # prefix every JSON body with a UTF-8 BOM
    "redeliver": False,         # ignore lastMessageId: hand out the oldest undeleted message
    "return_on_expiry": True,   # session expiry/delete puts unstarted jobs back in the queue
    "single_label": False,      # GHES without custom labels: a set's only label is its name
    "reassign_ms": 0,           # assigned but not started for this long: cancel, requeue (<=3x)
}


def log(msg):
    if VERBOSE:
        sys.stderr.write("fake_broker: %s\n" % msg)
        sys.stderr.flush()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def norm_label(name):
    n = name.lower()
    return ARCH_ALIASES.get(n, n)


def make_jwt(claims):
    """An RS256-shaped JWT; clients read exp without verifying (protocol 1.5)."""
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    return "%s.%s.%s" % (head, body, b64url(secrets.token_bytes(32)))


class BrokerError(Exception):
    def __init__(self, status, type_name, message):
        super().__init__(message)
        self.status = status
        self.type_name = type_name
        self.message = message


class State:
    def __init__(self, token):
        self.token = token
        self.cond = threading.Condition()
        self.base = ""
        self.reset()

    # -- state --------------------------------------------------------------
    def reset(self):
        self.knobs = dict(DEFAULT_KNOBS)
        self.reg_tokens = {}      # token -> (scope, exp)
        self.admin_tokens = {}    # token -> (tenant, exp)
        self.tenants = {}         # scope -> tenant id
        self.tenant_scope = {}    # tenant id -> scope
        self.groups = {}          # scope -> [{"id","name"}] beyond Default (id 1)
        self.sets = {}            # id -> scale set dict
        self.next_set = 1
        self.sessions = {}        # session id -> session dict
        self.mq_tokens = {}       # token -> session id
        self.next_msg = 100000000
        self.jobs = {}            # runnerRequestId -> job dict
        self.next_job = 1000
        self.agents = {}          # id -> agent dict
        self.next_agent = 1
        self.events = []
        self.faults = []
        self.reset_stats()

    def reset_stats(self):
        self.stats = {"requests_total": 0, "by_path": {}, "by_status": {}, "rest_listing": 0,
                      "rest_other": 0, "capacity_seen": {}, "acquire_requested": 0,
                      "acquire_granted": 0, "sessions_created": 0, "session_conflicts": 0,
                      "messages_deleted": 0, "polls": 0}

    def event(self, kind, **kw):
        e = {"t": int(time.time() * 1000), "kind": kind}
        e.update(kw)
        self.events.append(e)
        log("event %s" % e)

    def tenant_for(self, scope):
        if scope not in self.tenants:
            tid = len(self.tenants) + 1
            self.tenants[scope] = tid
            self.tenant_scope[tid] = scope
        return self.tenants[scope]

    # -- jobs and assignment -------------------------------------------------
    def add_jobs(self, spec):
        repo = spec.get("repo", "")
        if not re.fullmatch(r"[^/\s]+/[^/\s]+", repo):
            raise BrokerError(400, "ArgumentException", "repo must be OWNER/REPO")
        labels = spec.get("labels") or ["self-hosted"]
        ids = []
        for _ in range(int(spec.get("count", 1))):
            jid = self.next_job
            self.next_job += 1
            self.jobs[jid] = {
                "id": jid, "jobId": str(uuid.uuid4()), "repo": repo, "labels": list(labels),
                "duration_ms": int(spec.get("duration_ms", 500)), "state": "queued",
                "set": None, "runner": None, "runs": [], "assignments": [],
                "offered": {}, "result": None, "queued_at": time.time(),
                "assigned_at": None, "workflowRunId": jid * 10}
            ids.append(jid)
            self.event("job_queued", job=jid)
        self.schedule()
        return ids

    def set_covers(self, ss, job):
        scope = self.tenant_scope.get(ss["tenant"], "")
        owner, repo = job["repo"].split("/", 1)
        if scope.startswith("orgs/"):
            if scope[5:].lower() != owner.lower():
                return False
        elif scope.startswith("repos/"):
            if scope[6:].lower() != job["repo"].lower():
                return False
        else:
            return False
        have = {norm_label(x) for x in self.set_labels(ss)}
        return all(norm_label(x) in have for x in job["labels"])

    def set_labels(self, ss):
        if self.knobs["single_label"]:
            return [ss["name"]]
        return [x["name"] for x in ss["labels"]]

    def load(self, ss):
        return sum(1 for j in self.jobs.values()
                   if j["set"] == ss["id"] and j["state"] in ("assigned", "started"))

    def free(self, ss):
        sess = self.session_of(ss)
        if sess is None or sess["capacity"] is None:
            return 0
        return sess["capacity"] + int(self.knobs["over_assign"]) - self.load(ss)

    def session_of(self, ss):
        sid = ss.get("session")
        return self.sessions.get(sid) if sid else None

    def assign(self, job, ss):
        job["state"] = "assigned"
        job["set"] = ss["id"]
        job["assigned_at"] = time.time()
        job["assignments"].append(ss["name"])
        ss["assigned_total"] += 1
        self.event("job_assigned", job=job["id"], scale_set=ss["name"])
        self.push(ss, self.job_msg("JobAssigned", job))

    def schedule(self):
        """Give queued jobs to scale sets with an active session (protocol 6.1, 6.2, 6.4)."""
        now = time.time()
        queued = sorted((j for j in self.jobs.values() if j["state"] == "queued"),
                        key=lambda j: j["id"])
        for job in queued:
            cands = [ss for ss in self.sets.values()
                     if self.session_of(ss) is not None and self.set_covers(ss, job)]
            if not cands:
                continue
            if self.knobs["mode"] == "assign":
                best = None
                for ss in cands:
                    f = self.free(ss)
                    if f <= 0:
                        continue
                    if best is None or (f, -ss["assigned_total"]) > (self.free(best),
                                                                      -best["assigned_total"]):
                        best = ss
                if best is not None:
                    self.assign(job, best)
            else:
                for ss in cands:
                    if self.free(ss) <= 0:
                        continue
                    last = job["offered"].get(ss["id"])
                    if last is not None and now - last < self.knobs["reoffer_ms"] / 1000.0:
                        continue
                    job["offered"][ss["id"]] = now
                    self.push(ss, self.job_msg("JobAvailable", job))
        self.cond.notify_all()

    def requeue(self, job, why):
        job["state"] = "queued"
        job["set"] = None
        job["offered"] = {}
        self.event("job_requeued", job=job["id"], why=why)

    def job_msg(self, kind, job, **extra):
        owner, repo = job["repo"].split("/", 1)
        m = {"messageType": kind, "runnerRequestId": job["id"], "repositoryName": repo,
             "ownerName": owner, "jobId": job["jobId"],
             "jobWorkflowRef": "%s/.github/workflows/ci.yml@refs/heads/main" % job["repo"],
             "jobDisplayName": "job-%d" % job["id"], "workflowRunId": job["workflowRunId"],
             "eventName": "push", "requestLabels": job["labels"], "queueTime": iso(job["queued_at"])}
        if kind == "JobAvailable":
            m["acquireJobUrl"] = "%s/tenant/1/_apis/runtime/runnerscalesets/acquirejob" % self.base
        m.update(extra)
        return m

    def stats_of(self, ss):
        mine = [j for j in self.jobs.values() if j["set"] == ss["id"]]
        agents = [a for a in self.agents.values() if a["set"] == ss["id"]]
        busy = sum(1 for a in agents if a["job"] is not None)
        return {"totalAvailableJobs": sum(1 for j in self.jobs.values() if j["state"] == "queued"
                                          and self.set_covers(ss, j)),
                "totalAcquiredJobs": 0,
                "totalAssignedJobs": sum(1 for j in mine if j["state"] in ("assigned", "started")),
                "totalRunningJobs": sum(1 for j in mine if j["state"] == "started"),
                "totalRegisteredRunners": len(agents), "totalBusyRunners": busy,
                "totalIdleRunners": len(agents) - busy}

    def push(self, ss, inner):
        sess = self.session_of(ss)
        if sess is not None:
            sess["pending"].append(inner)
            self.cond.notify_all()

    # -- sessions -------------------------------------------------------------
    def end_session(self, sess, why):
        self.sessions.pop(sess["sessionId"], None)
        for t in [t for t, s in self.mq_tokens.items() if s == sess["sessionId"]]:
            del self.mq_tokens[t]
        ss = self.sets.get(sess["set"])
        if ss is not None and ss.get("session") == sess["sessionId"]:
            ss["session"] = None
            if self.knobs["return_on_expiry"]:
                for j in self.jobs.values():
                    if j["set"] == ss["id"] and j["state"] == "assigned":
                        self.requeue(j, why)
        self.event("session_" + why, scale_set=ss["name"] if ss else None, owner=sess["ownerName"])
        self.schedule()

    def tick(self):
        now = time.time()
        ttl = self.knobs["session_ttl_ms"] / 1000.0
        for sess in list(self.sessions.values()):
            if sess["polling"] == 0 and now - sess["last_seen"] > ttl:
                self.end_session(sess, "expired")
        ra = self.knobs["reassign_ms"] / 1000.0
        if ra > 0:
            for j in list(self.jobs.values()):
                if j["state"] == "assigned" and now - j["assigned_at"] > ra \
                        and len(j["assignments"]) <= 3:
                    ss = self.sets.get(j["set"])
                    if ss is not None:
                        self.push(ss, self.job_msg("JobCompleted", j, result="canceled"))
                    self.requeue(j, "reassign")
        self.schedule()

    def session_json(self, sess):
        ss = self.sets[sess["set"]]
        return {"sessionId": sess["sessionId"], "ownerName": sess["ownerName"],
                "runnerScaleSet": self.set_json(ss),
                "messageQueueUrl": "%s/scalesets/message?sid=%d" % (self.base, ss["id"]),
                "messageQueueAccessToken": sess["token"], "statistics": self.stats_of(ss)}

    def new_mq_token(self, sess):
        exp = int(time.time() + self.knobs["mq_ttl_s"])
        tok = make_jwt({"exp": exp, "sid": sess["set"], "jti": secrets.token_hex(8)})
        sess["token"] = tok
        sess["token_exp"] = exp
        self.mq_tokens[tok] = sess["sessionId"]

    def set_json(self, ss):
        labels = [{"type": "System", "name": n} for n in self.set_labels(ss)]
        return {"id": ss["id"], "name": ss["name"], "runnerGroupId": ss["group"],
                "runnerGroupName": ss["groupName"], "labels": labels,
                "RunnerSetting": {"ephemeral": True, "isElastic": False, "disableUpdate": True},
                "createdOn": ss["createdOn"],
                "runnerJitConfigUrl": "%s/tenant/%d/_apis/runtime/runnerscalesets/%d/"
                                      "generatejitconfig" % (self.base, ss["tenant"], ss["id"]),
                "statistics": self.stats_of(ss), "enabled": True}

    def agent_json(self, a):
        return {"id": a["id"], "name": a["name"], "runnerScaleSetId": a["set"],
                "status": "online" if a["online"] else "offline", "busy": a["job"] is not None,
                "ephemeral": True, "os": "linux", "runnerGroupId": 1, "enabled": True}


def validate_labels(body_labels, name):
    out = []
    for lab in body_labels or []:
        if not isinstance(lab, dict) or not isinstance(lab.get("name"), str) or not lab["name"]:
            raise BrokerError(400, "ArgumentException", "labels: each needs a name")
        out.append({"type": lab.get("type") or "System", "name": lab["name"]})
    if not out:
        out = [{"type": "System", "name": name}]  # protocol 3.2: defaults to the name
    return out


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        if VERBOSE:
            http.server.ThreadingHTTPServer.handle_error(self, request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 300

    def log_message(self, fmt, *args):
        pass

    def log_request(self, code="-", size="-"):
        if VERBOSE:
            p = re.sub(r"(token=)[^&]*", r"\1***", self.path)
            sys.stderr.write("fake_broker: %s %s -> %s\n" % (self.command, p, code))

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    # -- plumbing -------------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_raw(self, status, body, ctype="application/json; charset=utf-8", headers=()):
        st = self.server.state
        if not self.path.startswith("/_control"):
            with st.cond:
                k = str(status)
                st.stats["by_status"][k] = st.stats["by_status"].get(k, 0) + 1
        self.send_response(status)
        if status not in (202, 204) and body:
            self.send_header("Content-Type", ctype)
        else:
            body = b""
        self.send_header("ActivityId", str(uuid.uuid4()))
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def send_json(self, status, obj, bom=None):
        st = self.server.state
        body = json.dumps(obj, separators=(",", ":")).encode()
        if bom is None:
            bom = st.knobs["bom"]
        if bom and not self.path.startswith("/_control"):
            body = BOM + body  # protocol 2: bodies may begin with a BOM
        self.send_raw(status, body)

    def send_err(self, e):
        if e.type_name is None:
            self.send_raw(e.status, e.message.encode(), "text/plain; charset=utf-8")
        else:
            self.send_json(e.status, {"typeName": EXC_NS + e.type_name + ", GitHub.Actions."
                                      "Runtime.WebApi", "message": e.message})

    def dispatch(self):
        st = self.server.state
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        raw = self.read_body()
        try:
            if path.startswith("/_control/"):
                return self.control(st, path, raw)
            if path.startswith("/_fake/runner/"):
                return self.runner(st, path[len("/_fake/runner/"):], q)
            with st.cond:
                st.stats["requests_total"] += 1
                fault = self.find_fault(st, path)
            if fault is not None:
                if self.apply_fault(st, fault):
                    return
            if path.startswith("/scalesets/message"):
                return self.queue(st, path, q)
            m = re.fullmatch(r"/tenant/(\d+)/(_apis/.*)", path)
            if m:
                return self.actions(st, int(m.group(1)), m.group(2), q, raw)
            return self.rest(st, path, raw)
        except BrokerError as e:
            self.send_err(e)

    def count(self, st, key):
        st.stats["by_path"][key] = st.stats["by_path"].get(key, 0) + 1

    def find_fault(self, st, path):
        for f in st.faults:
            if f["count"] == 0:
                continue
            if f.get("method") and f["method"] != self.command:
                continue
            if not re.search(f["path"], path):
                continue
            if f["count"] > 0:
                f["count"] -= 1
            f["hits"] += 1
            return dict(f)
        return None

    def apply_fault(self, st, f):
        kind = str(f["kind"])
        if kind in ("500", "502", "503"):
            self.send_raw(int(kind), b"upstream trouble", "text/plain")
            return True
        if kind == "401":
            self.send_raw(401, b"")
            return True
        if kind == "404":
            self.send_err(BrokerError(404, "RunnerAdminException", "runner referenced a session "
                                      "ID that doesn't exist in redis"))
            return True
        if kind == "hang":
            time.sleep(float(f.get("delay_ms", 30000)) / 1000.0)
            self.close_connection = True
            return True
        if kind == "slow":
            time.sleep(float(f.get("delay_ms", 1000)) / 1000.0)
            return False
        if kind == "malformed":
            self.send_raw(200, b'{"count": 1, "value": [', "application/json")
            return True
        return False

    # -- REST bootstrap (protocol 1.3, 1.4) -------------------------------------
    def rest(self, st, path, raw):
        auth = self.headers.get("Authorization") or ""
        p = path[len("/api/v3"):] if path.startswith("/api/v3/") else path
        m = re.fullmatch(r"/(orgs/[^/]+|repos/[^/]+/[^/]+|enterprises/[^/]+)/actions/runners/"
                         r"registration-token", p)
        with st.cond:
            if m and self.command == "POST":
                self.count(st, "POST /{scope}/actions/runners/registration-token")
                tok = auth.split(" ", 1)[1] if " " in auth else ""
                if not tok or (st.token and tok != st.token):
                    raise BrokerError(401, None, '{"message":"Bad credentials"}')
                exp = time.time() + 3600
                reg = "AREG" + secrets.token_hex(12).upper()
                st.reg_tokens[reg] = (m.group(1), exp)
                body = {"token": reg, "expires_at": iso(exp)}
            elif p == "/actions/runner-registration" and self.command == "POST":
                self.count(st, "POST /actions/runner-registration")
                if not auth.startswith("RemoteAuth "):
                    raise BrokerError(401, None, "RemoteAuth required")
                ent = st.reg_tokens.get(auth[len("RemoteAuth "):])
                if ent is None or ent[1] < time.time():
                    raise BrokerError(401, None, "bad registration token")
                try:
                    req = json.loads(raw)
                except ValueError:
                    raise BrokerError(400, None, "bad JSON")
                url = req.get("url") if isinstance(req, dict) else None
                if not isinstance(url, str) or req.get("runner_event") != "register":
                    raise BrokerError(400, None, "url and runner_event=register required")
                segs = [s for s in urllib.parse.urlsplit(url).path.split("/") if s]
                want = ent[0].split("/")[1:]
                if segs != want:
                    raise BrokerError(400, None, "config url does not match the token's scope")
                tid = st.tenant_for(ent[0])
                exp = int(time.time() + st.knobs["admin_ttl_s"])
                tok = make_jwt({"exp": exp, "iat": int(time.time()), "tid": tid,
                                "jti": secrets.token_hex(8)})
                st.admin_tokens[tok] = (tid, exp)
                body = {"url": "%s/tenant/%d/" % (st.base, tid), "token": tok,
                        "token_schema": "OAuthAccessToken"}
            else:
                if re.search(r"/actions/(runs|jobs)(/|$)", p):
                    st.stats["rest_listing"] += 1
                st.stats["rest_other"] += 1
                self.count(st, "%s %s" % (self.command, p))
                raise BrokerError(404, None, '{"message":"Not Found"}')
        self.send_json(201, body, bom=False)

    # -- Actions service (protocol 3) ---------------------------------------------
    def admin(self, st, tid):
        auth = self.headers.get("Authorization") or ""
        ent = st.admin_tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
        if ent is None or ent[1] < time.time():
            raise BrokerError(401, None, "")
        if ent[0] != tid:
            raise BrokerError(403, "AccessDeniedException", "token is for another tenant")

    def mq_session(self, st):
        auth = self.headers.get("Authorization") or ""
        sid = st.mq_tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
        sess = st.sessions.get(sid) if sid else None
        if sess is None or sess["token_exp"] < time.time() or sess["token"] != auth[7:]:
            raise BrokerError(401, None, "")
        return sess

    def body_json(self, raw):
        try:
            return json.loads(raw.decode("utf-8-sig")) if raw else None
        except ValueError:
            raise BrokerError(400, "ArgumentException", "body is not JSON")

    def actions(self, st, tid, rel, q, raw):
        if q.get("api-version") != API_VERSION:
            raise BrokerError(400, "VssInvalidApiVersionException",
                              "api-version=%s required" % API_VERSION)
        meth = self.command
        rel = rel.rstrip("/")
        key = re.sub(r"sessions/[0-9a-f-]{36}", "sessions/{sessionId}", rel)
        key = re.sub(r"/\d+", "/{id}", key)
        with st.cond:
            self.count(st, "%s %s" % (meth, key))
            if key == "_apis/runtime/runnerscalesets/{id}/acquirejobs" and meth == "POST":
                sess = self.mq_session(st)
                return self.acquire_jobs(st, sess, int(rel.split("/")[3]), raw)
            self.admin(st, tid)
            scope = st.tenant_scope[tid]
            if rel == "_apis/runtime/runnergroups" and meth == "GET":
                name = q.get("groupName", "")
                groups = [{"id": 1, "name": "Default", "size": 0, "isDefaultGroup": True}]
                groups += [dict(g, size=0, isDefaultGroup=False) for g in st.groups.get(scope, [])]
                hit = [g for g in groups if g["name"].lower() == name.lower()] if name else groups
                return self.send_json(200, {"count": len(hit), "value": hit})
            if rel == "_apis/runtime/runnerscalesets":
                if meth == "GET":
                    out = [ss for ss in st.sets.values() if ss["tenant"] == tid]
                    if "runnerGroupId" in q:
                        out = [ss for ss in out if str(ss["group"]) == q["runnerGroupId"]]
                    if "name" in q:
                        out = [ss for ss in out if ss["name"] == q["name"]]
                    return self.send_json(200, {"count": len(out),
                                                "value": [st.set_json(s) for s in out]})
                if meth == "POST":
                    return self.create_set(st, tid, scope, self.body_json(raw))
            m = re.fullmatch(r"_apis/runtime/runnerscalesets/(\d+)(/.*)?", rel)
            if m:
                ss = st.sets.get(int(m.group(1)))
                if ss is None or ss["tenant"] != tid:
                    raise BrokerError(404, "RunnerScaleSetNotFoundException",
                                      "No runner scale set found with identifier %s." % m.group(1))
                return self.scale_set_op(st, ss, m.group(2) or "", meth, raw)
            m = re.fullmatch(r"_apis/distributedtask/pools/0/agents(?:/(\d+))?", rel)
            if m:
                return self.agents_op(st, tid, m.group(1), meth, q)
        raise BrokerError(404, None, "no such route")

    def create_set(self, st, tid, scope, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise BrokerError(400, "ArgumentException", "name required")
        gid = body.get("runnerGroupId") or 1
        gname = "Default"
        if gid != 1:
            g = [g for g in st.groups.get(scope, []) if g["id"] == gid]
            if not g:
                raise BrokerError(404, "RunnerGroupNotFoundException", "group %s" % gid)
            gname = g[0]["name"]
        for ss in st.sets.values():
            if ss["tenant"] == tid and ss["group"] == gid and ss["name"] == body["name"]:
                # protocol 3.2: a duplicate name in a group is a 400 (garm's comment)
                raise BrokerError(400, "RunnerScaleSetExistsException",
                                  "A runner scale set named %s already exists." % body["name"])
        ss = {"id": st.next_set, "name": body["name"], "tenant": tid, "group": gid,
              "groupName": gname, "labels": validate_labels(body.get("labels"), body["name"]),
              "createdOn": iso(time.time()), "session": None, "assigned_total": 0}
        st.next_set += 1
        st.sets[ss["id"]] = ss
        st.event("scale_set_created", scale_set=ss["name"])
        return self.send_json(200, st.set_json(ss))

    def scale_set_op(self, st, ss, sub, meth, raw):
        if sub == "" and meth == "GET":
            return self.send_json(200, st.set_json(ss))
        if sub == "" and meth == "PATCH":
            body = self.body_json(raw) or {}
            if "labels" in body:
                ss["labels"] = validate_labels(body["labels"], ss["name"])
            if isinstance(body.get("name"), str) and body["name"]:
                ss["name"] = body["name"]
            st.event("scale_set_updated", scale_set=ss["name"])
            st.schedule()
            return self.send_json(200, st.set_json(ss))
        if sub == "" and meth == "DELETE":
            if any(j["set"] == ss["id"] and j["state"] == "started" for j in st.jobs.values()):
                raise BrokerError(400, "RunnerScaleSetInUseException",
                                  "jobs are running on runners of this scale set")
            sess = st.session_of(ss)
            if sess is not None:
                st.end_session(sess, "deleted")
            for j in st.jobs.values():
                if j["set"] == ss["id"] and j["state"] == "assigned":
                    st.requeue(j, "scale_set_deleted")
            for a in [a for a in st.agents.values() if a["set"] == ss["id"]]:
                del st.agents[a["id"]]
            del st.sets[ss["id"]]
            st.event("scale_set_deleted", scale_set=ss["name"])
            st.schedule()
            return self.send_raw(204, b"")
        if sub == "/sessions" and meth == "POST":
            body = self.body_json(raw) or {}
            owner = body.get("ownerName")
            if not isinstance(owner, str) or not owner:
                raise BrokerError(400, "ArgumentException", "ownerName required")
            if st.session_of(ss) is not None:
                st.stats["session_conflicts"] += 1
                raise BrokerError(409, "RunnerScaleSetSessionConflictException",
                                  "The actions runner scaleset %s already has an active session."
                                  % ss["name"])
            return self.send_json(200, self.new_session(st, ss, owner))
        m = re.fullmatch(r"/sessions/([0-9a-f-]{36})", sub)
        if m:
            sess = st.sessions.get(m.group(1))
            if sess is None or sess["set"] != ss["id"]:
                if meth == "DELETE":
                    raise BrokerError(400, "RunnerScaleSetSessionExpiredException",
                                      "The session identifier %s is not valid." % m.group(1))
                raise BrokerError(404, "RunnerAdminException", "runner referenced a session ID "
                                  "that doesn't exist in redis")
            if meth == "PATCH":
                st.new_mq_token(sess)
                sess["last_seen"] = time.time()
                return self.send_json(200, st.session_json(sess))
            if meth == "DELETE":
                st.end_session(sess, "deleted")
                return self.send_raw(204, b"")
        if sub == "/acquirablejobs" and meth == "GET":
            av = [j for j in st.jobs.values() if j["state"] == "queued" and st.set_covers(ss, j)]
            if not av:
                return self.send_raw(204, b"")
            return self.send_json(200, {"count": len(av), "value": [
                st.job_msg("JobAvailable", j) for j in av]})
        if sub == "/generatejitconfig" and meth == "POST":
            return self.generate_jit(st, ss, self.body_json(raw))
        raise BrokerError(404, None, "no such route")

    def new_session(self, st, ss, owner):
        sess = {"sessionId": str(uuid.uuid4()), "ownerName": owner, "set": ss["id"],
                "pending": [], "queue": [], "capacity": None, "last_seen": time.time(),
                "polling": 0, "last_message_id": 0}
        st.new_mq_token(sess)
        st.sessions[sess["sessionId"]] = sess
        ss["session"] = sess["sessionId"]
        st.stats["sessions_created"] += 1
        st.event("session_created", scale_set=ss["name"], owner=owner)
        return st.session_json(sess)

    def generate_jit(self, st, ss, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise BrokerError(400, "ArgumentException", "name required")
        for a in st.agents.values():
            if a["name"] == body["name"] and st.sets.get(a["set"], {}).get("tenant") == ss["tenant"]:
                raise BrokerError(409, "AgentExistsException", "A runner with name %s already "
                                  "exists." % body["name"])
        a = {"id": st.next_agent, "name": body["name"], "set": ss["id"], "online": False,
             "job": None, "secret": secrets.token_hex(16), "arch": None}
        st.next_agent += 1
        st.agents[a["id"]] = a
        runner = {"agentId": a["id"], "agentName": a["name"], "poolId": 0, "poolName": ss["name"],
                  "serverUrl": st.base + "/_fake/runner", "gitHubUrl": st.base,
                  "workFolder": body.get("workFolder") or "_work", "ephemeral": True,
                  "disableUpdate": True, "runnerScaleSetId": ss["id"]}
        creds = {"scheme": "OAuthAccessToken", "data": {"token": a["secret"]}}
        rsa = {"d": b64(secrets.token_bytes(32)), "modulus": b64(secrets.token_bytes(32))}
        jit = b64(json.dumps({".runner": b64(json.dumps(runner)),
                              ".credentials": b64(json.dumps(creds)),
                              ".credentials_rsaparams": b64(json.dumps(rsa))}))
        st.event("jit_created", runner=a["name"], scale_set=ss["name"])
        return self.send_json(200, {"runner": {"id": a["id"], "name": a["name"],
                                               "runnerScaleSetId": ss["id"]},
                                    "encodedJITConfig": jit})

    def agents_op(self, st, tid, rid, meth, q):
        mine = {i: a for i, a in st.agents.items()
                if st.sets.get(a["set"], {}).get("tenant") == tid}
        if rid is None and meth == "GET":
            out = list(mine.values())
            if "agentName" in q:
                out = [a for a in out if a["name"] == q["agentName"]]
            return self.send_json(200, {"count": len(out), "value": [st.agent_json(a) for a in out]})
        if rid is not None:
            a = mine.get(int(rid))
            if meth == "GET":
                if a is None:
                    raise BrokerError(404, "AgentNotFoundException", "No agent with id %s" % rid)
                return self.send_json(200, st.agent_json(a))
            if meth == "DELETE":
                if a is not None:
                    if a["job"] is not None:
                        raise BrokerError(400, "JobStillRunningException", "The runner %s is "
                                          "running a job and cannot be removed." % a["name"])
                    del st.agents[a["id"]]
                    st.event("runner_deleted", runner=a["name"])
                return self.send_raw(204, b"")  # protocol 3.7: 204 also when it does not exist
        raise BrokerError(404, None, "no such route")

    def acquire_jobs(self, st, sess, sid, raw):
        if sess["set"] != sid:
            raise BrokerError(403, "AccessDeniedException", "session is for another scale set")
        ids = self.body_json(raw)
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise BrokerError(400, "ArgumentException", "body must be a JSON array of ids")
        ss = st.sets[sid]
        got = []
        st.stats["acquire_requested"] += len(ids)
        for i in ids:
            j = st.jobs.get(i)
            if j is not None and j["state"] == "queued" and st.set_covers(ss, j):
                st.assign(j, ss)
                got.append(i)
        st.stats["acquire_granted"] += len(got)
        st.cond.notify_all()
        return self.send_json(200, {"count": len(got), "value": got})

    # -- message queue (protocol 3.4, 3.5) -------------------------------------
    def queue(self, st, path, q):
        with st.cond:
            sess = self.mq_session(st)
            ss = st.sets[sess["set"]]
            if str(ss["id"]) != q.get("sid"):
                raise BrokerError(400, None, "sid query parameter lost")
            if self.command == "DELETE":
                m = re.fullmatch(r"/scalesets/message/(\d+)", path)
                if not m:
                    raise BrokerError(404, None, "no such message")
                self.count(st, "DELETE /scalesets/message/{id}")
                mid = int(m.group(1))
                before = len(sess["queue"])
                sess["queue"] = [x for x in sess["queue"] if x["messageId"] != mid]
                if len(sess["queue"]) != before:
                    st.stats["messages_deleted"] += 1
                return self.send_raw(204, b"")
            if self.command != "GET" or path != "/scalesets/message":
                raise BrokerError(404, None, "no such route")
            self.count(st, "GET /scalesets/message")
            st.stats["polls"] += 1
            cap = self.headers.get("X-ScaleSetMaxCapacity")
            if cap is None or not re.fullmatch(r"\d+", cap.strip()):
                raise BrokerError(400, "ArgumentException", "X-ScaleSetMaxCapacity required")
            sess["capacity"] = int(cap)
            st.stats["capacity_seen"].setdefault(ss["name"], []).append(int(cap))
            del st.stats["capacity_seen"][ss["name"]][:-50]
            try:
                last = int(q.get("lastMessageId", "0"))
            except ValueError:
                raise BrokerError(400, None, "bad lastMessageId")
            sess["last_message_id"] = last
            sess["polling"] += 1
            sess["last_seen"] = time.time()
            st.schedule()
            deadline = time.time() + st.knobs["poll_timeout_ms"] / 1000.0
            try:
                while True:
                    msg = self.next_message(st, sess, last)
                    if msg is not None or st.sessions.get(sess["sessionId"]) is not sess:
                        break
                    left = deadline - time.time()
                    if left <= 0:
                        break
                    st.cond.wait(min(left, 0.5))
            finally:
                sess["polling"] -= 1
                sess["last_seen"] = time.time()
        if msg is None:
            return self.send_raw(202, b"")
        return self.send_json(200, msg)

    def next_message(self, st, sess, last):
        if sess["pending"]:
            batch, sess["pending"] = sess["pending"][:MAX_BATCH], sess["pending"][MAX_BATCH:]
            ss = st.sets[sess["set"]]
            sess["queue"].append({"messageId": st.next_msg,
                                  "messageType": "RunnerScaleSetJobMessages",
                                  "body": json.dumps(batch),  # protocol 4.1: double-encoded
                                  "statistics": st.stats_of(ss)})
            st.next_msg += 1
        for msg in sess["queue"]:
            if st.knobs["redeliver"] or msg["messageId"] > last:
                return msg
        return None

    # -- runner side (same protocol as tests/fake_github) --------------------------
    def runner(self, st, action, q):
        with st.cond:
            try:
                a = st.agents.get(int(q.get("id", "")))
            except ValueError:
                return self.send_raw(400, b"bad id", "text/plain")
            if a is None:
                return self.send_raw(404, b"no such runner", "text/plain")
            if not secrets.compare_digest(q.get("token", ""), a["secret"]):
                return self.send_raw(401, b"bad token", "text/plain")
            ss = st.sets.get(a["set"])
            if action == "session":
                a["online"] = True
                a["arch"] = q.get("arch")
                st.event("runner_online", runner=a["name"])
                return self.send_raw(200, b"ok", "text/plain")
            if action == "acquire":
                if not a["online"]:
                    return self.send_raw(409, b"no session", "text/plain")
                if a["job"] is not None:
                    j = st.jobs[a["job"]]
                    return self.send_raw(200, b"%d %d" % (j["id"], j["duration_ms"]), "text/plain")
                mine = sorted((j for j in st.jobs.values()
                               if j["set"] == a["set"] and j["state"] == "assigned"),
                              key=lambda j: j["id"])
                if not mine or ss is None:
                    return self.send_raw(204, b"")
                j = mine[0]
                j["state"] = "started"
                j["runner"] = a["name"]
                j["runs"].append(a["name"])
                a["job"] = j["id"]
                st.event("job_started", job=j["id"], runner=a["name"], scale_set=ss["name"])
                st.push(ss, st.job_msg("JobStarted", j, runnerId=a["id"], runnerName=a["name"]))
                return self.send_raw(200, b"%d %d" % (j["id"], j["duration_ms"]), "text/plain")
            if action == "complete":
                try:
                    jid = int(q.get("job", ""))
                except ValueError:
                    return self.send_raw(400, b"bad job", "text/plain")
                if a["job"] != jid:
                    return self.send_raw(409, b"not your job", "text/plain")
                j = st.jobs[jid]
                concl = q.get("conclusion") or "success"
                j["state"] = "completed"
                j["result"] = {"success": "succeeded", "cancelled": "canceled"}.get(concl, "failed")
                del st.agents[a["id"]]  # ephemeral: removed after its one job
                st.event("job_completed", job=jid, runner=a["name"], result=j["result"])
                if ss is not None:
                    st.push(ss, st.job_msg("JobCompleted", j, result=j["result"],
                                           runnerId=a["id"], runnerName=a["name"]))
                st.schedule()
                return self.send_raw(200, b"ok", "text/plain")
        return self.send_raw(404, b"unknown runner action", "text/plain")

    # -- control API ------------------------------------------------------------------
    def control(self, st, path, raw):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.send_json(400, {"message": "bad JSON"})
        meth = self.command
        with st.cond:
            try:
                out = self.control_locked(st, meth, path, body)
            except BrokerError as e:
                return self.send_json(e.status, {"message": e.message})
            except (KeyError, TypeError, ValueError) as e:
                return self.send_json(400, {"message": "bad request: %s" % e})
        if out is None:
            return self.send_json(404, {"message": "no such control endpoint"})
        return self.send_json(200, out)

    def control_locked(self, st, meth, path, body):
        if path == "/_control/reset" and meth == "POST":
            st.reset()
            st.cond.notify_all()
            return {}
        if path == "/_control/config":
            if meth == "POST":
                for k, v in body.items():
                    if k not in DEFAULT_KNOBS:
                        raise BrokerError(400, None, "unknown knob %s" % k)
                    st.knobs[k] = v
                st.schedule()
            return dict(st.knobs)
        if path == "/_control/jobs" and meth == "POST":
            return {"ids": st.add_jobs(body)}
        if path == "/_control/runner_groups" and meth == "POST":
            st.groups[body["scope"]] = [{"id": int(g["id"]), "name": g["name"]}
                                        for g in body["groups"]]
            return {}
        if path == "/_control/faults":
            if meth == "DELETE":
                st.faults = []
                return {}
            if meth == "POST":
                st.faults.append({"path": body["path"], "method": body.get("method"),
                                  "kind": str(body["kind"]), "count": int(body.get("count", 1)),
                                  "delay_ms": body.get("delay_ms"), "hits": 0})
                return {}
            return {"faults": st.faults}
        if path == "/_control/stale_session" and meth == "POST":
            # A predecessor that died without deleting its session: 409 until it expires.
            ss = [s for s in st.sets.values() if s["name"] == body["scale_set"]]
            if not ss:
                raise BrokerError(404, None, "no such scale set")
            if st.session_of(ss[0]) is not None:
                raise BrokerError(409, None, "already has a session")
            self.new_session(st, ss[0], body.get("owner", "ghost"))
            return {}
        if path == "/_control/expire_sessions" and meth == "POST":
            for sess in list(st.sessions.values()):
                name = st.sets[sess["set"]]["name"]
                if body.get("scale_set") in (None, name):
                    st.end_session(sess, "expired")
            return {}
        if path == "/_control/stats":
            if meth == "GET":
                return st.stats
        if path == "/_control/stats/reset" and meth == "POST":
            st.reset_stats()
            return {}
        if path == "/_control/state" and meth == "GET":
            return self.state_json(st)
        return None

    def state_json(self, st):
        jobs = [{"id": j["id"], "jobId": j["jobId"], "repo": j["repo"], "labels": j["labels"],
                 "state": j["state"], "result": j["result"], "runner": j["runner"],
                 "runs": j["runs"], "assignments": j["assignments"],
                 "scale_set": st.sets[j["set"]]["name"] if j["set"] in st.sets else None}
                for j in sorted(st.jobs.values(), key=lambda j: j["id"])]
        sets = []
        for ss in st.sets.values():
            sess = st.session_of(ss)
            sets.append({"id": ss["id"], "name": ss["name"], "group": ss["group"],
                         "scope": st.tenant_scope[ss["tenant"]], "labels": st.set_labels(ss),
                         "statistics": st.stats_of(ss),
                         "session": None if sess is None else {
                             "owner": sess["ownerName"], "capacity": sess["capacity"],
                             "last_message_id": sess["last_message_id"],
                             "undeleted": len(sess["queue"]), "pending": len(sess["pending"])}})
        agents = [dict(st.agent_json(a), scale_set=st.sets[a["set"]]["name"]
                       if a["set"] in st.sets else None, job=a["job"])
                  for a in st.agents.values()]
        return {"jobs": jobs, "scale_sets": sets, "agents": agents, "events": st.events[-2000:]}


def main(argv=None):
    global VERBOSE
    ap = argparse.ArgumentParser(description="Fake scale-set broker for runnerd tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--token", help="the only accepted PAT (default: any non-empty token)")
    ap.add_argument("--config", help="JSON object of knobs (see README.md)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    VERBOSE = a.verbose
    st = State(a.token)
    if a.config:
        st.knobs.update(json.loads(a.config))
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = st
    port = srv.server_address[1]
    st.base = "http://127.0.0.1:%d" % port
    stop_ev = threading.Event()

    def ticker():
        while not stop_ev.wait(0.1):
            with st.cond:
                st.tick()
    threading.Thread(target=ticker, daemon=True).start()

    def stop(signum, frame):
        stop_ev.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.port_file:
        tmp = a.port_file + ".tmp.%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    log("listening on %s" % st.base)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
