#!/usr/bin/env python3
"""runnerctl finds the daemon the way runnerd is told where to listen: `runnerctl -c FILE`
(or --config FILE / --config=FILE) reads the config's `listen:`; --url wins over it; a
config without `listen:` or that cannot be read exits 1 with a message naming the file.
Served by a tiny HTTP server with the canned /status document (docs/status.md)."""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rdtest  # noqa: E402

SRC = os.environ.get("RUNNERD_SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("RUNNERD_BUILD") or os.path.join(SRC, "build")
RUNNERCTL = os.environ.get("RUNNERCTL_BIN") or os.path.join(BUILD, "runnerctl")
FIXTURE = os.path.join(SRC, "tests", "fixtures", "status", "status-example.json")


class Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        code = 200 if self.path == "/status" else 404
        body = Handler.body if code == 200 else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def ctl(*args):
    env = dict(os.environ)
    env.pop("RUNNERCTL_URL", None)
    p = subprocess.run(rdtest.wrap([RUNNERCTL] + list(args)), capture_output=True, text=True,
                       timeout=rdtest.scaled(30), env=env)
    return p.returncode, p.stdout, p.stderr


def main():
    with open(FIXTURE, "rb") as f:
        Handler.body = f.read()
    doc = json.loads(Handler.body)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    tmp = tempfile.mkdtemp(prefix="rdctl-")
    try:
        cfg = os.path.join(tmp, "runnerd.yaml")
        with open(cfg, "w") as f:
            f.write("github:\n  token_env: X\nlisten: 127.0.0.1:%d\npools: []\n" % port)
        for args in (["-c", cfg], ["--config", cfg], ["--config=" + cfg]):
            code, out, err = ctl(*(args + ["pools"]))
            assert code == 0, (args, code, err)
            assert doc["pools"][0]["name"] in out, out
        code, out, err = ctl("-c", cfg, "runners", "--json")
        assert code == 0 and json.loads(out) == doc["runners"], (code, out, err)
        # --url wins over -c
        code, out, err = ctl("-c", cfg, "--url", "http://127.0.0.1:1", "status")
        assert code == 1 and "127.0.0.1:1" in err, (code, err)
        # no listen: / unreadable
        nolisten = os.path.join(tmp, "nolisten.yaml")
        with open(nolisten, "w") as f:
            f.write("pools: []\n")
        code, out, err = ctl("-c", nolisten, "status")
        assert code == 1 and "nolisten.yaml" in err and "listen" in err, (code, err)
        code, out, err = ctl("-c", os.path.join(tmp, "missing.yaml"), "status")
        assert code == 1 and "missing.yaml" in err, (code, err)
    finally:
        srv.shutdown()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    print("test_contract_runnerctl: OK")


if __name__ == "__main__":
    sys.exit(main())
