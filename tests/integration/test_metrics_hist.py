#!/usr/bin/env python3
"""The contract's job-level metrics on a live daemon, and promtool on /metrics
(DESIGN.md section 6; runnerd + fake GitHub + fake docker):

1. a job of 3 s runs on a runner of pool linux-x64: runnerd_runner_startup_seconds
   {pool="linux-x64"} counts the runner (docker run spawned to online) and
   runnerd_job_duration_seconds counts the job (busy to exit) with a sum near its
   length; the idle pool has every bucket, all zero;
2. the job was created 42 s before it was queued on the fake (so GitHub's
   started_at - created_at is 42 s and a little more), and GitHub's workflow_job
   in_progress delivery for that runner says 42 s: whichever of the poll and the
   webhook tells first, runnerd_job_queue_wait_seconds{pool="linux-x64"} counts one
   job in the le="60" bucket (not le="30"), sum 42-50; a second delivery for the
   same runner is not counted twice; one naming another runner is not counted;
2b. without any webhook, a second job created 100 s ago is observed from the
   poll alone (started_at - created_at of the in_progress job on our runner):
   the count becomes 2 and the le="120" bucket holds both;
3. no gauge ends in _total (runnerd_all_queued_jobs replaced
   runnerd_queued_jobs_total);
4. `promtool check metrics` passes on the live /metrics text. Without promtool
   (Debian package prometheus, scripts/install-deps.sh) this test FAILS when
   CI is set and skips (77) otherwise.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import opskit
import promcheck
import rdtest

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def in_progress(repo, job_id, run_id, runner, waited_s):
    d = json.loads(opskit.queued_payload(repo, job_id, run_id, opskit.X64,
                                         action="in_progress", status="in_progress"))
    now = time.time()
    wj = d["workflow_job"]
    wj["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - waited_s))
    wj["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    wj["runner_name"] = runner
    wj["runner_id"] = 1
    return json.dumps(d).encode()


def main():
    promtool = shutil.which("promtool")
    if promtool is None:
        rdtest.skip_or_fail("promtool not installed (apt-get install prometheus; "
                            "scripts/install-deps.sh)")
    with opskit.TempDir() as tmp:
        pools = [rdtest.pool("linux-x64", opskit.X64, "fake:x64", max_runners=2),
                 rdtest.pool("idle-pool", opskit.X64 + ["gpu"], "fake:x64", max_runners=1)]
        s = opskit.Setup(tmp, instance="mhist", pools=pools,
                         targets=[{"repo": "mhist-org/app"}])
        ok = False
        try:
            s.gh.repos("mhist-org", ["app"])
            s.start()
            job = s.gh.jobs("mhist-org/app", opskit.X64, count=1, duration_ms=3000,
                            created_ago_s=42)["job_ids"][0]

            def busy_runner():
                for r in opskit.get_json(s.port)["runners"]:
                    if r.get("state") == "busy":
                        return r["name"]
                return None
            name = rdtest.wait_until(busy_runner, 30, 0.1, "a busy runner")
            st, body, _ = opskit.deliver(s.port, in_progress("mhist-org/app", job, 7, name, 42))
            check(st == 200, "in_progress delivery accepted (%d %s)" % (st, body))
            st, _, _ = opskit.deliver(s.port, in_progress("mhist-org/app", job, 7, name, 500))
            st2, _, _ = opskit.deliver(s.port, in_progress("mhist-org/app", job + 1000, 7,
                                                           "someone-elses-runner", 100))
            rdtest.wait_until(lambda: all(j["status"] == "completed"
                                          for j in s.gh.state()["jobs"]), 60, 0.2,
                              "the job to complete")
            rdtest.wait_until(lambda: not opskit.get_json(s.port)["runners"], 30, 0.2,
                              "the runner to exit")

            st, _, body = opskit.get(s.port, "/metrics")
            text = body.decode()
            fams = promcheck.parse(text)
            v = lambda name, **lab: promcheck.value(fams, name, **lab)  # noqa: E731
            P = {"pool": "linux-x64"}
            check(v("runnerd_runner_startup_seconds_count", **P) == 1,
                  "startup histogram counts the runner (%s)"
                  % v("runnerd_runner_startup_seconds_count", **P))
            su = v("runnerd_runner_startup_seconds_sum", **P)
            check(0 < su < 30, "startup sum %.3f s (spawned to online)" % su)
            check(v("runnerd_job_duration_seconds_count", **P) == 1,
                  "job duration histogram counts the job")
            du = v("runnerd_job_duration_seconds_sum", **P)
            check(1.5 < du < 30, "job duration sum %.3f s for a 3 s job" % du)
            check(v("runnerd_job_queue_wait_seconds_count", **P) == 1,
                  "queue wait counted once for the runner (%s)"
                  % v("runnerd_job_queue_wait_seconds_count", **P))
            qs = v("runnerd_job_queue_wait_seconds_sum", **P)
            check(42 <= qs < 50, "queue wait sum = started_at - created_at ~ 42 s (%s)" % qs)
            check(v("runnerd_job_queue_wait_seconds_bucket", le="30", **P) == 0 and
                  v("runnerd_job_queue_wait_seconds_bucket", le="60", **P) == 1,
                  "42 s lands in le=60, not le=30")
            for fam in ("runnerd_job_queue_wait_seconds", "runnerd_runner_startup_seconds",
                        "runnerd_job_duration_seconds"):
                check(fams[fam].type == "histogram", "%s is a histogram" % fam)
                check(v(fam + "_count", pool="idle-pool") == 0 and
                      v(fam + "_bucket", pool="idle-pool", le="+Inf") == 0,
                      "%s present and zero for the idle pool" % fam)
            gauges_total = [n for n, f in fams.items() if f.type == "gauge" and
                            n.endswith("_total")]
            check(not gauges_total, "no gauge ends in _total (%r)" % gauges_total)
            check("runnerd_all_queued_jobs" in fams and "runnerd_queued_jobs_total" not in fams,
                  "runnerd_all_queued_jobs replaces runnerd_queued_jobs_total")

            p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                               timeout=60)
            out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
            check(p.returncode == 0 and out == "",
                  "promtool check metrics: exit %d, %r" % (p.returncode, out[:2000]))

            # 2b. the poll alone (no webhook): a job created 100 s ago
            s.gh.jobs("mhist-org/app", opskit.X64, count=1, duration_ms=6000, created_ago_s=100)

            def waits():
                f = promcheck.parse(opskit.get(s.port, "/metrics")[2].decode())
                return promcheck.value(f, "runnerd_job_queue_wait_seconds_count", **P) == 2
            try:
                rdtest.wait_until(waits, 60, 0.3, "the poll-observed queue wait")
            except AssertionError as e:
                print("     %s" % e)
            f = promcheck.parse(opskit.get(s.port, "/metrics")[2].decode())
            c2 = promcheck.value(f, "runnerd_job_queue_wait_seconds_count", **P)
            s2 = promcheck.value(f, "runnerd_job_queue_wait_seconds_sum", **P)
            check(c2 == 2, "queue wait observed from the poll alone (count %s)" % c2)
            check(142 <= s2 < 160, "poll-observed wait ~100 s added (sum %s)" % s2)
            check(promcheck.value(f, "runnerd_job_queue_wait_seconds_bucket", le="120", **P) == 2,
                  "both waits in le=120")
            ok = not failures
        finally:
            s.close(dump=not ok)
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
