#!/usr/bin/env python3
"""The listener's read side against a running daemon (fake GitHub + fake docker):
- GET /metrics parses as Prometheus text format 0.0.4 (promcheck: HELP/TYPE before samples,
  metric and label name syntax, label value escapes, no duplicate series, histogram buckets
  increasing and cumulative with +Inf == _count) plus checks of its own here: each family's
  samples contiguous, the Content-Type, every family of docs/metrics.md present with its
  documented type and labels, every (pool, state) pair present, values that agree with what
  happened (starts = docker runs, API requests counted, poll histogram filled);
- /healthz answers 200 once the first poll is done;
- /status is docs/status.md schema 1 (status_schema) and agrees with /metrics;
- `runnerctl status|pools|runners|targets` print tables from it; --json passes it through;
- HEAD works, other methods 405, unknown paths 404."""
import json
import os
import re
import subprocess
import sys

import opskit
import promcheck
import rdtest
import status_schema

DOC = os.path.join(rdtest.SRC, "docs", "metrics.md")
RUNNERCTL = os.environ.get("RUNNERCTL_BIN") or os.path.join(rdtest.BUILD, "runnerctl")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def documented():
    """{family: (type, [labels])} from the tables of docs/metrics.md."""
    out = {}
    with open(DOC) as f:
        for line in f:
            m = re.match(r"\|\s*`(runnerd_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|", line)
            if m:
                labels = []
                for part in m.group(3).split(","):
                    first = re.search(r"`([a-z_]+)`", part)
                    if first and first.group(1) != "le":
                        labels.append(first.group(1))
                out[m.group(1)] = (m.group(2), labels)
    return out


def contiguous(text):
    """Every family's samples form one block (a scraper may reject interleaved families)."""
    seen, cur = set(), None
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            if line.startswith("# TYPE ") or line.startswith("# HELP "):
                name = line.split()[2]
                if name != cur:
                    if name in seen:
                        return "family %s split" % name
                    seen.add(name)
                    cur = name
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        base = name
        for sfx in ("_bucket", "_sum", "_count"):
            if name.endswith(sfx) and name[:-len(sfx)] == cur:
                base = cur
        if base != cur:
            return "sample %s outside its family block (in %s)" % (name, cur)
    return None


def ctl(port, *args):
    p = subprocess.run(rdtest.wrap([RUNNERCTL, "--url", "http://127.0.0.1:%d" % port] + list(args)),
                       capture_output=True, text=True, timeout=rdtest.scaled(30))
    return p.returncode, p.stdout, p.stderr


