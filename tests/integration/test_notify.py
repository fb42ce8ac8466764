#!/usr/bin/env python3
"""systemd notify protocol, end to end: runnerd started with NOTIFY_SOCKET (a datagram socket
this test binds, path and abstract) and WATCHDOG_USEC sends READY=1 once running, STATUS=
lines, WATCHDOG=1 pings at half the interval, RELOADING=1 + MONOTONIC_USEC on SIGHUP then
READY=1 (also when the reload fails), STOPPING=1 on SIGTERM, and exits 0. WATCHDOG_PID of
another process disables the pings."""
import os
import signal
import sys
import time

import opskit
import rdtest
from notifysock import NotifySocket


def run_case(tmp, abstract):
    s = opskit.Setup(tmp, instance="notify", listen=False, secret=None,
                     targets=[{"repo": "o/a"}])
    ok = False
    try:
        s.gh.repos("o", ["a"])
        with NotifySocket(tmp, abstract=abstract) as ns:
            t0 = time.monotonic()
            rd = s.start(env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"})
            msg = ns.wait_for("READY=1", timeout=20)
            f = ns.fields(msg)
            assert "STATUS" in f or any("STATUS" in ns.fields(m) for m in ns.messages), \
                ns.messages
            statuses = [ns.fields(m)["STATUS"] for m in ns.messages if "STATUS" in ns.fields(m)]
            assert any("running" in st for st in statuses), statuses
            # Watchdog: every 200 ms; at least 4 in 1.5 s, and not absurdly many.
            n0 = ns.count("WATCHDOG=1")
            time.sleep(1.5)
            n1 = ns.count("WATCHDOG=1")
            assert 4 <= n1 - n0 <= 12, "WATCHDOG=1 pings in 1.5 s: %d" % (n1 - n0)

            # Successful reload: RELOADING=1 with MONOTONIC_USEC of CLOCK_MONOTONIC, then READY=1.
            before = time.monotonic()
            rd.signal(signal.SIGHUP)
            msg = ns.wait_for("RELOADING=1", timeout=10)
            f = ns.fields(msg)
            assert "MONOTONIC_USEC" in f, msg
            usec = int(f["MONOTONIC_USEC"])
            after = time.monotonic()
            assert before * 1e6 - 1e5 <= usec <= after * 1e6 + 1e5, (usec, before, after)
            ns.wait_for("READY=1", timeout=10)
            s.wait_log(r"reloaded: 1 pools, 1 targets")

            # Failed reload: still RELOADING then READY (the old config runs on), STATUS says so.
            good = open(rd.cfg_path).read()
            rd.write_config(good + "bogus_key: 1\n")
            rd.signal(signal.SIGHUP)
            ns.wait_for("RELOADING=1", timeout=10)
            msg = ns.wait_for("READY=1", timeout=10)
            assert "failed" in ns.fields(msg).get("STATUS", ""), msg
            rd.write_config(good)
            assert rd.alive()

            # SIGTERM: STOPPING=1, exit 0.
            rd.signal(signal.SIGTERM)
            ns.wait_for("STOPPING=1", timeout=10)
            code = rd.proc.wait(30)
            assert code == 0, code
            order = [m.split("\n")[0] for m in ns.messages if not m.startswith("WATCHDOG")]
            assert order.index("READY=1") < order.index("STOPPING=1"), order
            assert time.monotonic() - t0 < 60
        ok = True
    finally:
        s.close(dump=not ok)


def run_foreign_pid(tmp):
    """WATCHDOG_PID names another process: READY is sent, watchdog pings are not."""
    s = opskit.Setup(tmp, instance="notifypid", listen=False, secret=None,
                     targets=[{"repo": "o/a"}])
    ok = False
    try:
        s.gh.repos("o", ["a"])
        with NotifySocket(tmp) as ns:
            s.start(env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "200000",
                         "WATCHDOG_PID": str(os.getpid())})
            ns.wait_for("READY=1", timeout=20)
            time.sleep(0.8)
            assert ns.count("WATCHDOG=1") == 0, ns.messages
        ok = True
    finally:
        s.close(dump=not ok)


def main():
    for abstract in (False, True):
        with opskit.TempDir() as tmp:
            run_case(tmp, abstract)
        print("ok   notify protocol (%s socket)" % ("abstract" if abstract else "path"))
    with opskit.TempDir() as tmp:
        run_foreign_pid(tmp)
    print("ok   WATCHDOG_PID of another process: no pings")
    print("test_notify: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
