#!/usr/bin/env python3
"""Contract audit: workflow_job deliveries (DESIGN.md section 3, github-api.md section 6)
built from GitHub's published payloads, through a --dry-run daemon whose polling is slowed
to 10 min, so demand (/status jobs.queued) moves only with deliveries:
- `waiting` and `queued` with a deployment (status waiting) are not demand;
- `queued` is demand at once; `in_progress` and `completed` take it away;
- a wrong signature is refused (401) and changes nothing;
- a correctly signed delivery without X-GitHub-Delivery is still applied: the header is
  not part of what GitHub signs and the contract does not make it a condition (runnerd used
  to answer 400 and drop the job); only replay detection needs it."""
import json
import os
import sys
import time

import opskit
import rdtest

FIX = os.path.join(rdtest.SRC, "tests", "fixtures", "github")
REPO = "octo/app"


def payload(fixture, job_id, labels=opskit.X64):
    with open(os.path.join(FIX, "webhook-workflow_job-%s.json" % fixture)) as f:
        d = json.load(f)
    wj = d["workflow_job"]
    wj["id"] = job_id
    wj["run_id"] = job_id * 10
    wj["labels"] = list(labels)
    wj["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if d["action"] in ("queued", "waiting"):
        wj["runner_id"] = wj["runner_name"] = None
        wj["runner_group_id"] = wj["runner_group_name"] = None
    d["repository"]["name"] = "app"
    d["repository"]["full_name"] = REPO
    d["repository"]["owner"]["login"] = "octo"
    return json.dumps(d).encode()


def post(s, body, delivery=True, signature=None):
    headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/audit",
               "X-GitHub-Event": "workflow_job",
               "X-Hub-Signature-256": signature or opskit.sign(opskit.SECRET, body)}
    if delivery:
        headers["X-GitHub-Delivery"] = "d-%f" % time.time()
    st, _, data = opskit.request(s.port, "POST", "/webhook", body=body, headers=headers)
    return st


def queued(s):
    return opskit.get_json(s.port)["jobs"]["queued"]


def settle(s, want, what):
    rdtest.wait_until(lambda: queued(s) == want, 5, 0.05, what)
    time.sleep(0.3)
    assert queued(s) == want, "%s: queued %d, want %d" % (what, queued(s), want)


def main():
    with opskit.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="whc", poll_interval="10m", targets=[{"repo": REPO}])
        ok = False
        try:
            s.gh.repos("octo", ["app"])
            s.start(args=["--dry-run"])
            rdtest.wait_until(lambda: all(t.get("last_poll") for t in
                                          opskit.get_json(s.port)["targets"]),
                              20, 0.1, "the first poll")
            assert queued(s) == 0

            assert post(s, payload("waiting", 101)) in (200, 202)
            assert post(s, payload("queued-with-deployment", 102)) in (200, 202)
            settle(s, 0, "waiting / queued-with-deployment are not demand")

            bad = payload("queued", 103)
            assert post(s, bad, signature=opskit.sign("wrong secret", bad)) == 401
            settle(s, 0, "a wrong signature changes nothing")

            assert post(s, payload("queued", 104)) == 200
            settle(s, 1, "queued is demand at once")

            st = post(s, payload("queued", 105), delivery=False)
            assert 200 <= st < 300, "signed queued delivery without X-GitHub-Delivery -> %d" % st
            settle(s, 2, "a signed delivery without X-GitHub-Delivery is applied")

            assert post(s, payload("in_progress", 104)) == 200
            settle(s, 1, "in_progress takes the job out of demand")
            assert post(s, payload("completed", 105), delivery=False) == 200
            settle(s, 0, "completed takes the job out of demand")
            # the waiting job approved: queued now
            assert post(s, payload("queued", 101)) == 200
            settle(s, 1, "a waiting job is demand once queued")
            ok = True
        finally:
            s.close(dump=not ok)
    print("test_contract_webhook: OK")


if __name__ == "__main__":
    sys.exit(main())
