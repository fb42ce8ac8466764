"""Discovery against the fake GitHub: orgs and repo targets, ETags, pagination,
fault isolation, rate limits, GitHub App auth, connection cap, no secrets in logs.

Drives build/rd_discover (tests/tools/discover.c): the real github client and
poller, one or more full poll cycles, demand printed as JSON lines.
Standard library only; the App test needs the `openssl` CLI (as the fake's own test).
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdtest  # noqa: E402

DISCOVER = os.path.join(rdtest.BUILD, "rd_discover")
LABELS = ["self-hosted", "linux", "x64"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def write_config(tmp, gh, targets, name="c.yaml", **github):
    cfg = rdtest.base_config(gh, "docker", [rdtest.pool("p", LABELS, "img")], targets)
    cfg["github"]["max_connections"] = 4
    cfg["github"].update(github)
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(rdtest.to_yaml(cfg) + "\n")
    return path


def discover(cfg_path, cycles=1, interval_ms=0, env=None, timeout=90, extra=()):
    """Run the driver; returns (cycles: list of {"jobs": {id: job}, "summary": {...}}, stderr)."""
    e = dict(os.environ)
    e["RD_TEST_TOKEN"] = rdtest.TOKEN
    e["RUNNERD_MAX_REQUEST_RATE"] = "0"  # no rate cap against the local fake
    if env:
        e.update(env)
    p = subprocess.Popen(rdtest.wrap([DISCOVER, "-c", cfg_path, "--cycles", str(cycles), "--interval-ms",
                                      str(interval_ms), "--log-level", "debug"] + list(extra)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    timeout = rdtest.scaled(timeout)
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
        print(stdout[-3000:] + "\n" + stderr[-6000:], file=sys.stderr)
        raise AssertionError("rd_discover did not finish in %d s" % timeout)
    if p.returncode != 0:
        print(stderr[-4000:], file=sys.stderr)
        raise AssertionError("rd_discover exited %d" % p.returncode)
    out, jobs = [], {}
    for line in stdout.splitlines():
        obj = json.loads(line)
        if "cycle" in obj:
            out.append({"jobs": jobs, "summary": obj})
            jobs = {}
        else:
            jobs[obj["job"]] = obj
    return out, stderr


def target_status(summary, scope):
    for t in summary["targets"]:
        if t["scope"] == scope:
            return t
    raise AssertionError("no status for " + scope)


def setup_fleet(gh):
    """203 watched repositories over 3 orgs and 3 repo targets, jobs of every kind."""
    gh.call("POST", "/_control/reset", {})
    # This test sends ~6000 requests: more than the fake's default 5000/h.
    gh.call("POST", "/_control/ratelimit",
            {"limit": 100000, "remaining": 100000, "reset": int(time.time()) + 3600})
    gh.repos("alpha", ["a%03d" % i for i in range(130)], org=True, archived=["a005", "a006"])
    gh.repos("beta", ["b%03d" % i for i in range(70)], org=True)
    gh.repos("gamma", ["g%d" % i for i in range(10)], org=True)
    gh.repos("solo", ["x", "y", "z"])
    expect = {}

    def add(repo, **kw):
        r = gh.jobs(repo, LABELS, **kw)
        return r["job_ids"]

    for j in add("alpha/a001", count=2):
        expect[j] = "alpha/a001"
    for j in add("alpha/a002", count=1, run_status="in_progress"):  # run started, job still queued
        expect[j] = "alpha/a002"
    for j in add("alpha/a129"):  # second page of the org's repositories
        expect[j] = "alpha/a129"
    add("alpha/a005")  # archived: not watched
    add("beta/b010", status="waiting")  # waiting for approval: not demand
    for j in add("beta/b069"):
        expect[j] = "beta/b069"
    for j in add("gamma/g1"):
        expect[j] = "gamma/g1"
    add("gamma/g3")  # filtered out by repos: [g1, g2]
    for j in add("solo/x"):
        expect[j] = "solo/x"
    for j in add("solo/y"):
        expect[j] = "solo/y"
    targets = [{"org": "alpha"}, {"org": "beta"}, {"org": "gamma", "repos": ["g1", "g2"]},
               {"repo": "solo/x"}, {"repo": "solo/y"}, {"repo": "solo/z"}]
    return targets, expect


def test_fleet(tmp, gh):
    targets, expect = setup_fleet(gh)
    cfg = write_config(tmp, gh, targets)
    gh.call("POST", "/_control/stats/reset", {})
    cycles, err = discover(cfg, cycles=2)
    c1, c2 = cycles
    s1 = c1["summary"]
    watched = sum(t["repos"] for t in s1["targets"])
    check(watched >= 200, "one cycle watches %d repositories (>= 200)" % watched)
    check(s1["failed"] == 0, "cycle 1: no failures (%d)" % s1["failed"])
    check(set(c1["jobs"]) == set(expect),
          "cycle 1 finds exactly the queued jobs (got %s, want %s)"
          % (sorted(c1["jobs"]), sorted(expect)))
    check(all(c1["jobs"][j]["repo"] == r for j, r in expect.items() if j in c1["jobs"]),
          "jobs carry their repository")
    check(all(c1["jobs"][j]["labels"] == LABELS for j in c1["jobs"]), "jobs carry their labels")
    check(target_status(s1, "orgs/alpha")["repos"] == 128, "alpha: 128 repos (2 archived skipped)")
    check(target_status(s1, "orgs/beta")["repos"] == 70, "beta: 70 repos")
    check(target_status(s1, "orgs/gamma")["repos"] == 2, "gamma: repos filter keeps 2")
    tx = {t["scope"]: t for t in s1["targets"]}
    check(c1["jobs"][min(j for j, r in expect.items() if r == "solo/x")]["target"] == 3,
          "solo/x jobs belong to target 3")
    check(tx["orgs/alpha"]["queued"] == 4, "alpha status counts 4 queued jobs")
    s2 = c2["summary"]
    req2 = s2["requests"] - s1["requests"]
    nm2 = s2["not_modified"] - s1["not_modified"]
    check(set(c2["jobs"]) == set(expect), "cycle 2 finds the same jobs")
    check(req2 > 0 and nm2 >= 0.9 * req2,
          "cycle 2 is mostly 304s (%d of %d requests)" % (nm2, req2))
    st = gh.stats()
    check(st["conditional_hits"] == nm2, "fake counted %d conditional hits" % st["conditional_hits"])
    check(st["max_concurrent_connections"] <= 4,
          "connections in flight never exceed max_connections 4 (max %d)"
          % st["max_concurrent_connections"])
    check(st["by_path"].get("GET /orgs/{org}/repos", 0) >= 4,
          "org listing followed Link pagination (%d org list requests)"
          % st["by_path"].get("GET /orgs/{org}/repos", 0))
    check(rdtest.TOKEN not in err, "the PAT never appears in the debug log")

    # A job that started (GitHub no longer reports it queued) leaves the demand.
    one = min(expect)
    gh.call("POST", "/_control/jobs/%d" % one, {"status": "cancelled"})
    cycles, _ = discover(cfg, cycles=1)
    check(one not in cycles[0]["jobs"] and len(cycles[0]["jobs"]) == len(expect) - 1,
          "a cancelled job is no longer demand")
    return targets, expect, cfg


def test_reload(tmp, gh, expect):
    """SIGHUP semantics: new targets start, removed ones stop and their jobs leave the demand."""
    live = {j["id"] for j in gh.state()["jobs"] if j["status"] == "queued"}
    first = write_config(tmp, gh, [{"org": "alpha"}, {"repo": "solo/x"},
                                   {"org": "gamma", "repos": ["g1", "g2"]}], name="r1.yaml")
    second = write_config(tmp, gh, [{"org": "beta"}, {"repo": "solo/y"},
                                    {"org": "gamma", "repos": ["g2", "g3"]}], name="r2.yaml")
    cycles, err = discover(first, cycles=2, env=None, extra=["--reload", second])
    c1, c2 = cycles
    want1 = {j for j, r in expect.items() if r.startswith(("alpha/", "solo/x", "gamma/g1"))} & live
    g3 = {j["id"] for j in gh.state()["jobs"] if j["repo"] == "gamma/g3" and j["status"] == "queued"}
    want2 = ({j for j, r in expect.items() if r.startswith(("beta/", "solo/y"))} & live) | g3
    check(set(c1["jobs"]) == want1, "before reload: alpha, solo/x, gamma/g1 jobs")
    check(set(c2["jobs"]) == want2,
          "after reload: removed targets' jobs dropped, new targets (and a widened filter) found "
          "(got %s, want %s)" % (sorted(c2["jobs"]), sorted(want2)))
    check([t["scope"] for t in c2["summary"]["targets"]] == ["orgs/beta", "repos/solo/y",
                                                           "orgs/gamma"],
          "status lists the new targets in config order")
    check(all(c2["jobs"][j]["target"] == 1 for j in c2["jobs"] if c2["jobs"][j]["repo"] == "solo/y"),
          "jobs carry the new config's target index")


FAULTS_FAILING = ["500", "hang", "reset", "malformed", "huge", "401"]


def test_faults(tmp, gh, targets, expect, cfg):
    others = {j for j, r in expect.items() if r != "solo/x"} - set()
    # the job cancelled above is gone
    live = {j["id"] for j in gh.state()["jobs"] if j["status"] == "queued"}
    others &= live
    xjobs = {j for j, r in expect.items() if r == "solo/x"}
    for kind in FAULTS_FAILING + ["slow"]:
        gh.call("DELETE", "/_control/faults")
        f = {"path": "^/repos/solo/x/", "kind": kind, "count": -1}
        if kind == "slow":
            f["delay_ms"] = 1500
        gh.fault(**f)
        t0 = time.monotonic()
        cycles, err = discover(cfg, cycles=1)
        dt = time.monotonic() - t0
        c = cycles[0]
        found = set(c["jobs"])
        check(others <= found, "%s on solo/x: every other target's jobs found (%d/%d, %.1fs)"
              % (kind, len(others & found), len(others), dt))
        sx = target_status(c["summary"], "repos/solo/x")
        if kind == "slow":
            check(xjobs <= found and sx["error"] is None, "slow: solo/x still discovered")
        else:
            check(not (xjobs & found) and sx["error"] is not None and c["summary"]["failed"] == 1,
                  "%s: solo/x fails alone (error %r)" % (kind, sx["error"]))
        check(rdtest.TOKEN not in err, "%s: no token in the log" % kind)
    gh.call("DELETE", "/_control/faults")

    # Rate limits: one answer holds every request until reset / Retry-After, then all recover.
    for kind, extra in (("primary403", {}), ("primary429", {}),
                        ("secondary403", {"retry_after": 2}), ("secondary429", {"retry_after": 2})):
        gh.call("DELETE", "/_control/faults")
        gh.call("POST", "/_control/stats/reset", {})
        gh.fault(path="^/repos/solo/x/", kind=kind, count=1, **extra)
        # The second cycle comes after the hold (Retry-After 2 s) is over: 4 s
        # after the first, stretched under valgrind where a cycle itself is slow.
        cycles, err = discover(cfg, cycles=2, interval_ms=int(rdtest.scaled(4000)))
        st = gh.stats()
        limited = st["by_status"].get("403", 0) + st["by_status"].get("429", 0)
        check(limited == 1, "%s: exactly one limited answer, no hammering (%d)" % (kind, limited))
        check(set(cycles[1]["jobs"]) >= others | xjobs,
              "%s: after the hold every job is found again" % kind)
        check("rate limit" in err, "%s: the hold is logged" % kind)

    # Secondary limit without Retry-After: at least 60 s of silence.
    gh.call("DELETE", "/_control/faults")
    gh.fault(path="^/repos/solo/x/", kind="secondary403", count=1)
    cycles, err = discover(cfg, cycles=2, interval_ms=2000)
    c1, c2 = cycles
    sent2 = c2["summary"]["requests"] - c1["summary"]["requests"]
    check(sent2 == 0 and c2["summary"]["failed"] > 0,
          "secondary limit without Retry-After: nothing sent 2 s later (%d requests)" % sent2)
    gh.call("DELETE", "/_control/faults")


def test_app(tmp):
    if not shutil.which("openssl"):
        check(False, "the openssl CLI is needed for the App test")
        return
    key = os.path.join(tmp, "app.pem")
    pub = os.path.join(tmp, "app.pub")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    apptmp = os.path.join(tmp, "app")
    os.mkdir(apptmp)
    gh = rdtest.FakeGitHub(apptmp, extra_args=["--app-id", "4242", "--app-public-key", pub])
    try:
        gh.repos("appo", ["r%d" % i for i in range(5)], org=True)
        gh.repos("appu", ["solo"])
        want = set(gh.jobs("appo/r3", LABELS)["job_ids"]) | set(gh.jobs("appu/solo", LABELS)["job_ids"])
        cfg = rdtest.base_config(gh, "docker", [rdtest.pool("p", LABELS, "img")],
                                 [{"org": "appo"}, {"repo": "appu/solo"}])
        del cfg["github"]["token_env"]
        cfg["github"]["app_id"] = 4242
        cfg["github"]["private_key_file"] = key
        path = os.path.join(apptmp, "app.yaml")
        with open(path, "w") as f:
            f.write(rdtest.to_yaml(cfg) + "\n")
        cycles, err = discover(path, cycles=1)
        c = cycles[0]
        check(set(c["jobs"]) == want and c["summary"]["failed"] == 0,
              "App auth: JWT verified by the fake, installation tokens per owner, jobs found")
        st = gh.stats()["by_path"]
        tok = st.get("POST /app/installations/{id}/access_tokens", 0)
        check(tok == 2, "one installation token per owner (%d)" % tok)
        check(st.get("GET /orgs/{org}/installation", 0) == 1
              and st.get("GET /repos/{o}/{r}/installation", 0) == 1,
              "installations looked up by org and by repository")
        # An installation token refused once (401): renewed and the request retried.
        gh.fault(path="^/repos/appu/solo/actions/runs", kind="401", count=1)
        gh.call("POST", "/_control/token_ttl", {"seconds": 3600})
        cycles, err2 = discover(path, cycles=1)
        st2 = gh.stats()["by_path"]
        check(set(cycles[0]["jobs"]) == want and cycles[0]["summary"]["failed"] == 0,
              "a 401 renews the installation token once and retries")
        check(st2.get("POST /app/installations/{id}/access_tokens", 0) == tok + 3,
              "a fresh run fetches 2 tokens, the 401 one more (%d)"
              % (st2.get("POST /app/installations/{id}/access_tokens", 0) - tok))
        # Short-lived tokens are renewed before they expire.
        gh.call("POST", "/_control/token_ttl", {"seconds": 4})
        before = st2.get("POST /app/installations/{id}/access_tokens", 0)
        cycles, err3 = discover(path, cycles=2, interval_ms=3500)
        st3 = gh.stats()
        after = st3["by_path"].get("POST /app/installations/{id}/access_tokens", 0)
        check(cycles[1]["summary"]["failed"] == 0 and set(cycles[1]["jobs"]) == want,
              "cycle after token expiry still succeeds")
        check(after - before >= 4, "tokens renewed before expiry (%d fetched)" % (after - before))
        check(st3["by_status"].get("401", 0) == 1, "no request was sent with an expired token")
        logs = err + err2 + err3
        check("ghs_" not in logs and "eyJ" not in logs,
              "no installation token or JWT in the debug logs")
    finally:
        gh.stop()


class _Hop(http.server.BaseHTTPRequestHandler):
    """A tiny API double for what the fake cannot do: foreign Link hosts and redirects."""
    protocol_version = "HTTP/1.1"
    seen = []  # (server, path, had Authorization)

    def log_message(self, *a):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        me = self.server.name
        _Hop.seen.append((me, self.path, "Authorization" in self.headers))
        if me != "api":
            return self._send(200, b"[]")
        other = self.server.other
        path, _, query = self.path.partition("?")
        if path == "/orgs/evil/repos":
            return self._send(200, json.dumps([{"name": "r1", "full_name": "evil/r1"}]).encode(),
                              [("Link", '<http://127.0.0.2:%d/orgs/evil/repos?page=2>; rel="next"'
                                % other)])
        if path.startswith("/repos/moved/old/"):
            return self._send(301, headers=[("Location", "http://127.0.0.1:%d%s" % (
                self.server.server_port, self.path.replace("/moved/old/", "/moved/new/")))])
        if path.startswith("/repos/away/r/"):
            return self._send(302, headers=[("Location", "http://127.0.0.2:%d%s" % (
                other, self.path))])
        if path == "/repos/moved/new/actions/runs":
            runs = [{"id": 7, "status": "queued"}] if "status=queued" in query else []
            return self._send(200, json.dumps({"total_count": len(runs),
                                               "workflow_runs": runs}).encode())
        if path == "/repos/moved/new/actions/runs/7/jobs":
            return self._send(200, json.dumps({"total_count": 1, "jobs": [
                {"id": 77, "run_id": 7, "status": "queued", "labels": LABELS,
                 "created_at": "2026-01-01T00:00:00Z", "runner_id": None,
                 "runner_name": None}]}).encode())
        if path.endswith("/actions/runs"):
            return self._send(200, b'{"total_count":0,"workflow_runs":[]}')
        return self._send(404, b'{"message":"Not Found"}')


def test_hosts_and_redirects(tmp):
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hop)
    try:
        foreign = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Hop)
    except OSError as e:
        check(False, "cannot listen on 127.0.0.2 (loopback): %s" % e)
        api.server_close()
        return
    api.name, foreign.name = "api", "foreign"
    api.other = foreign.other = foreign.server_port
    for srv in (api, foreign):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        class _GH:
            url = "http://127.0.0.1:%d" % api.server_port
        path = write_config(tmp, _GH, [{"org": "evil"}, {"repo": "moved/old"}, {"repo": "away/r"}],
                            name="hop.yaml")
        cycles, err = discover(path, cycles=1)
        c = cycles[0]
        check(not [x for x in _Hop.seen if x[0] == "foreign"],
              "nothing is ever sent to another host (Link next or redirect)")
        check(target_status(c["summary"], "orgs/evil")["error"] is not None,
              "a next page on another host fails the listing")
        check(77 in c["jobs"] and c["jobs"][77]["repo"] == "moved/old",
              "a 301 (renamed repository) is followed on the same host")
        check(target_status(c["summary"], "repos/away/r")["error"] is not None,
              "a redirect to another host is refused")
        check(all(x[2] for x in _Hop.seen), "every API request carried credentials")
    finally:
        for srv in (api, foreign):
            srv.shutdown()
            srv.server_close()


def main():
    if not os.path.exists(DISCOVER):
        print("FAIL: %s not built" % DISCOVER, file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="rd-discovery-")
    gh = rdtest.FakeGitHub(tmp)
    try:
        targets, expect, cfg = test_fleet(tmp, gh)
        test_reload(tmp, gh, expect)
        test_faults(tmp, gh, targets, expect, cfg)
        test_app(tmp)
        test_hosts_and_redirects(tmp)
    finally:
        gh.stop()
    if failures:
        print("%d check(s) failed (files kept in %s)" % (len(failures), tmp), file=sys.stderr)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
