#!/usr/bin/env python3
"""Issue 17 F8: an org's repository listing is checked against the org. A listing of
`acme` that names `victim/x` (another owner), `acme/y/z` (a name with a slash) or
an entry whose full_name disagrees with its name must not make runnerd poll
those: they are dropped and logged; acme's own repositories are polled.

A tiny API double serves the listing and empty run lists and records every path;
rd_discover (the real client and poller) runs one cycle over the org target. The
old poller polled /repos/victim/x."""
import http.server
import json
import os
import subprocess
import sys
import threading

import rdtest

DISCOVER = os.path.join(rdtest.BUILD, "rd_discover")
LISTING = [
    {"name": "a", "full_name": "acme/a"},
    {"name": "B", "full_name": "ACME/b"},           # case differs: still acme's
    {"name": "x", "full_name": "victim/x"},         # another owner
    {"name": "y/z", "full_name": "acme/y/z"},       # a slash in the name
    {"name": "c", "full_name": "acme/other"},       # full_name disagrees with name
    {"name": "d", "full_name": "acmeinc/d"},        # an org whose name starts like acme's
]


class _Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        _Api.seen.append(path)
        if path == "/orgs/acme/repos":
            status, body = 200, LISTING
        elif path.endswith("/actions/runs"):
            status, body = 200, {"total_count": 0, "workflow_runs": []}
        else:
            status, body = 404, {"message": "Not Found"}
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (("x-ratelimit-limit", "5000"), ("x-ratelimit-remaining", "4000"),
                     ("x-ratelimit-reset", "9999999999"), ("x-ratelimit-resource", "core"),
                     ("Content-Type", "application/json"), ("Content-Length", str(len(data)))):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def main():
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        with rdtest.TempDir() as tmp:
            class _GH:
                url = "http://127.0.0.1:%d" % api.server_port
            cfg = rdtest.base_config(_GH, "docker", [rdtest.pool("p", ["self-hosted"], "img")],
                                     [{"org": "acme"}])
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(rdtest.to_yaml(cfg) + "\n")
            env = dict(os.environ, RD_TEST_TOKEN=rdtest.TOKEN, RUNNERD_MAX_REQUEST_RATE="0")
            p = subprocess.run(rdtest.wrap([DISCOVER, "-c", path, "--cycles", "1"]),
                               capture_output=True, text=True, env=env,
                               timeout=rdtest.scaled(60))
            assert p.returncode == 0, p.stderr[-3000:]
            polled = sorted({s.split("/actions/")[0] for s in _Api.seen
                             if s.startswith("/repos/")})
            print("polled: %s" % polled)
            assert polled == ["/repos/ACME/b", "/repos/acme/a"], polled
            assert "not of acme" in p.stderr and "victim/x" in p.stderr, p.stderr[-2000:]
            summary = json.loads(p.stdout.splitlines()[-1])
            assert summary["failed"] == 0, summary
    finally:
        api.shutdown()
        api.server_close()
    print("test_org_listing: OK")


if __name__ == "__main__":
    sys.exit(main())
