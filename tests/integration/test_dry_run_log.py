#!/usr/bin/env python3
"""`runnerd --dry-run` (the daemon, not --once) decides on every pass (a 1 s tick, every
poll) but logs its plan only when the plan changes: 2 queued jobs give one
`plan: ... start 2 (dry run)` line however long it runs; a third job gives one
`start 3` line; nothing is ever started (no registration, no docker call)."""
import re
import sys
import time

import opskit
import rdtest

REPO = "octo/app"
PLAN = re.compile(r"INFO sched: plan: repos/octo/app pool linux-x64: demand (\d+) supply 0 "
                  r"start (\d+) \(dry run\)\n")


def plans(s):
    return [(int(a), int(b)) for a, b in PLAN.findall(s.rd.logs())]


def main():
    with opskit.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="dry", secret=None, targets=[{"repo": REPO}])
        ok = False
        try:
            s.gh.repos("octo", ["app"])
            s.gh.jobs(REPO, opskit.X64, count=2)
            s.start(args=["--dry-run"])
            rdtest.wait_until(lambda: plans(s), 20, 0.1, "the dry run's plan line")
            time.sleep(4)  # 4 ticks and ~4 polls with the same plan
            assert plans(s) == [(2, 2)], "one line for an unchanged plan: %r" % plans(s)
            s.gh.jobs(REPO, opskit.X64, count=1)
            rdtest.wait_until(lambda: len(plans(s)) >= 2, 20, 0.1, "the changed plan")
            time.sleep(3)
            assert plans(s) == [(2, 2), (3, 3)], "a line per change: %r" % plans(s)
            st = s.gh.state()
            assert not st["runners"] and not [e for e in st["events"] if e["kind"] == "jit_created"]
            assert s.rd.stop(30) == 0
            ok = True
        finally:
            s.close(dump=not ok)
    print("test_dry_run_log: OK")


if __name__ == "__main__":
    sys.exit(main())