def main():
    with opskit.TempDir() as tmp:
        pools = [rdtest.pool("linux-x64", opskit.X64, "fake:x64", max_runners=4),
                 rdtest.pool('gpu-pool', opskit.X64 + ["gpu"], "fake:x64", max_runners=1)]
        s = opskit.Setup(tmp, instance="metrics", pools=pools,
                         targets=[{"repo": "o/a"}, {"org": "org1"}])
        ok = False
        try:
            s.gh.repos("o", ["a"])
            s.gh.repos("org1", ["x", "y"], org=True)
            s.start()
            # /healthz: 200 once the first poll is done (503 only while adopting/stopping).
            rdtest.wait_until(lambda: all(t.get("last_poll") for t in
                                          opskit.get_json(s.port)["targets"]),
                              30, 0.1, "the first poll of every target")
            st, _, body = opskit.get(s.port, "/healthz")
            check(st == 200, "/healthz 200 after the first poll (%d %r)" % (st, body))

            jobs = s.gh.jobs("o/a", opskit.X64, count=2, duration_ms=200)["job_ids"]
            jobs += s.gh.jobs("org1/x", opskit.X64, count=1, duration_ms=200)["job_ids"]
            jobs += s.gh.jobs("org1/y", ["self-hosted", "windows"], count=1)["job_ids"]  # unmatched

            def served():
                st = s.gh.state()["jobs"]
                return all(j["status"] == "completed" for j in st
                           if "windows" not in j["labels"])
            rdtest.wait_until(served, 60, 0.2, "3 jobs to complete")
            rdtest.wait_until(lambda: not opskit.get_json(s.port)["runners"], 30, 0.2,
                              "runners to finish")

            st, hdrs, body = opskit.get(s.port, "/metrics")
            text = body.decode()
            check(st == 200, "/metrics 200")
            check(hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"),
                  "/metrics Content-Type %r" % hdrs.get("content-type"))
            try:
                fams = promcheck.parse(text)
                check(True, "/metrics is valid Prometheus text (%d families)" % len(fams))
            except ValueError as e:
                check(False, "/metrics invalid: %s" % e)
                raise
            err = contiguous(text)
            check(err is None, "each family's samples contiguous (%s)" % err)
            for name, (typ, labels) in documented().items():
                if name.startswith("runnerd_scaleset_"):
                    continue  # fleet mode only (test_fleet_faults checks them)
                f = fams.get(name)
                if f is None:
                    # Documented as absent until the first API response: it has one by now.
                    check(False, "documented family %s present" % name)
                    continue
                if f.type != typ:
                    check(False, "%s has type %s, documented %s" % (name, f.type, typ))
                for _, lab, _ in f.samples:
                    if sorted(k for k in lab if k != "le") != sorted(labels):
                        check(False, "%s labels %r, documented %r" % (name, sorted(lab), labels))
                        break
            check(not [n for n in fams if n not in documented()],
                  "every exposed family is documented (%r)"
                  % [n for n in fams if n not in documented()])
            for pool in ("linux-x64", 'gpu-pool'):
                for state in ("starting", "idle", "busy", "stopping"):
                    try:
                        promcheck.value(fams, "runnerd_runners", pool=pool, state=state)
                    except KeyError:
                        check(False, "runnerd_runners{pool=%r,state=%s} present" % (pool, state))
            runs = len(opskit.docker_calls(s.state_dir, "run"))
            starts = promcheck.value(fams, "runnerd_runner_starts_total", pool="linux-x64")
            check(starts == runs == 3, "runner_starts_total %s == docker runs %d == 3"
                  % (starts, runs))
            check(promcheck.value(fams, "runnerd_unmatched_jobs") == 1,
                  "runnerd_unmatched_jobs 1 (the windows job)")
            check(promcheck.value(fams, "runnerd_targets") == 2, "runnerd_targets 2")
            req = sum(promcheck.value(fams, "runnerd_github_requests_total", **{"class": c})
                      for c in ("2xx", "3xx", "4xx", "5xx", "error"))
            fake = s.gh.stats()["requests_total"]
            check(0 < req <= fake, "API requests counted: %d (fake GitHub saw %d)" % (req, fake))
            check(promcheck.value(fams, "runnerd_github_rate_limit_limit") == 5000,
                  "rate limit gauge from X-RateLimit-Limit")
            cnt = promcheck.value(fams, "runnerd_poll_duration_seconds_count")
            check(cnt >= 2, "poll duration histogram has observations (%s)" % cnt)
            binfo = [lab for _, lab, _ in fams["runnerd_build_info"].samples]
            check(binfo and binfo[0].get("instance") == "metrics", "build_info instance label")

            # HEAD, wrong method, unknown path.
            st, hdrs, body = opskit.request(s.port, "HEAD", "/metrics")
            check(st == 200 and body == b"" and int(hdrs.get("content-length", "0")) > 0,
                  "HEAD /metrics: headers only")
            st, hdrs, _ = opskit.request(s.port, "POST", "/metrics", body=b"x")
            check(st == 405 and "GET" in hdrs.get("allow", ""), "POST /metrics -> 405 with Allow")
            st, _, _ = opskit.get(s.port, "/nope")
            check(st == 404, "unknown path -> 404")
            st, _, _ = opskit.get(s.port, "/metrics?x=1")
            check(st == 200, "query string ignored")

            # /status: schema 1, consistent with /metrics.
            doc = opskit.get_json(s.port)
            try:
                status_schema.validate(doc)
                check(True, "/status matches docs/status.md schema 1")
            except ValueError as e:
                check(False, str(e))
            p = [x for x in doc["pools"] if x["name"] == "linux-x64"][0]
            check(p["starts"] == starts, "/status pools[].starts == metrics (%d)" % p["starts"])
            check(doc["jobs"]["unmatched"] == 1, "/status jobs.unmatched 1")
            check(doc["webhook"]["enabled"] is True, "/status webhook.enabled")
            org = [t for t in doc["targets"] if t["scope"] == "orgs/org1"][0]
            check(sorted(org["repos"] or []) == ["org1/x", "org1/y"],
                  "/status org target lists its discovered repos %r" % org["repos"])

            # runnerctl tables from the live daemon.
            for cmd, needles in (("status", ["linux-x64", "repos/o/a", "orgs/org1"]),
                                 ("pools", ["linux-x64", 'gpu-pool']),
                                 ("targets", ["repos/o/a", "orgs/org1"]),
                                 ("runners", [])):
                code, out, err = ctl(s.port, cmd)
                good = code == 0 and all(n in out for n in needles) and out.strip() != ""
                check(good, "runnerctl %s: exit %d, table with %r%s" % (cmd, code, needles,
                                                                       "" if good else
                                                                       "\n" + out + err))
            code, out, _ = ctl(s.port, "pools")
            header = out.splitlines()[0] if out else ""
            check(re.search(r"\bPOOL\b|\bNAME\b", header.upper()) is not None,
                  "runnerctl pools prints a header line (%r)" % header)
            code, out, _ = ctl(s.port, "status", "--json")
            try:
                j = json.loads(out)
                check(code == 0 and j["schema"] == 1 and j["instance"] == "metrics",
                      "runnerctl status --json passes the document through")
            except ValueError:
                check(False, "runnerctl status --json is JSON (%r)" % out[:200])
            code, out, _ = ctl(s.port, "pools", "--json")
            check(code == 0 and isinstance(json.loads(out), list), "runnerctl pools --json: list")

            code = s.rd.stop()
            check(code == 0, "exit 0 on SIGTERM")
            ok = not failures
        finally:
            s.close(dump=not ok)
    if failures:
        print("test_metrics: %d FAILED" % len(failures))
        return 1
    print("test_metrics: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
