#!/usr/bin/env python3
"""Stateful fake of the GitHub REST API for runnerd's tests.

Standard library only.  RS256 JWTs are verified by hand with pow() on the
RSA public key (no third-party crypto module).  See README.md next to this
file for the flags, the control API and the runner protocol; the contract is
/work/FAKES.md (tests/fake_github/README.md repeats and extends it).

Responses are built from GitHub's published example payloads in
tests/fixtures/github/ with the values replaced.
"""

import argparse
import base64
import contextlib
import copy
import hashlib
import hmac
import http.server
import json
import os
import random
import re
import secrets
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures", "github"))

DOC_BASE = "https://docs.github.com/rest"
PRIMARY_DOC = ("https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
               "#about-primary-rate-limits")
SECONDARY_DOC = ("https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                 "#secondary-rate-limits")
PRIMARY_MSG = "API rate limit exceeded for user ID 1."
SECONDARY_MSG = ("You have exceeded a secondary rate limit. Please wait a few minutes "
                 "before you try again.")
UA_MSG = ("Request forbidden by administrative rules. Please make sure your request "
          "has a User-Agent header (https://docs.github.com/en/rest/overview/"
          "resources-in-the-rest-api#user-agent-required). Check "
          "https://developer.github.com for other possible causes.\n")
HUGE_SIZE = 50 * 1024 * 1024
HANG_MAX_S = 3600.0
READ_ONLY_LABELS = {"self-hosted", "x64", "arm64", "arm", "linux", "macos", "windows"}
ARCH_ALIASES = {"amd64": "x64", "x86_64": "x64", "aarch64": "arm64"}
APP_PERMISSIONS = {"actions": "read", "administration": "write", "metadata": "read",
                   "organization_self_hosted_runners": "write"}

VERBOSE = False


def log(msg):
    if VERBOSE:
        sys.stderr.write("fake_github: %s\n" % msg)
        sys.stderr.flush()


def load_fixture(name):
    with open(os.path.join(FIXTURES, name), "r", encoding="utf-8") as f:
        return json.load(f)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def iso_ms_offset(t):
    """Format like the registration-token fixture: milliseconds and a zone offset."""
    ms = int((t - int(t)) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03d+00:00" % ms


def now_ms():
    return int(time.time() * 1000)


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode())


def norm_label(name):
    n = name.lower()
    return ARCH_ALIASES.get(n, n)


# ---------------------------------------------------------------------------
# RS256 verification by hand: a tiny DER reader and PKCS#1 v1.5 check.

def _der_tlv(data, pos):
    tag = data[pos]
    pos += 1
    ln = data[pos]
    pos += 1
    if ln & 0x80:
        nb = ln & 0x7F
        ln = int.from_bytes(data[pos:pos + nb], "big")
        pos += nb
    return tag, pos, pos + ln


def _der_children(data, start, end):
    out = []
    pos = start
    while pos < end:
        tag, vs, ve = _der_tlv(data, pos)
        out.append((tag, vs, ve))
        pos = ve
    return out


def _der_int(data, vs, ve):
    return int.from_bytes(data[vs:ve], "big")


def rsa_public_from_pem(pem):
    """Return (n, e) from a PEM public or private RSA key (SPKI, PKCS#1, PKCS#8)."""
    m = re.search(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", pem, re.S)
    if not m:
        raise ValueError("no PEM block found")
    kind = m.group(1)
    der = base64.b64decode("".join(m.group(2).split()))
    tag, vs, ve = _der_tlv(der, 0)
    top = _der_children(der, vs, ve)
    if kind == "RSA PUBLIC KEY":
        return _der_int(der, *top[0][1:]), _der_int(der, *top[1][1:])
    if kind == "RSA PRIVATE KEY":
        return _der_int(der, *top[1][1:]), _der_int(der, *top[2][1:])
    if kind == "PUBLIC KEY":
        _, bs, be = top[1]  # BIT STRING: first byte = unused bits
        _, ks, ke = _der_tlv(der, bs + 1)
        inner = _der_children(der, ks, ke)
        return _der_int(der, *inner[0][1:]), _der_int(der, *inner[1][1:])
    if kind == "PRIVATE KEY":
        _, os_, oe = top[2]  # OCTET STRING holding RSAPrivateKey
        _, ks, ke = _der_tlv(der, os_)
        inner = _der_children(der, ks, ke)
        return _der_int(der, *inner[1][1:]), _der_int(der, *inner[2][1:])
    raise ValueError("unsupported PEM type %r" % kind)


SHA256_DIGESTINFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_verify(n, e, signing_input, sig):
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGESTINFO + hashlib.sha256(signing_input).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


# ---------------------------------------------------------------------------
# State

class ApiError(Exception):
    def __init__(self, status, message, errors=None, doc=None, headers=None):
        Exception.__init__(self, message)
        self.status = status
        self.message = message
        self.errors = errors
        self.doc = doc or DOC_BASE
        self.headers = headers or {}

    def body(self):
        b = {"message": self.message, "documentation_url": self.doc}
        if self.errors is not None:
            b["errors"] = self.errors
        b["status"] = str(self.status)
        return b


def not_found():
    return ApiError(404, "Not Found")


class State:
    def __init__(self, token, app_id, app_key, per_page_default):
        self.lock = threading.RLock()
        self.static_token = token
        self.app_id = app_id
        self.app_key = app_key  # (n, e) or None
        self.per_page_default = per_page_default
        self.base = "http://127.0.0.1:0"
        self.hang_gen = 0
        self.tpl_org_repo = json.dumps(load_fixture("org-repos-list.json")[0])
        self.tpl_inst_repo = json.dumps(
            load_fixture("installation-repositories-list.json")["repositories"][0])
        run = load_fixture("workflow-runs-list.json")["workflow_runs"][0]
        run.pop("repository", None)
        run.pop("head_repository", None)
        self.tpl_run = json.dumps(run)
        self.tpl_job = json.dumps(load_fixture("workflow-job.json"))
        self.tpl_runner = load_fixture("runner.json")
        self.tpl_group = load_fixture("runner-groups-org-list.json")["runner_groups"]
        self.tpl_installation = json.dumps(load_fixture("installation.json"))
        self.tpl_rate = load_fixture("rate-limit.json")
        self.tpl_inst_token = load_fixture("installation-token.json")
        self.reset_all()

    # -- lifecycle ---------------------------------------------------------
    def reset_all(self):
        with self.lock:
            self.owners = {}       # login -> {"id","login","org","installation_id"}
            self.owner_by_id = {}
            self.repos = {}        # full_name -> {"id","owner","name","full","archived"}
            self.repo_by_id = {}
            self.runs = {}
            self.runs_by_repo = {}  # full_name -> [run]: run lists without a scan of every run
            self.jobs = {}
            self.runners = {}
            self.events = []
            self.faults = []
            self.groups = {}       # org -> [ {"id","name"} ] (besides Default)
            self.inst_tokens = {}  # token -> {"installation_id","expires"}
            self.token_ttl = 3600
            self.token_skew = 0  # seconds added to the expires_at a token answer shows
            self.label_ids = {}
            self.next_owner_id = 1000
            self.next_repo_id = 100000
            self.next_run_id = 5000000
            self.next_job_id = 90000000
            self.next_runner_id = 1000
            self.next_inst_id = 1
            self.repo_cache = {}
            self.rate = {"limit": 5000, "remaining": 5000, "reset": int(time.time()) + 3600,
                         "status": 403}
            self.hang_gen += 1
            self.reset_stats()

    def reset_stats(self):
        with self.lock:
            self.stats = {"requests_total": 0, "by_path": {}, "by_status": {},
                          "conditional_hits": 0, "core_used": 0,
                          "max_concurrent_connections": getattr(self, "cur_conn", 0),
                          "current_connections": 0, "jit_created": 0, "runner_deletes": 0,
                          "runner_requests": 0}
            if not hasattr(self, "cur_conn"):
                self.cur_conn = 0

    def event(self, kind, runner=None, job=None):
        self.events.append({"t": now_ms(), "kind": kind, "runner": runner, "job": job})

    # -- owners / repos -----------------------------------------------------
    def ensure_owner(self, login, org):
        o = self.owners.get(login)
        if o is None:
            o = {"id": self.next_owner_id, "login": login, "org": bool(org),
                 "installation_id": self.next_inst_id}
            self.next_owner_id += 1
            self.next_inst_id += 1
            self.owners[login] = o
            self.owner_by_id[o["id"]] = o
        else:
            o["org"] = bool(org)
        self.repo_cache.clear()
        return o

    def add_repos(self, spec):
        owner = spec.get("owner")
        if not isinstance(owner, str) or not owner:
            raise ApiError(400, "owner is required")
        names = spec.get("names", [])
        archived = set(spec.get("archived", []) or [])
        o = self.ensure_owner(owner, spec.get("org", False))
        for n in names:
            full = owner + "/" + n
            r = self.repos.get(full)
            if r is None:
                r = {"id": self.next_repo_id, "owner": owner, "name": n, "full": full,
                     "archived": False}
                self.next_repo_id += 1
                self.repos[full] = r
                self.repo_by_id[r["id"]] = r
            r["archived"] = n in archived
        return {"owner": owner, "owner_id": o["id"], "org": o["org"],
                "installation_id": o["installation_id"],
                "repos": [{"name": n, "id": self.repos[owner + "/" + n]["id"]} for n in names]}

    def repo_obj(self, r, kind):
        key = (r["id"], kind, r["archived"])
        obj = self.repo_cache.get(key)
        if obj is not None:
            return obj
        o = self.owners[r["owner"]]
        tpl = self.tpl_org_repo if kind == "minimal" else self.tpl_inst_repo
        s = (tpl.replace("octocat/Hello-World", r["full"])
             .replace("/users/octocat", "/users/" + r["owner"])
             .replace('"https://github.com/octocat"', json.dumps("https://github.com/" + r["owner"]))
             .replace("https://api.github.com", self.base))
        obj = json.loads(s)
        obj["id"] = r["id"]
        obj["node_id"] = b64("010:Repository%d" % r["id"])
        obj["name"] = r["name"]
        obj["full_name"] = r["full"]
        obj["owner"]["login"] = r["owner"]
        obj["owner"]["id"] = o["id"]
        obj["owner"]["node_id"] = b64(("012:Organization%d" if o["org"] else "04:User%d") % o["id"])
        obj["owner"]["type"] = "Organization" if o["org"] else "User"
        obj["archived"] = r["archived"]
        obj["private"] = True
        obj["visibility"] = "private"
        obj["default_branch"] = "main"
        obj["permissions"] = {"admin": True, "maintain": True, "push": True, "triage": True,
                              "pull": True}
        self.repo_cache[key] = obj
        return obj

    def repo_or_404(self, owner, name):
        r = self.repos.get(owner + "/" + name)
        if r is None:
            raise not_found()
        return r

    def org_or_404(self, org):
        o = self.owners.get(org)
        if o is None or not o["org"]:
            raise not_found()
        return o

    # -- runs / jobs -------------------------------------------------------
    def add_jobs(self, spec):
        full = spec.get("repo")
        r = self.repos.get(full) if isinstance(full, str) else None
        if r is None:
            raise ApiError(400, "unknown repo %r (add it with /_control/repos first)" % (full,))
        labels = spec.get("labels", ["self-hosted"])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ApiError(400, "labels must be a list of strings")
        count = int(spec.get("count", 1))
        status = spec.get("status", "queued")
        if status not in ("queued", "waiting", "in_progress"):
            raise ApiError(400, "status must be queued, waiting or in_progress")
        run_status = spec.get("run_status") or ("waiting" if status == "waiting" else "queued")
        if run_status not in ("queued", "in_progress", "waiting"):
            raise ApiError(400, "run_status must be queued, in_progress or waiting")
        duration = int(spec.get("duration_ms", 500))
        # created_ago_s: the job was queued that long ago (queue-wait metrics)
        t = time.time() - float(spec.get("created_ago_s", 0))
        if spec.get("run_id") is not None:
            # more jobs in an existing run (GitHub makes a run's jobs after the run itself);
            # the run's entry in the lists stays as it was
            run = self.runs.get(int(spec["run_id"]))
            if run is None or run["repo"] != full:
                raise ApiError(400, "unknown run %r of %s" % (spec["run_id"], full))
            run_id = run["id"]
        else:
            run_id = self.next_run_id
            self.next_run_id += 1
            run = {"id": run_id, "repo": full, "status": run_status, "conclusion": None,
                   "created_at": t, "updated_at": t, "run_number": run_id - 5000000 + 1,
                   "job_ids": [], "name": spec.get("workflow_name", "CI")}
            self.runs[run_id] = run
            self.runs_by_repo.setdefault(full, []).append(run)
        ids = []
        for i in range(count):
            jid = self.next_job_id
            self.next_job_id += 1
            job = {"id": jid, "run_id": run_id, "repo": full, "status": status,
                   "conclusion": None, "labels": list(labels), "duration_ms": duration,
                   "runner_id": None, "runner_name": None, "runner_arch": None,
                   "runner_group_id": None, "runner_group_name": None,
                   "created_at": t, "started_at": t, "completed_at": None,
                   "name": spec.get("name", "build" if count == 1 else "build (%d)" % (i + 1))}
            if status == "in_progress":
                # already running on a runner that is not runnerd's (benchmarks: every
                # repository with a job in progress); it never completes by itself
                job["runner_id"] = int(spec.get("runner_id", 800000000 + jid))
                job["runner_name"] = spec.get("runner_name", "external-%d" % jid)
            self.jobs[jid] = job
            run["job_ids"].append(jid)
            ids.append(jid)
        if status == "in_progress":
            self.update_run(run)
        return {"run_id": run_id, "job_ids": ids}

    def update_run(self, run):
        jobs = [self.jobs[j] for j in run["job_ids"]]
        t = time.time()
        if jobs and all(j["status"] == "completed" for j in jobs):
            if run["status"] != "completed":
                concl = [j["conclusion"] for j in jobs]
                if "failure" in concl:
                    c = "failure"
                elif "cancelled" in concl:
                    c = "cancelled"
                else:
                    c = "success"
                run["status"] = "completed"
                run["conclusion"] = c
                run["updated_at"] = t
        elif any(j["status"] in ("in_progress", "completed") for j in jobs):
            if run["status"] != "in_progress":
                run["status"] = "in_progress"
                run["updated_at"] = t
        elif run["status"] == "waiting" and any(j["status"] == "queued" for j in jobs):
            run["status"] = "queued"
            run["updated_at"] = t

    def set_job_status(self, jid, spec):
        job = self.jobs.get(jid)
        if job is None:
            raise ApiError(404, "unknown job")
        st = spec.get("status")
        t = time.time()
        if st == "queued":
            if job["status"] != "waiting":
                raise ApiError(409, "job is %s, not waiting" % job["status"])
            job["status"] = "queued"
        elif st == "cancelled":
            if job["status"] != "completed":
                job["status"] = "completed"
                job["conclusion"] = "cancelled"
                job["completed_at"] = t
        elif st == "completed":
            job["status"] = "completed"
            job["conclusion"] = spec.get("conclusion", "success")
            job["completed_at"] = t
        else:
            raise ApiError(400, "status must be queued, cancelled or completed")
        # GitHub gave up on the job (cancelled, or failed after its runner lost
        # communication): the runner is no longer busy with it, so it can be deleted.
        rn = self.runners.get(job.get("runner_id"))
        if rn is not None and rn.get("job") == jid and job["status"] == "completed":
            rn["busy"] = False
            if st == "completed":
                # failed by GitHub: its runner stopped talking, so it shows offline
                rn["status"] = "offline"
        self.update_run(self.runs[job["run_id"]])
        return self.job_state(job)

    def run_obj(self, run):
        r = self.repos[run["repo"]]
        s = (self.tpl_run.replace("octo-org/octo-repo", run["repo"])
             .replace("https://api.github.com", self.base)
             .replace("30433642", str(run["id"])))
        obj = json.loads(s)
        obj["id"] = run["id"]
        obj["name"] = run["name"]
        obj["node_id"] = b64("011:WorkflowRun%d" % run["id"])
        obj["head_branch"] = "main"
        obj["run_number"] = run["run_number"]
        obj["status"] = run["status"]
        obj["conclusion"] = run["conclusion"]
        obj["created_at"] = iso(run["created_at"])
        obj["updated_at"] = iso(run["updated_at"])
        obj["run_started_at"] = iso(run["created_at"])
        obj["repository"] = self.repo_obj(r, "minimal")
        obj["head_repository"] = obj["repository"]
        return obj

    def job_obj(self, job):
        s = (self.tpl_job.replace("octo-org/octo-repo", job["repo"])
             .replace("https://api.github.com", self.base)
             .replace("399444496", str(job["id"]))
             .replace("29679449", str(job["run_id"])))
        obj = json.loads(s)
        obj["id"] = job["id"]
        obj["run_id"] = job["run_id"]
        obj["node_id"] = b64("012:WorkflowJob%d" % job["id"])
        obj["status"] = job["status"]
        obj["conclusion"] = job["conclusion"]
        obj["started_at"] = iso(job["started_at"])
        obj["completed_at"] = iso(job["completed_at"]) if job["completed_at"] else None
        obj["name"] = job["name"]
        if job["status"] != "completed":
            obj["steps"] = []
        obj["labels"] = list(job["labels"])
        obj["runner_id"] = job["runner_id"]
        obj["runner_name"] = job["runner_name"]
        obj["runner_group_id"] = job["runner_group_id"]
        obj["runner_group_name"] = job["runner_group_name"]
        obj["workflow_name"] = self.runs[job["run_id"]]["name"]
        obj["run_attempt"] = 1
        obj["created_at"] = iso(job["created_at"])
        return obj

    def job_state(self, j):
        return {"id": j["id"], "repo": j["repo"], "run_id": j["run_id"], "status": j["status"],
                "conclusion": j["conclusion"], "labels": j["labels"],
                "runner_id": j["runner_id"], "runner_name": j["runner_name"],
                "runner_arch": j["runner_arch"]}

    # -- runners -----------------------------------------------------------
    def label_obj(self, name):
        key = name.lower()
        lid = self.label_ids.get(key)
        if lid is None:
            lid = len(self.label_ids) + 1
            self.label_ids[key] = lid
        return {"id": lid, "name": name,
                "type": "read-only" if norm_label(name) in READ_ONLY_LABELS else "custom"}

    def group_name(self, scope, gid):
        if gid == 1:
            return "Default"
        owner = scope.split("/")[0]
        for g in self.groups.get(owner, []):
            if g["id"] == gid:
                return g["name"]
        return None

    def runner_obj(self, rn):
        obj = copy.deepcopy(self.tpl_runner)
        obj["id"] = rn["id"]
        obj["name"] = rn["name"]
        obj["os"] = rn["os"]
        obj["status"] = rn["status"]
        obj["busy"] = rn["busy"]
        obj["ephemeral"] = rn["ephemeral"]
        obj["version"] = rn["version"]
        obj["runner_group_id"] = rn["group_id"]
        obj["labels"] = [self.label_obj(x) for x in rn["labels"]]
        return obj

    def runners_in(self, scope):
        return [rn for rn in sorted(self.runners.values(), key=lambda x: x["id"])
                if rn["scope"] == scope]

    def create_jit(self, scope, body):
        if not isinstance(body, dict):
            raise ApiError(400, "Body should be a JSON object")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(422, "Invalid request.\n\n\"name\" wasn't supplied.")
        gid = body.get("runner_group_id")
        if not isinstance(gid, int) or isinstance(gid, bool):
            raise ApiError(422, "Invalid request.\n\n\"runner_group_id\" wasn't supplied.")
        labels = body.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise ApiError(422, "Invalid request.\n\n\"labels\" wasn't supplied.")
        if len(labels) == 0 or len(labels) > 100:
            raise ApiError(422, "Validation Failed",
                           errors=[{"resource": "Runner", "field": "labels", "code": "invalid",
                                    "message": "labels must contain between 1 and 100 items"}])
        if "/" not in scope:
            if self.group_name(scope, gid) is None:
                raise ApiError(404, "Not Found")
        for rn in self.runners.values():
            if rn["scope"] == scope and rn["name"] == name:
                raise ApiError(409, "Already exists - A runner with the name %s already exists."
                               % name)
        rid = self.next_runner_id
        self.next_runner_id += 1
        rn = {"id": rid, "name": name, "scope": scope, "status": "offline", "busy": False,
              "labels": list(labels), "ephemeral": True, "os": "unknown", "version": None,
              "group_id": gid if "/" not in scope else 1, "token": secrets.token_hex(20),
              "job": None, "arch": None, "online": False, "created": time.time()}
        self.runners[rid] = rn
        self.stats["jit_created"] += 1
        self.event("jit_created", runner=name)
        runner_file = {"agentId": rid, "agentName": name, "poolId": rn["group_id"],
                       "poolName": self.group_name(scope, rn["group_id"]),
                       "serverUrl": self.base + "/_fake/runner",
                       "gitHubUrl": self.base + "/" + scope,
                       "workFolder": body.get("work_folder") or "_work",
                       "ephemeral": True, "disableUpdate": True}
        creds = {"scheme": "OAuthAccessToken", "data": {"token": rn["token"]}}
        rsap = {k: b64(secrets.token_bytes(32)) for k in
                ("d", "dp", "dq", "exponent", "inverseQ", "modulus", "p", "q")}
        cfg = {".runner": b64(json.dumps(runner_file)),
               ".credentials": b64(json.dumps(creds)),
               ".credentials_rsaparams": b64(json.dumps(rsap))}
        return {"runner": self.runner_obj(rn), "encoded_jit_config": b64(json.dumps(cfg))}

    def delete_runner(self, scope, rid):
        rn = self.runners.get(rid)
        if rn is None or rn["scope"] != scope:
            raise not_found()
        if rn["busy"]:
            raise ApiError(422, 'Bad request - Runner "%s" is still running a job' % rn["name"],
                           doc=DOC_BASE + "/actions/self-hosted-runners"
                           "#delete-a-self-hosted-runner-from-a-repository")
        del self.runners[rid]
        self.stats["runner_deletes"] += 1
        self.event("runner_deleted", runner=rn["name"])

    # -- runner protocol ---------------------------------------------------
    def runner_auth(self, q):
        try:
            rid = int(q.get("id", ""))
        except ValueError:
            return None, 400
        rn = self.runners.get(rid)
        if rn is None:
            return None, 404
        if not hmac.compare_digest(rn["token"].encode(), q.get("token", "").encode()):
            return None, 401
        return rn, 200

    def job_matches(self, rn, job):
        if rn["scope"] == job["repo"]:
            pass
        elif "/" not in rn["scope"] and job["repo"].split("/")[0] == rn["scope"]:
            pass
        else:
            return False
        have = {norm_label(x) for x in rn["labels"]}
        return all(norm_label(x) in have for x in job["labels"])

    def acquire(self, rn):
        if rn["job"] is not None:
            j = self.jobs.get(rn["job"])
            return j
        for jid in sorted(self.jobs):
            job = self.jobs[jid]
            if job["status"] == "queued" and self.job_matches(rn, job):
                t = time.time()
                job["status"] = "in_progress"
                job["started_at"] = t
                job["runner_id"] = rn["id"]
                job["runner_name"] = rn["name"]
                job["runner_arch"] = rn["arch"]
                job["runner_group_id"] = rn["group_id"]
                job["runner_group_name"] = self.group_name(rn["scope"], rn["group_id"])
                rn["busy"] = True
                rn["job"] = jid
                self.update_run(self.runs[job["run_id"]])
                self.event("job_started", runner=rn["name"], job=jid)
                return job
        return None

    def complete(self, rn, jid, conclusion):
        job = self.jobs.get(jid)
        if job is not None and job["status"] != "completed":
            job["status"] = "completed"
            job["conclusion"] = conclusion
            job["completed_at"] = time.time()
            self.update_run(self.runs[job["run_id"]])
        self.event("job_completed", runner=rn["name"], job=jid)
        if rn["id"] in self.runners:
            del self.runners[rn["id"]]
            self.event("runner_deleted", runner=rn["name"])

    # -- auth -------------------------------------------------------------
    def check_token(self, tok):
        """Return ('static', None) / ('inst', installation_id) or raise 401."""
        it = self.inst_tokens.get(tok)
        if it is not None:
            if time.time() >= it["expires"]:
                raise ApiError(401, "Bad credentials")
            return "inst", it["installation_id"]
        if self.static_token is None:
            if tok.count(".") == 2 and tok.startswith("eyJ"):
                raise ApiError(401, "Bad credentials")
            return "static", None
        if hmac.compare_digest(tok.encode(), self.static_token.encode()):
            return "static", None
        raise ApiError(401, "Bad credentials")

    def check_jwt(self, tok):
        bad = ApiError(401, "A JSON web token could not be decoded")
        parts = tok.split(".")
        if len(parts) != 3:
            raise bad
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except Exception:
            raise bad
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise bad
        if header.get("alg") != "RS256":
            raise bad
        if self.app_key is not None:
            n, e = self.app_key
            if not rs256_verify(n, e, (parts[0] + "." + parts[1]).encode(), sig):
                raise ApiError(401, "A JSON web token could not be decoded")
        iat, exp, iss = claims.get("iat"), claims.get("exp"), claims.get("iss")
        t = time.time()
        if not isinstance(iat, int) or isinstance(iat, bool) or iat > t + 60:
            raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing "
                           "the time that the assertion was issued")
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= t:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value "
                           "representing the future time at which the assertion expires")
        if exp - iat > 600:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        if iss is None:
            raise ApiError(401, "'Issuer' claim ('iss') must be an Integer")
        if self.app_id is not None and str(iss) != str(self.app_id):
            raise ApiError(401, "Integration not found")

    # -- rate limit ----------------------------------------------------------
    def rate_refresh(self):
        t = int(time.time())
        if t >= self.rate["reset"]:
            self.rate["remaining"] = self.rate["limit"]
            self.rate["reset"] = t + 3600

    def rate_headers(self, remaining=None):
        lim = self.rate["limit"]
        rem = self.rate["remaining"] if remaining is None else remaining
        return [("x-ratelimit-limit", str(lim)), ("x-ratelimit-remaining", str(rem)),
                ("x-ratelimit-used", str(max(0, lim - rem))),
                ("x-ratelimit-reset", str(self.rate["reset"])),
                ("x-ratelimit-resource", "core")]

    def installation_obj(self, o):
        s = (self.tpl_installation.replace("https://api.github.com", self.base))
        obj = json.loads(s)
        iid = o["installation_id"]
        obj["id"] = iid
        acc = obj["account"]
        acc["login"] = o["login"]
        acc["id"] = o["id"]
        acc["type"] = "Organization" if o["org"] else "User"
        acc["url"] = self.base + ("/orgs/" if o["org"] else "/users/") + o["login"]
        acc["html_url"] = "https://github.com/" + o["login"]
        acc["repos_url"] = acc["url"] + "/repos"
        obj["access_tokens_url"] = "%s/app/installations/%d/access_tokens" % (self.base, iid)
        obj["html_url"] = "https://github.com/organizations/%s/settings/installations/%d" % (
            o["login"], iid)
        obj["app_id"] = int(self.app_id) if self.app_id and str(self.app_id).isdigit() else 1
        obj["target_id"] = o["id"]
        obj["target_type"] = "Organization" if o["org"] else "User"
        obj["permissions"] = dict(APP_PERMISSIONS)
        obj["events"] = ["workflow_job"]
        return obj


