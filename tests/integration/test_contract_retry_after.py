#!/usr/bin/env python3
"""Contract audit (github-api.md section 4, retry algorithm: "(1) if retry-after is present,
wait that many seconds"): a 403 or 429 that carries Retry-After is a rate limit whatever its
message says; nothing is sent before Retry-After has passed. runnerd recognised a secondary
limit only by its message or documentation_url; a 403 with Retry-After and another message
(GitHub's texts drift: "[field] Exact wording can drift") was a plain auth error with a ~1 s
per-repository backoff, and the repository was asked again long before Retry-After.

A tiny API double answers the first runs request with 403 + Retry-After: 4 and a message
runnerd does not know, then normally; rd_discover runs cycles every 300 ms.

Then a 429 with an absurd Retry-After (20 digits): the wait is capped at an hour (it used to
be multiplied into a signed overflow, which the ASan+UBSan pass aborts on)."""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import rdtest

DISCOVER = os.path.join(rdtest.BUILD, "rd_discover")
RETRY_AFTER = 4


class _Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []  # (time, path)
    first = (403, str(RETRY_AFTER))  # the first answer's status and Retry-After

    def log_message(self, *a):
        pass

    def do_GET(self):
        _Api.seen.append((time.monotonic(), self.path))
        headers = [("x-ratelimit-limit", "5000"), ("x-ratelimit-remaining", "4000"),
                   ("x-ratelimit-reset", str(int(time.time()) + 3600)),
                   ("x-ratelimit-resource", "core")]
        if len(_Api.seen) == 1:
            status, body = _Api.first[0], {"message": "You are being throttled; slow down.",
                                           "documentation_url": "https://docs.github.com/rest"}
            headers.append(("Retry-After", _Api.first[1]))
        else:
            status, body = 200, {"total_count": 0, "workflow_runs": []}
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
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
                                     [{"repo": "o/a"}])
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(rdtest.to_yaml(cfg) + "\n")
            env = dict(os.environ, RD_TEST_TOKEN=rdtest.TOKEN, RUNNERD_MAX_REQUEST_RATE="0")
            p = subprocess.run(rdtest.wrap([DISCOVER, "-c", path, "--cycles", "20",
                                            "--interval-ms", "300", "--log-level", "debug"]),
                               capture_output=True, text=True, env=env,
                               timeout=rdtest.scaled(60))
            assert p.returncode == 0, p.stderr[-3000:]
            seen = list(_Api.seen)
            # The queued and in_progress run lists go out together: the 403'd one (the
            # first) asked again is what the 403 decided.
            t0, p0 = seen[0]
            later = [t for t, path in seen[1:] if path == p0]
            assert later, "asked once only: %r\n%s" % (seen, p.stderr[-2000:])
            gap = later[0] - t0
            assert gap >= RETRY_AFTER - 0.1, (
                "asked again %.1f s after a 403 with Retry-After: %d\n%s"
                % (gap, RETRY_AFTER, p.stderr[-2000:]))
            assert rdtest.TOKEN not in p.stderr

            _Api.seen = []
            _Api.first = (429, "9" * 20)
            d = subprocess.Popen(rdtest.wrap([DISCOVER, "-c", path, "--cycles", "1",
                                              "--log-level", "debug"]),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                 env=env)
            try:
                want = "429: holding all requests for 3600 s"
                got = ""
                deadline = time.monotonic() + rdtest.scaled(30)
                while want not in got and time.monotonic() < deadline:
                    line = d.stderr.readline()
                    if not line:
                        break
                    got += line
                assert want in got, "absurd Retry-After: want %r in\n%s" % (want, got[-2000:])
                # Its one cycle ends (the held poll counts as failed) and it exits 0; the
                # sanitizers' abort on the overflow would not.
                got += d.stderr.read()
                code = d.wait(rdtest.scaled(30))
                assert code == 0 and "runtime error" not in got, (
                    "rd_discover exit %r: %s" % (code, got[-2000:]))
            finally:
                d.kill()
                d.wait()
    finally:
        api.shutdown()
        api.server_close()
    print("test_contract_retry_after: OK")


if __name__ == "__main__":
    sys.exit(main())
