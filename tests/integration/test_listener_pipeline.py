#!/usr/bin/env python3
"""Issue 17 F1 against the daemon: a client that pipelines 4 MiB of `GET /metrics` on one
connection and never reads the answers leaves runnerd's memory bounded (the red-team run
saw RSS go from 12.9 MB to 585 MB). runnerd's VmRSS may grow by at most 48 MiB while the
client sends for a few seconds, and /healthz keeps answering meanwhile and after."""
import socket
import sys
import time

import opskit
import rdtest

TOTAL = 4 << 20
GROWTH_MAX = 48 << 20


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    with opskit.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="pipe", targets=[{"repo": "octo/app"}])
        ok = False
        try:
            s.gh.repos("octo", ["app"])
            s.start()
            pid = s.rd.proc.pid
            if rdtest.WRAPPER:
                # Under memcheck the process is valgrind's, its RSS valgrind's shadow memory.
                print("note runnerd under %s: its RSS is valgrind's; the bound is checked in "
                      "the plain and sanitizer passes" % rdtest.WRAPPER[0])
            time.sleep(1.0)
            before = rss(pid)
            one = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
            data = one * (TOTAL // len(one))
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            c.connect(("127.0.0.1", s.port))
            c.setblocking(False)
            sent, peak = 0, before
            t0 = time.monotonic()
            while time.monotonic() - t0 < rdtest.scaled(6):
                if sent < len(data):
                    try:
                        sent += c.send(data[sent:sent + 65536])
                    except BlockingIOError:
                        time.sleep(0.01)
                else:
                    time.sleep(0.05)
                peak = max(peak, rss(pid))
            st, _, _ = opskit.get(s.port, "/healthz", timeout=10)
            growth = peak - before
            print("sent %d of %d bytes of pipelined GET /metrics, none read; runnerd RSS "
                  "%.1f MB -> peak %.1f MB (+%.1f MB); /healthz meanwhile: %d"
                  % (sent, len(data), before / 1e6, peak / 1e6, growth / 1e6, st))
            assert st == 200, st
            if not rdtest.WRAPPER:
                assert growth <= GROWTH_MAX, "RSS grew by %.1f MB" % (growth / 1e6)
            c.close()
            rdtest.wait_until(lambda: opskit.get(s.port, "/healthz")[0] == 200, 10, 0.1,
                              "/healthz after the client left")
            assert s.rd.stop(30) == 0
            ok = True
        finally:
            s.close(dump=not ok)
    print("test_listener_pipeline: OK")


if __name__ == "__main__":
    sys.exit(main())