# ---------------------------------------------------------------------------
# Routing

ROUTES = []


def route(method, pattern, template, auth="token", charge=True):
    rx = re.compile("^" + pattern + "$")

    def deco(fn):
        ROUTES.append((method, rx, template, auth, charge, fn))
        return fn
    return deco


SEG = r"([^/]+)"


class Resp:
    def __init__(self, status, body=None, headers=None, link=None, etag=False):
        self.status = status
        self.body = body
        self.headers = headers or []
        self.link = link
        self.etag = etag


def int_param(q, name, default):
    try:
        v = int(q.get(name, default))
    except (TypeError, ValueError):
        v = default
    return v


def paginate(st, ctx, items):
    q = ctx["query"]
    per = int_param(q, "per_page", st.per_page_default)
    per = max(1, min(100, per))
    page = max(1, int_param(q, "page", 1))
    total = len(items)
    last = max(1, (total + per - 1) // per)
    chunk = items[(page - 1) * per: page * per]
    link = None
    if not (last == 1 and page == 1):
        pairs = [(k, v) for k, v in ctx["query_list"] if k != "page"]

        def url(p):
            return "%s%s?%s" % (st.base, ctx["link_path"],
                                urllib.parse.urlencode(pairs + [("page", str(p))]))
        rels = []
        if page > 1:
            rels.append((url(min(page - 1, last)), "prev"))
        if page < last:
            rels.append((url(page + 1), "next"))
            rels.append((url(last), "last"))
        if page > 1:
            rels.append((url(1), "first"))
        link = ", ".join('<%s>; rel="%s"' % (u, r) for u, r in rels)
    return chunk, total, link


def ctx_is_repo(m):
    return m.re.pattern.startswith("^/repos/")


def check_scope_exists(st, ctx, m):
    if ctx_is_repo(m):
        r = st.repo_or_404(m.group(1), m.group(2))
        check_inst_access(st, ctx, r["owner"])
        return r["full"]
    o = st.org_or_404(m.group(1))
    check_inst_access(st, ctx, o["login"])
    return o["login"]


def check_inst_access(st, ctx, owner):
    if ctx.get("installation_id") is None:
        return
    o = st.owners.get(owner)
    if o is None or o["installation_id"] != ctx["installation_id"]:
        raise not_found()


# -- runs / jobs ---------------------------------------------------------------

@route("GET", r"/repos/%s/%s/actions/runs" % (SEG, SEG), "GET /repos/{o}/{r}/actions/runs")
def h_runs(st, ctx, m):
    full = check_scope_exists(st, ctx, m)
    status = ctx["query"].get("status")
    # per status filter, for bench/cycle.py: one status=queued list per repository poll
    lists = st.stats.setdefault("runs_lists", {})
    lists[status or ""] = lists.get(status or "", 0) + 1
    runs = list(st.runs_by_repo.get(full, ()))
    if status:
        runs = [r for r in runs if r["status"] == status or r["conclusion"] == status]
    runs.sort(key=lambda r: -r["id"])
    chunk, total, link = paginate(st, ctx, runs)
    return Resp(200, {"total_count": total, "workflow_runs": [st.run_obj(r) for r in chunk]},
                link=link, etag=True)


@route("GET", r"/repos/%s/%s/actions/runs/(\d+)" % (SEG, SEG), "GET /repos/{o}/{r}/actions/runs/{id}")
def h_run(st, ctx, m):
    full = check_scope_exists(st, ctx, m)
    run = st.runs.get(int(m.group(3)))
    if run is None or run["repo"] != full:
        raise not_found()
    return Resp(200, st.run_obj(run), etag=True)


@route("GET", r"/repos/%s/%s/actions/runs/(\d+)/jobs" % (SEG, SEG),
       "GET /repos/{o}/{r}/actions/runs/{id}/jobs")
def h_run_jobs(st, ctx, m):
    full = check_scope_exists(st, ctx, m)
    run = st.runs.get(int(m.group(3)))
    if run is None or run["repo"] != full:
        raise not_found()
    jobs = [st.jobs[j] for j in run["job_ids"]]
    chunk, total, link = paginate(st, ctx, jobs)
    return Resp(200, {"total_count": total, "jobs": [st.job_obj(j) for j in chunk]},
                link=link, etag=True)


@route("GET", r"/repos/%s/%s/actions/jobs/(\d+)" % (SEG, SEG), "GET /repos/{o}/{r}/actions/jobs/{id}")
def h_job(st, ctx, m):
    full = check_scope_exists(st, ctx, m)
    job = st.jobs.get(int(m.group(3)))
    if job is None or job["repo"] != full:
        raise not_found()
    return Resp(200, st.job_obj(job), etag=True)


# -- repos / installations ---------------------------------------------------

@route("GET", r"/repos/%s/%s" % (SEG, SEG), "GET /repos/{o}/{r}")
def h_repo(st, ctx, m):
    r = st.repo_or_404(m.group(1), m.group(2))
    check_inst_access(st, ctx, r["owner"])
    return Resp(200, st.repo_obj(r, "full"), etag=True)


@route("GET", r"/orgs/%s/repos" % SEG, "GET /orgs/{org}/repos")
def h_org_repos(st, ctx, m):
    o = st.org_or_404(m.group(1))
    check_inst_access(st, ctx, o["login"])
    repos = sorted((r for r in st.repos.values() if r["owner"] == o["login"]),
                   key=lambda r: r["id"])
    chunk, _, link = paginate(st, ctx, repos)
    return Resp(200, [st.repo_obj(r, "minimal") for r in chunk], link=link, etag=True)


@route("GET", r"/installation/repositories", "GET /installation/repositories")
def h_inst_repos(st, ctx, m):
    iid = ctx.get("installation_id")
    repos = sorted((r for r in st.repos.values()
                    if iid is None or st.owners[r["owner"]]["installation_id"] == iid),
                   key=lambda r: r["id"])
    chunk, total, link = paginate(st, ctx, repos)
    return Resp(200, {"total_count": total, "repositories": [st.repo_obj(r, "full") for r in chunk],
                      "repository_selection": "all"}, link=link, etag=True)


@route("GET", r"/app/installations", "GET /app/installations", auth="jwt")
def h_app_installations(st, ctx, m):
    owners = sorted(st.owners.values(), key=lambda o: o["installation_id"])
    chunk, _, link = paginate(st, ctx, owners)
    return Resp(200, [st.installation_obj(o) for o in chunk], link=link, etag=True)


@route("GET", r"/app/installations/(\d+)", "GET /app/installations/{id}", auth="jwt")
def h_app_installation(st, ctx, m):
    for o in st.owners.values():
        if o["installation_id"] == int(m.group(1)):
            return Resp(200, st.installation_obj(o), etag=True)
    raise not_found()


@route("GET", r"/repos/%s/%s/installation" % (SEG, SEG), "GET /repos/{o}/{r}/installation", auth="jwt")
def h_repo_installation(st, ctx, m):
    r = st.repo_or_404(m.group(1), m.group(2))
    return Resp(200, st.installation_obj(st.owners[r["owner"]]), etag=True)


@route("GET", r"/orgs/%s/installation" % SEG, "GET /orgs/{org}/installation", auth="jwt")
def h_org_installation(st, ctx, m):
    return Resp(200, st.installation_obj(st.org_or_404(m.group(1))), etag=True)


@route("GET", r"/users/%s/installation" % SEG, "GET /users/{u}/installation", auth="jwt")
def h_user_installation(st, ctx, m):
    o = st.owners.get(m.group(1))
    if o is None or o["org"]:
        raise not_found()
    return Resp(200, st.installation_obj(o), etag=True)


@route("POST", r"/app/installations/(\d+)/access_tokens",
       "POST /app/installations/{id}/access_tokens", auth="jwt")
def h_access_token(st, ctx, m):
    iid = int(m.group(1))
    if not any(o["installation_id"] == iid for o in st.owners.values()):
        raise not_found()
    tok = "ghs_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "b")[:36]
    exp = time.time() + st.token_ttl
    st.inst_tokens[tok] = {"installation_id": iid, "expires": exp}
    body = {"token": tok, "expires_at": iso(exp + st.token_skew), "permissions": dict(APP_PERMISSIONS),
            "repository_selection": "all"}
    return Resp(201, body)


# -- runners ---------------------------------------------------------------------

def _runner_routes(prefix, tmpl_prefix):
    @route("GET", prefix + r"/actions/runners", "GET %s/actions/runners" % tmpl_prefix)
    def h_list(st, ctx, m):
        scope = check_scope_exists(st, ctx, m)
        rs = st.runners_in(scope)
        name = ctx["query"].get("name")
        if name is not None:
            rs = [r for r in rs if r["name"] == name]
        chunk, total, link = paginate(st, ctx, rs)
        return Resp(200, {"total_count": total, "runners": [st.runner_obj(r) for r in chunk]},
                    link=link, etag=True)

    @route("GET", prefix + r"/actions/runners/(\d+)", "GET %s/actions/runners/{id}" % tmpl_prefix)
    def h_get(st, ctx, m):
        scope = check_scope_exists(st, ctx, m)
        rn = st.runners.get(int(m.groups()[-1]))
        if rn is None or rn["scope"] != scope:
            raise not_found()
        return Resp(200, st.runner_obj(rn), etag=True)

    @route("DELETE", prefix + r"/actions/runners/(\d+)",
           "DELETE %s/actions/runners/{id}" % tmpl_prefix)
    def h_delete(st, ctx, m):
        scope = check_scope_exists(st, ctx, m)
        st.delete_runner(scope, int(m.groups()[-1]))
        return Resp(204)

    @route("POST", prefix + r"/actions/runners/generate-jitconfig",
           "POST %s/actions/runners/generate-jitconfig" % tmpl_prefix)
    def h_jit(st, ctx, m):
        scope = check_scope_exists(st, ctx, m)
        return Resp(201, st.create_jit(scope, ctx["json"]))

    def token_handler(st, ctx, m):
        check_scope_exists(st, ctx, m)
        return Resp(201, {"token": secrets.token_hex(15).upper()[:29],
                          "expires_at": iso_ms_offset(time.time() + 3600)})

    route("POST", prefix + r"/actions/runners/registration-token",
          "POST %s/actions/runners/registration-token" % tmpl_prefix)(token_handler)
    route("POST", prefix + r"/actions/runners/remove-token",
          "POST %s/actions/runners/remove-token" % tmpl_prefix)(token_handler)


_runner_routes(r"/repos/%s/%s" % (SEG, SEG), "/repos/{o}/{r}")
_runner_routes(r"/orgs/%s" % SEG, "/orgs/{org}")


@route("GET", r"/orgs/%s/actions/runner-groups" % SEG, "GET /orgs/{org}/actions/runner-groups")
def h_groups(st, ctx, m):
    o = st.org_or_404(m.group(1))
    check_inst_access(st, ctx, o["login"])
    out = []
    default = copy.deepcopy(st.tpl_group[0])
    groups = [(1, "Default", default)]
    for g in st.groups.get(o["login"], []):
        groups.append((g["id"], g["name"], copy.deepcopy(st.tpl_group[2])))
    for gid, name, obj in groups:
        obj["id"] = gid
        obj["name"] = name
        obj["default"] = gid == 1
        obj["runners_url"] = "%s/orgs/%s/actions/runner_groups/%d/runners" % (
            st.base, o["login"], gid)
        if gid != 1:
            obj["visibility"] = "all"
            obj["selected_workflows"] = []
        out.append(obj)
    return Resp(200, {"total_count": len(out), "runner_groups": out}, etag=True)


@route("GET", r"/rate_limit", "GET /rate_limit", charge=False)
def h_rate_limit(st, ctx, m):
    body = copy.deepcopy(st.tpl_rate)
    r = st.rate
    core = {"limit": r["limit"], "used": r["limit"] - r["remaining"],
            "remaining": r["remaining"], "reset": r["reset"]}
    body["resources"]["core"] = core
    body["rate"] = dict(core)
    for k, v in body["resources"].items():
        if k != "core":
            v["reset"] = r["reset"]
    return Resp(200, body, etag=True)


# ---------------------------------------------------------------------------
# HTTP server

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def process_request(self, request, client_address):
        st = self.state
        with st.lock:
            st.cur_conn += 1
            st.stats["current_connections"] = st.cur_conn
            if st.cur_conn > st.stats["max_concurrent_connections"]:
                st.stats["max_concurrent_connections"] = st.cur_conn
        try:
            http.server.ThreadingHTTPServer.process_request(self, request, client_address)
        except Exception:
            self._conn_done()
            raise

    def _conn_done(self):
        st = self.state
        with st.lock:
            st.cur_conn -= 1
            st.stats["current_connections"] = st.cur_conn

    def shutdown_request(self, request):
        self._conn_done()
        http.server.ThreadingHTTPServer.shutdown_request(self, request)

    def handle_error(self, request, client_address):
        # Clients that give up (timeouts, resets) are normal here.
        if VERBOSE:
            http.server.ThreadingHTTPServer.handle_error(self, request, client_address)


def redact(path):
    return re.sub(r"(token=)[^&]*", r"\1***", path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300

    def version_string(self):
        return "GitHub.com"

    def log_message(self, fmt, *args):
        pass

    def log_request(self, code="-", size="-"):
        if VERBOSE:
            sys.stderr.write("fake_github: %s %s -> %s\n" % (
                self.command, redact(self.path), code))
            sys.stderr.flush()

    # -- plumbing ---------------------------------------------------------
    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            data = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    @contextlib.contextmanager
    def locked(self, st):
        """Hold the state lock, but send any response only after releasing it, so a slow
        reader cannot stall the other connections."""
        self._pending = None
        self._defer = True
        try:
            with st.lock:
                yield
        finally:
            self._defer = False
        if self._pending is not None:
            args, self._pending = self._pending, None
            self.send_raw(*args)

    def send_raw(self, status, body, headers, content_type="application/json; charset=utf-8"):
        if getattr(self, "_defer", False):
            self._pending = (status, body, headers, content_type)
            return
        if getattr(self, "_lose", False):
            self._lose = False
            self.count_status(status)
            self.rst()
            return
        # Count before sending: a client may ask for the stats as soon as it has the answer.
        self.count_status(status)
        self.send_response(status)
        if body is not None and status not in (204, 304):
            self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if body and status not in (204, 304) else 0))
        self.end_headers()
        if body and status not in (204, 304):
            self.wfile.write(body)

    def count_status(self, status):
        if self.is_api:
            st = self.server.state
            with st.lock:
                k = str(status)
                st.stats["by_status"][k] = st.stats["by_status"].get(k, 0) + 1

    def common_headers(self, st, remaining=None):
        h = st.rate_headers(remaining)
        h += [("X-GitHub-Api-Version-Selected", "2022-11-28"),
              ("X-GitHub-Media-Type", "github.v3; format=json"),
              ("X-GitHub-Request-Id", "%04X:%04X:%X" % (os.getpid() & 0xFFFF,
                                                        threading.get_ident() & 0xFFFF,
                                                        now_ms() & 0xFFFFFFF)),
              ("Cache-Control", "private, max-age=60, s-maxage=60"),
              ("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP"),
              ("Access-Control-Expose-Headers",
               "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, "
               "X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, "
               "X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, "
               "X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, "
               "Deprecation, Sunset")]
        return h

    def send_json(self, status, obj, headers):
        body = json.dumps(obj, separators=(",", ":")).encode() if obj is not None else b""
        self.send_raw(status, body, headers)

    def send_error_obj(self, st, err, remaining=None):
        h = self.common_headers(st, remaining) + list(err.headers.items())
        self.send_json(err.status, err.body(), h)

    # -- verbs --------------------------------------------------------------
    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def dispatch(self):
        st = self.server.state
        self.is_api = False
        self._lose = False
        try:
            raw = self.read_body()
        except Exception:
            self.close_connection = True
            return
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        qlist = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        query = dict(qlist)
        if path.startswith("/_control/") or path == "/_control":
            return self.control(st, path, raw)
        if path.startswith("/_fake/runner/"):
            with st.lock:
                st.stats["runner_requests"] += 1
            if self.apply_faults(st, path, parsed, runner=True):
                return
            return self.runner(st, path, query)
        self.is_api = True
        self.api(st, path, parsed, qlist, query, raw)

    # -- faults -----------------------------------------------------------
    def find_fault(self, st, path, parsed, runner):
        full = path + ("?" + parsed.query if parsed.query else "")
        with st.lock:
            for f in st.faults:
                if f["count"] == 0:
                    continue
                if f.get("method") and f["method"].upper() != self.command:
                    continue
                # Runner-protocol requests only get faults aimed at them explicitly,
                # so that a catch-all API fault does not break the runner doubles.
                if runner != ("_fake" in f["path"]):
                    continue
                if not (f["rx"].search(path) or f["rx"].search(full)):
                    continue
                # A fault with a probability hits that share of the matching requests,
                # drawn from its own seeded generator (repeatable runs).
                if f["probability"] < 1.0 and f["rng"].random() >= f["probability"]:
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["hits"] += 1
                return {k: v for k, v in f.items() if k != "rng"}
        return None

    def apply_faults(self, st, path, parsed, runner=False):
        f = self.find_fault(st, path, parsed, runner)
        if f is None:
            return False
        kind = str(f["kind"])
        delay = f.get("delay_ms") or 0
        if delay:
            time.sleep(delay / 1000.0)
        if kind == "slow":
            return False
        log("fault %s on %s %s" % (kind, self.command, redact(self.path)))
        if kind == "lost":
            # Served as usual, but the answer never reaches the client (see send_raw).
            self._lose = True
            return False
        if kind == "hang":
            self.hang(st)
            return True
        if kind == "reset":
            self.rst()
            return True
        if kind == "malformed":
            h = self.common_headers(st)
            self.send_raw(200, b'{"total_count": 1, "workflow_runs": [{"id": 1, "status": "qu',
                          h)
            return True
        if kind == "huge":
            self.send_huge(st)
            return True
        with self.locked(st):
            retry = f.get("retry_after")
            if kind in ("primary403", "primary429"):
                # An injected limit is transient: its reset is 2 s ahead unless the fault
                # names one, so a client that honours x-ratelimit-reset does not stall a test
                # for the bucket's hour.
                reset = int(f.get("reset") or int(time.time()) + 2)
                h = self.common_headers(st, remaining=0)
                h = [(k, str(reset) if k == "x-ratelimit-reset" else v) for k, v in h]
                if retry is not None:
                    h.append(("Retry-After", str(retry)))
                err = ApiError(403 if kind == "primary403" else 429, PRIMARY_MSG, doc=PRIMARY_DOC)
                self.send_json(err.status, {"message": err.message,
                                            "documentation_url": err.doc}, h)
                return True
            if kind in ("secondary403", "secondary429"):
                h = self.common_headers(st)
                if retry is not None:
                    h.append(("Retry-After", str(retry)))
                self.send_json(403 if kind == "secondary403" else 429,
                               {"message": SECONDARY_MSG, "documentation_url": SECONDARY_DOC}, h)
                return True
            if kind == "401":
                self.send_error_obj(st, ApiError(401, "Bad credentials"))
                return True
            if kind == "500":
                self.send_json(500, {"message": "Server Error"}, self.common_headers(st))
                return True
            h = self.common_headers(st)
        try:
            code = int(kind)
        except ValueError:
            code = 500
        self.send_json(code, {"message": "Injected fault %s" % kind}, h)
        return True

    def rst(self):
        """Close the connection with a TCP RST, without a response."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def hang(self, st):
        """Never answer: wait until the client gives up, the faults are cleared, or an hour."""
        self.close_connection = True
        gen = st.hang_gen
        deadline = time.time() + HANG_MAX_S
        sock = self.connection
        while time.time() < deadline and st.hang_gen == gen:
            try:
                r, _, _ = select.select([sock], [], [], 0.2)
                if r:
                    data = sock.recv(1, socket.MSG_PEEK)
                    if not data:
                        return
                    time.sleep(0.2)
            except OSError:
                return

    def send_huge(self, st):
        prefix = b'{"total_count": 1, "workflow_runs": [{"id": 1, "name": "'
        suffix = b'"}]}'
        fill = HUGE_SIZE - len(prefix) - len(suffix)
        self.count_status(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        for k, v in self.common_headers(st):
            self.send_header(k, v)
        self.send_header("Content-Length", str(HUGE_SIZE))
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(prefix)
            chunk = b"x" * 65536
            while fill > 0:
                n = min(fill, len(chunk))
                self.wfile.write(chunk[:n])
                fill -= n
            self.wfile.write(suffix)
        except OSError:
            pass

    # -- GitHub API -------------------------------------------------------
    def api(self, st, path, parsed, qlist, query, raw):
        method = self.command
        with st.lock:
            st.stats["requests_total"] += 1
            # Map GitHub's rewritten pagination paths back to the canonical ones.
            link_path = path
            m = re.match(r"^/repositories/(\d+)(/.*)?$", path)
            if m:
                r = st.repo_by_id.get(int(m.group(1)))
                canon = ("/repos/" + r["full"] + (m.group(2) or "")) if r else None
            else:
                m = re.match(r"^/organizations/(\d+)(/.*)?$", path)
                canon = path
                if m:
                    o = st.owner_by_id.get(int(m.group(1)))
                    canon = ("/orgs/" + o["login"] + (m.group(2) or "")) if o and o["org"] else None
            found = None
            if canon is not None:
                for (meth, rx, template, auth, charge, fn) in ROUTES:
                    mm = rx.match(canon)
                    if mm:
                        if meth == method:
                            found = (template, auth, charge, fn, mm)
                            break
            key = found[0] if found else "%s <unknown>" % method
            st.stats["by_path"][key] = st.stats["by_path"].get(key, 0) + 1
            if found:
                mm = found[4]
                if mm.re.pattern.startswith("^/repos/"):
                    r = st.repos.get(mm.group(1) + "/" + mm.group(2))
                    if r:
                        link_path = "/repositories/%d%s" % (
                            r["id"], canon[len("/repos/" + r["full"]):])
                elif mm.re.pattern.startswith("^/orgs/"):
                    o = st.owners.get(mm.group(1))
                    if o and o["org"]:
                        link_path = "/organizations/%d%s" % (
                            o["id"], canon[len("/orgs/" + o["login"]):])

        ua = self.headers.get("User-Agent")
        if not ua or not ua.strip():
            with st.lock:
                h = self.common_headers(st)
            self.send_raw(403, UA_MSG.encode(), h, content_type="text/plain; charset=utf-8")
            return
        if self.apply_faults(st, path, parsed):
            return
        with self.locked(st):
            st.rate_refresh()
            if found is None:
                err = ApiError(404, "Not Found")
                return self.send_error_obj(st, err)
            template, auth, charge, fn, mm = found
            ctx = {"query": query, "query_list": qlist, "link_path": link_path,
                   "installation_id": None, "json": None}
            try:
                self.authenticate(st, auth, ctx)
            except ApiError as e:
                return self.send_error_obj(st, e)
            if charge and st.rate["remaining"] <= 0:
                h = self.common_headers(st, remaining=0)
                return self.send_json(st.rate.get("status", 403),
                                      {"message": PRIMARY_MSG, "documentation_url": PRIMARY_DOC},
                                      h)
            if raw:
                try:
                    ctx["json"] = json.loads(raw)
                except ValueError:
                    return self.send_error_obj(st, ApiError(400, "Problems parsing JSON"))
            elif method == "POST":
                ctx["json"] = {}
            try:
                resp = fn(st, ctx, mm)
            except ApiError as e:
                resp = None
                err = e
            if resp is None:
                if charge:
                    self.charge(st)
                return self.send_error_obj(st, err)
            body = b""
            if resp.body is not None:
                body = json.dumps(resp.body, separators=(",", ":")).encode()
            headers = []
            if resp.etag and method == "GET" and resp.status == 200:
                etag = '"%s"' % hashlib.sha256(body).hexdigest()
                headers.append(("ETag", etag))
                inm = self.headers.get("If-None-Match")
                if inm and etag_matches(inm, etag):
                    st.stats["conditional_hits"] += 1
                    h = self.common_headers(st) + headers
                    if resp.link:
                        h.append(("Link", resp.link))
                    return self.send_raw(304, b"", h)
            if charge:
                self.charge(st)
            if resp.link:
                headers.append(("Link", resp.link))
            self.send_raw(resp.status, body if resp.status != 204 else b"",
                          self.common_headers(st) + headers + resp.headers)

    def charge(self, st):
        if st.rate["remaining"] > 0:
            st.rate["remaining"] -= 1
        st.stats["core_used"] += 1

    def authenticate(self, st, auth, ctx):
        hdr = self.headers.get("Authorization", "")
        if not hdr.strip():
            if auth == "jwt":
                raise ApiError(401, "A JSON web token could not be decoded")
            raise ApiError(401, "Requires authentication")
        parts = hdr.strip().split(None, 1)
        if len(parts) != 2 or parts[0].lower() not in ("bearer", "token"):
            raise ApiError(401, "Bad credentials")
        scheme, tok = parts[0].lower(), parts[1].strip()
        if auth == "jwt":
            if scheme != "bearer":
                raise ApiError(401, "A JSON web token could not be decoded")
            st.check_jwt(tok)
            return
        kind, iid = st.check_token(tok)
        ctx["installation_id"] = iid

    # -- runner protocol ---------------------------------------------------
    def runner(self, st, path, q):
        action = path[len("/_fake/runner/"):]
        with self.locked(st):
            rn, code = st.runner_auth(q)
            if rn is None:
                return self.send_text(code, {400: "bad id", 404: "no such runner",
                                             401: "bad token"}[code])
            if action == "session":
                rn["arch"] = q.get("arch") or rn["arch"]
                if not rn["online"]:
                    rn["online"] = True
                    self.server.state.event("runner_online", runner=rn["name"])
                rn["status"] = "online"
                rn["os"] = "linux"
                rn["version"] = "2.323.0"
                return self.send_text(200, "ok")
            if action == "acquire":
                if not rn["online"]:
                    return self.send_text(409, "no session: POST session first")
                job = st.acquire(rn)
                if job is None:
                    return self.send_raw(204, b"", [])
                return self.send_text(200, "%d %d" % (job["id"], job["duration_ms"]))
            if action == "complete":
                try:
                    jid = int(q.get("job", ""))
                except ValueError:
                    return self.send_text(400, "bad job")
                if rn["job"] is not None and rn["job"] != jid:
                    return self.send_text(409, "not your job")
                st.complete(rn, jid, q.get("conclusion") or "success")
                return self.send_text(200, "ok")
        self.send_text(404, "unknown runner action")

    def send_text(self, status, text):
        self.send_raw(status, text.encode(), [], content_type="text/plain; charset=utf-8")

    # -- control API ---------------------------------------------------------
    def control(self, st, path, raw):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.send_json(400, {"message": "bad JSON"}, [])
        method = self.command
        try:
            with st.lock:
                out = self.control_locked(st, method, path, body)
        except ApiError as e:
            return self.send_json(e.status, {"message": e.message}, [])
        if out is None:
            return self.send_json(404, {"message": "unknown control endpoint"}, [])
        self.send_json(200, out, [])

    def control_locked(self, st, method, path, body):
        if method == "POST" and path == "/_control/reset":
            st.reset_all()
            return {"ok": True}
        if method == "POST" and path == "/_control/repos":
            return st.add_repos(body)
        if method == "POST" and path == "/_control/jobs":
            return st.add_jobs(body)
        m = re.match(r"^/_control/jobs/(\d+)$", path)
        if m and method == "POST":
            return st.set_job_status(int(m.group(1)), body)
        if path == "/_control/faults":
            if method == "POST":
                return add_fault(st, body)
            if method == "DELETE":
                st.faults = []
                st.hang_gen += 1
                return {"ok": True}
            if method == "GET":
                return {"faults": [{k: v for k, v in f.items() if k not in ("rx", "rng")}
                                   for f in st.faults]}
        if method == "POST" and path == "/_control/ratelimit":
            for k in ("limit", "remaining", "reset", "status"):
                if k in body:
                    st.rate[k] = int(body[k])
            return {"core": {"limit": st.rate["limit"], "remaining": st.rate["remaining"],
                             "reset": st.rate["reset"]}}
        m = re.match(r"^/_control/runners/(\d+)$", path)
        if m and method == "POST":
            # GitHub noticed a runner's process is gone: {"status": "offline"} (idle too).
            rn = st.runners.get(int(m.group(1)))
            if rn is None:
                raise ApiError(404, "unknown runner")
            if body.get("status") not in ("offline", "online"):
                raise ApiError(400, "status must be offline or online")
            rn["status"] = body["status"]
            if body["status"] == "offline":
                rn["busy"] = False
            return {"id": rn["id"], "name": rn["name"], "status": rn["status"],
                    "busy": rn["busy"]}
        if method == "POST" and path == "/_control/token_ttl":
            st.token_ttl = int(body.get("seconds", 3600))
            st.token_skew = int(body.get("skew", 0))
            return {"seconds": st.token_ttl, "skew": st.token_skew}
        if method == "POST" and path == "/_control/runner_groups":
            org = body.get("org")
            if not isinstance(org, str):
                raise ApiError(400, "org is required")
            st.groups[org] = [{"id": int(g["id"]), "name": str(g["name"])}
                              for g in body.get("groups", [])]
            return {"org": org, "groups": st.groups[org]}
        if method == "GET" and path == "/_control/stats":
            return dict(st.stats, current_connections=st.cur_conn)
        if method == "POST" and path == "/_control/stats/reset":
            st.reset_stats()
            st.stats["max_concurrent_connections"] = st.cur_conn
            st.stats["current_connections"] = st.cur_conn
            return {"ok": True}
        if method == "GET" and path == "/_control/state":
            return {"jobs": [st.job_state(st.jobs[j]) for j in sorted(st.jobs)],
                    "runs": [{"id": r["id"], "repo": r["repo"], "status": r["status"],
                              "conclusion": r["conclusion"], "job_ids": r["job_ids"]}
                             for r in sorted(st.runs.values(), key=lambda r: r["id"])],
                    "runners": [{"id": r["id"], "name": r["name"], "scope": r["scope"],
                                 "status": r["status"], "busy": r["busy"],
                                 "labels": r["labels"], "ephemeral": r["ephemeral"],
                                 "arch": r["arch"], "job": r["job"]}
                                for r in sorted(st.runners.values(), key=lambda r: r["id"])],
                    "events": list(st.events)}
        return None


def add_fault(st, body):
    kind = str(body.get("kind", "500"))
    known = {"500", "hang", "reset", "primary403", "primary429", "secondary403",
             "secondary429", "malformed", "huge", "slow", "401", "lost"}
    if kind not in known and not kind.isdigit():
        raise ApiError(400, "unknown fault kind %r" % kind)
    try:
        rx = re.compile(body.get("path", ".*"))
    except re.error as e:
        raise ApiError(400, "bad path regex: %s" % e)
    f = {"path": body.get("path", ".*"), "rx": rx, "method": body.get("method"),
         "kind": kind, "count": int(body.get("count", 1)),
         "delay_ms": int(body.get("delay_ms", 0) or 0),
         "retry_after": body.get("retry_after"), "reset": body.get("reset"), "hits": 0,
         "probability": float(body.get("probability", 1.0)), "seed": body.get("seed")}
    if not 0.0 < f["probability"] <= 1.0:
        raise ApiError(400, "probability must be in (0, 1]")
    f["rng"] = random.Random(f["seed"])
    st.faults.append(f)
    return {k: v for k, v in f.items() if k not in ("rx", "rng")}


def etag_matches(header, etag):
    if header.strip() == "*":
        return True
    want = etag[1:-1] if etag.startswith('"') else etag
    for part in header.split(","):
        p = part.strip()
        if p.startswith("W/"):
            p = p[2:]
        if p.startswith('"') and p.endswith('"'):
            p = p[1:-1]
        if p == want:
            return True
    return False


def load_scenario(st, path):
    with open(path, "r", encoding="utf-8") as f:
        sc = json.load(f)
    with st.lock:
        for r in sc.get("repos", []):
            st.add_repos(r)
        for g in sc.get("runner_groups", []):
            st.groups[g["org"]] = [{"id": int(x["id"]), "name": x["name"]} for x in g["groups"]]
        for j in sc.get("jobs", []):
            st.add_jobs(j)
        if "ratelimit" in sc:
            st.rate.update({k: int(v) for k, v in sc["ratelimit"].items()})


def main(argv=None):
    global VERBOSE
    ap = argparse.ArgumentParser(description="Fake GitHub REST API for runnerd tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--token", help="the only accepted PAT (default: accept any non-JWT token)")
    ap.add_argument("--app-id")
    ap.add_argument("--app-public-key",
                    help="PEM text or a path to a PEM file (public or private RSA key)")
    ap.add_argument("--scenario")
    ap.add_argument("--per-page-default", type=int, default=30)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    VERBOSE = a.verbose
    key = None
    if a.app_public_key:
        pem = a.app_public_key
        if "-----BEGIN" not in pem:
            with open(pem, "r", encoding="ascii") as f:
                pem = f.read()
        key = rsa_public_from_pem(pem)
    st = State(a.token, a.app_id, key, a.per_page_default)
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = st
    port = srv.server_address[1]
    st.base = "http://127.0.0.1:%d" % port
    if a.scenario:
        load_scenario(st, a.scenario)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.port_file:
        tmp = a.port_file + ".tmp.%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    log("listening on 127.0.0.1:%d" % port)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
