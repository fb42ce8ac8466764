#!/usr/bin/env python3
"""Issue 14 item 8: a workflow run whose status is `waiting` (one of its jobs waits for an
environment's approval) can hold a queued sibling job; GitHub lists that run under
`status=waiting` only, not under `queued` or `in_progress` (reported by ARC users:
actions/actions-runner-controller#2723). runnerd reads `status=waiting` runs too, and takes
their queued jobs as demand, never the waiting job itself.

rd_discover (the real client and poller) polls one repository with: a run `waiting` that
holds one queued job and one waiting job, a plain queued run, and a run that only waits.
The queued jobs of both runs are found; neither waiting job is. The old poller missed the
queued job of the waiting run."""
import json
import os
import subprocess
import sys

import rdtest

DISCOVER = os.path.join(rdtest.BUILD, "rd_discover")
LABELS = ["self-hosted", "linux", "x64"]


def main():
    with rdtest.TempDir() as tmp:
        gh = rdtest.FakeGitHub(tmp)
        try:
            gh.repos("wo", ["r"])
            # The fake's run of a queued job made with run_status "waiting" stays `waiting`.
            held = gh.jobs("wo/r", LABELS, count=1, status="queued",
                           run_status="waiting")["job_ids"][0]
            plain = gh.jobs("wo/r", LABELS)["job_ids"][0]
            waiting = gh.jobs("wo/r", LABELS, status="waiting", run_status="waiting")["job_ids"][0]
            runs = {r["id"]: r["status"] for r in gh.state().get("runs", [])}
            assert sorted(runs.values()) == ["queued", "waiting", "waiting"], runs
            cfg = rdtest.base_config(gh, "docker", [rdtest.pool("p", LABELS, "img")],
                                     [{"repo": "wo/r"}])
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(rdtest.to_yaml(cfg) + "\n")
            env = dict(os.environ, RD_TEST_TOKEN=rdtest.TOKEN, RUNNERD_MAX_REQUEST_RATE="0")
            p = subprocess.run(rdtest.wrap([DISCOVER, "-c", path, "--cycles", "1"]),
                               capture_output=True, text=True, env=env,
                               timeout=rdtest.scaled(60))
            assert p.returncode == 0, p.stderr[-3000:]
            found = set()
            for line in p.stdout.splitlines():
                obj = json.loads(line)
                if "job" in obj:
                    found.add(obj["job"])
                else:
                    assert obj["failed"] == 0, obj
            print("found %s; held %d, plain %d, waiting %d" % (sorted(found), held, plain,
                                                               waiting))
            assert held in found, "the queued job of a waiting run was missed"
            assert plain in found and waiting not in found, found
            listed = gh.stats()["by_path"].get("GET /repos/{o}/{r}/actions/runs", 0)
            assert listed == 3, "run lists read: %d (queued, in_progress, waiting)" % listed
        finally:
            gh.stop()
    print("test_waiting_run: OK")


if __name__ == "__main__":
    sys.exit(main())
