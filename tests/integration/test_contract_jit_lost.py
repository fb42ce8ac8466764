#!/usr/bin/env python3
"""Contract audit (github-api.md section 3.1): a JIT registration whose container never
starts stays offline on GitHub for a day, "so the daemon should DELETE it itself"; a 409
on generate-jitconfig "can happen after a retry whose first attempt actually succeeded".

Here generate-jitconfig answers after runnerd's 20 s request timeout (the fake's `slow`
fault: it sleeps 25 s, then registers the runner), so runnerd never learns the runner id of a
registration that GitHub made. The job is served by the next runner. runnerd used to leave
that registration offline for good (no runner of the scope was alive any more, so its runner
list was never read again); it must find and delete it."""
import sys
import time

import e2eutil
import rdtest

X64 = ["self-hosted", "linux", "x64"]


def main():
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, "audit-jit")
        try:
            gh = sc.gh
            gh.repos("o", ["a"])
            gh.jobs("o/a", X64, count=1, duration_ms=300)
            gh.fault(path="generate-jitconfig", method="POST", kind="slow", delay_ms=25000,
                     count=1)
            cfg = sc.config([rdtest.pool("lx", X64, "fake:x64")], [{"repo": "o/a"}],
                            shutdown_grace="5s")
            cfg["github"]["poll_interval"] = "2s"
            rd = sc.runnerd(cfg)

            def done():
                st = sc.state()
                return all(j["status"] == "completed" for j in st["jobs"]) and st
            rdtest.wait_until(done, 60, 0.2, "the job to be served after the lost registration")
            # The fake registers the slow request's runner 5 s after runnerd gave up on it,
            # when the runner that served the job is gone.
            jits = lambda: e2eutil.events_of(sc.state(), "jit_created")  # noqa: E731
            rdtest.wait_until(lambda: len(jits()) >= 2, 20, 0.1, "the late registration")
            rdtest.wait_until(lambda: not sc.state()["runners"], 30, 0.2,
                              "runnerd to delete the registration it never heard of")
            assert "timed out" in sc.logs() or "Timeout" in sc.logs(), "no timeout seen"
            assert rd.stop() == 0
            sc.check_clean()
        except Exception:
            e2eutil.dump_on_failure(sc)
            raise
        finally:
            sc.close()
    print("test_contract_jit_lost: OK")


if __name__ == "__main__":
    sys.exit(main())
