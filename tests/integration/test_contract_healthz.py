#!/usr/bin/env python3
"""Contract audit (issue 5): /healthz is 200 only while the loop is alive and the last
discovery cycle is recent. With GitHub answering 500 to every poll, /healthz turns 503
(reason "polls failing") within 3 poll intervals (at least 15 s), and the daemon keeps
running (it turns 200 again with the next successful poll: the same condition). A target whose polls succeed keeps
it 200 even when another target keeps failing."""
import sys
import time

import opskit
import rdtest


def health(s):
    st, _, body = opskit.get(s.port, "/healthz", timeout=5)
    return st, body.decode("utf-8", "replace").strip()


def main():
    with opskit.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="hz", secret=None,
                         targets=[{"repo": "octo/app"}, {"repo": "octo/gone"}])
        ok = False
        try:
            s.gh.repos("octo", ["app"])  # octo/gone does not exist: its polls fail (404)
            s.start()
            rdtest.wait_until(lambda: health(s)[0] == 200, 20, 0.2, "/healthz 200")
            # one failing target out of two: still healthy
            assert health(s)[0] == 200, health(s)
            s.gh.fault(path=r"^/repos/", kind=500, count=-1)
            t0 = time.monotonic()
            st = rdtest.wait_until(lambda: health(s)[0] == 503 and health(s), 45, 0.5,
                                   "/healthz 503 while every poll fails")
            took = time.monotonic() - t0
            assert "polls failing" in st[1], st
            assert s.rd.alive()
            print("503 after %.1fs of failing polls" % took)
            assert s.rd.stop(30) == 0
            ok = True
        finally:
            s.close(dump=not ok)
    print("test_contract_healthz: OK")


if __name__ == "__main__":
    sys.exit(main())
