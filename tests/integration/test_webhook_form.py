#!/usr/bin/env python3
"""Issue 14 item 4: webhooks in GitHub's default content type.

A hook created with GitHub's defaults delivers `Content-Type:
application/x-www-form-urlencoded` with the body `payload=<the JSON, URL-encoded>`, and
X-Hub-Signature-256 is the HMAC of that raw form body. runnerd (polling slowed to 10 min,
so demand comes from deliveries) accepts such a delivery of GitHub's published queued
payload like the JSON one: 200 "accepted", a runner starts at once and serves the job.
A form whose signature is over the JSON inside it is refused (401), and a form without a
payload field is 400; neither starts anything. The old binary answers the form 400."""
import sys
import time
import urllib.parse
import uuid

import opskit
import rdtest

SECRET = "It's a Secret to Everybody"
FORM = "application/x-www-form-urlencoded"


def deliver_form(port, body, signature, content_type=FORM):
    headers = {"Content-Type": content_type, "User-Agent": "GitHub-Hookshot/test",
               "X-GitHub-Event": "workflow_job", "X-GitHub-Delivery": str(uuid.uuid4()),
               "X-Hub-Signature-256": signature}
    st, _, data = opskit.request(port, "POST", "/webhook", body=body, headers=headers)
    return st, data.decode("utf-8", "replace").strip()


def nruns(s):
    return len(opskit.docker_calls(s.state_dir, "run"))


def main():
    with opskit.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="whform", secret=SECRET, poll_interval="10m",
                         targets=[{"repo": "octo/app"}])
        ok = False
        try:
            s.gh.repos("octo", ["app"])
            s.start()
            rdtest.wait_until(lambda: all(t.get("last_poll") for t in
                                          opskit.get_json(s.port)["targets"]),
                              20, 0.1, "the first poll")
            job = s.gh.jobs("octo/app", opskit.X64, count=1, duration_ms=300)
            jid, rid = job["job_ids"][0], job["run_id"]
            payload = opskit.queued_payload("octo/app", jid, rid, opskit.X64)
            form = ("payload=" + urllib.parse.quote_plus(payload.decode())).encode()

            # Refused forms change nothing.
            st, msg = deliver_form(s.port, form, opskit.sign(SECRET, payload))
            assert st == 401, "form signed over its JSON: %d %s" % (st, msg)
            nopayload = b"other=" + form[len(b"payload="):]
            st, msg = deliver_form(s.port, nopayload, opskit.sign(SECRET, nopayload))
            assert st == 400, "form without payload: %d %s" % (st, msg)
            time.sleep(1.0)
            assert nruns(s) == 0, "a refused form started a runner"

            # GitHub's default: the form, signed over the raw form body.
            t0 = time.monotonic()
            st, msg = deliver_form(s.port, form, opskit.sign(SECRET, form),
                                   content_type=FORM + "; charset=utf-8")
            print("form delivery of the queued payload: %d %s" % (st, msg))
            assert st == 200 and msg == "accepted", (st, msg)
            rdtest.wait_until(lambda: nruns(s) == 1, 20, 0.05, "a runner for the delivered job")
            print("runner spawned %.2f s after the form delivery" % (time.monotonic() - t0))
            rdtest.wait_until(lambda: all(j["status"] == "completed"
                                          for j in s.gh.state()["jobs"]),
                              60, 0.2, "the job to be served")
            assert nruns(s) == 1, "%d runners for one job" % nruns(s)
            assert s.rd.stop(30) == 0
            ok = True
        finally:
            s.close(dump=not ok)
    print("test_webhook_form: OK")


if __name__ == "__main__":
    sys.exit(main())
