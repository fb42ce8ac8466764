#!/usr/bin/env python3
"""Issue 14 item 1: a steady poll does not ask again for the jobs of a queued run that has not
changed, and still sees every change that matters.

GitHub marks a run in_progress as soon as one of its jobs starts and completed when it ends or
is cancelled, and makes a job that needs another only once that one has finished: while a run
is listed under `status=queued` unchanged (the list answers 304), jobs that were all queued when
last read still are. runnerd then takes them from its cache instead of asking (bench/cycle's
steady poll: four requests instead of five). Any other run is asked every poll.

rd_discover (the real client and poller) polls one repository, each cycle when the test has made
its changes (--step), with:
  A: a queued run of two queued jobs: its jobs are asked once, then reused;
  B: a queued run whose one job waits for an environment's approval: asked every poll. Its job
     is approved between cycles 2 and 3; the fake leaves the run entry as it was (the list
     still answers 304), and cycle 3 must find the job;
  C: a queued run with no job yet (GitHub makes a run's jobs after the run): asked every poll;
     a job is added to it between cycles 2 and 3, its entry unchanged, and cycle 3 must find it;
  then one of A's jobs is cancelled (the run turns in_progress: it leaves the queued list) and
  cycle 4 must drop that job and keep the other.
Every cycle must report exactly the queued jobs the fake holds."""
import json
import os
import subprocess
import sys

import rdtest

DISCOVER = os.path.join(rdtest.BUILD, "rd_discover")
LABELS = ["self-hosted", "linux", "x64"]
JOBS_PATH = "GET /repos/{o}/{r}/actions/runs/{id}/jobs"


def read_cycle(p):
    """The queued jobs and the summary line of the next cycle rd_discover prints."""
    found = set()
    while True:
        line = p.stdout.readline()
        assert line, "rd_discover ended early: %s" % p.stderr.read()[-3000:]
        obj = json.loads(line)
        if "job" in obj:
            found.add(obj["job"])
        else:
            return found, obj


def main():
    with rdtest.TempDir() as tmp:
        gh = rdtest.FakeGitHub(tmp)
        p = None
        try:
            gh.repos("wo", ["r"])
            a1, a2 = gh.jobs("wo/r", LABELS, count=2)["job_ids"]
            b = gh.jobs("wo/r", LABELS, status="waiting", run_status="queued")["job_ids"][0]
            run_c = gh.jobs("wo/r", LABELS, count=0)["run_id"]
            runs = sorted(r["status"] for r in gh.state().get("runs", []))
            assert runs == ["queued", "queued", "queued"], runs
            cfg = rdtest.base_config(gh, "docker", [rdtest.pool("p", LABELS, "img")],
                                     [{"repo": "wo/r"}])
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(rdtest.to_yaml(cfg) + "\n")
            env = dict(os.environ, RD_TEST_TOKEN=rdtest.TOKEN, RUNNERD_MAX_REQUEST_RATE="0")
            # --step: the next cycle starts when the test says so (after its changes), however
            # slowly a loaded machine runs the test.
            p = subprocess.Popen(rdtest.wrap([DISCOVER, "-c", path, "--cycles", "4",
                                              "--interval-ms", "0", "--step"]),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env)
            asked = []

            def cycle(n, want):
                found, summary = read_cycle(p)
                asked.append(gh.stats()["by_path"].get(JOBS_PATH, 0))
                print("cycle %d: found %s, jobs lists asked %d so far, reused %d" % (
                    n, sorted(found), asked[-1], summary["jobs_reused"]))
                assert summary["failed"] == 0, summary
                assert found == want, "cycle %d found %s, the fake holds %s queued" % (
                    n, sorted(found), sorted(want))
                return summary

            def next_cycle():
                p.stdin.write("\n")
                p.stdin.flush()

            cycle(1, {a1, a2})
            assert asked[0] == 3, "cycle 1 asks every run's jobs: %d" % asked[0]
            next_cycle()
            s2 = cycle(2, {a1, a2})
            assert asked[1] - asked[0] == 2, \
                "cycle 2 asks B's and C's jobs only (A unchanged, all queued): %d" % (
                    asked[1] - asked[0])
            assert s2["jobs_reused"] == 1, s2
            # B's job is approved and C gets its job; both runs stay queued, their entries
            # unchanged.
            gh.call("POST", "/_control/jobs/%d" % b, {"status": "queued"})
            c1 = gh.jobs("wo/r", LABELS, run_id=run_c)["job_ids"][0]
            next_cycle()
            s3 = cycle(3, {a1, a2, b, c1})
            assert asked[2] - asked[1] == 2, "cycle 3 asks B and C: %d" % (asked[2] - asked[1])
            assert s3["jobs_reused"] == 2, s3
            # A's first job is cancelled: A turns in_progress and leaves the queued list, which
            # answers 200 again: every run is asked.
            gh.call("POST", "/_control/jobs/%d" % a1, {"status": "cancelled"})
            next_cycle()
            cycle(4, {a2, b, c1})
            assert asked[3] - asked[2] == 3, \
                "cycle 4 asks A (now in_progress), B and C: %d" % (asked[3] - asked[2])
            assert p.wait(rdtest.scaled(30)) == 0, p.stderr.read()[-3000:]
        finally:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
            gh.stop()
    print("test_poll_reuse: OK")


if __name__ == "__main__":
    sys.exit(main())
