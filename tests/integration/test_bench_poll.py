#!/usr/bin/env python3
"""bench/poll.py's verdict, with the discovery runs replaced by fixed rows.

Issue 3's targets (CPU per cycle < 0.5 s, peak RSS < 16 MiB) are for 1000
repositories: a 5000-repository row over them is reported, not a failure; a
1000-repository row over them, or a failed target in any row, is.
Runs no daemon and no fake GitHub (a few milliseconds).
"""
import contextlib
import io
import os
import sys

SRC = os.environ.get("RUNNERD_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("RUNNERD_BUILD", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "bench"))
import poll  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def row(n, cycle, cpu, rss, failed=0):
    return {"repos": n, "cycle": cycle, "wall": cpu * 3, "cpu": cpu, "requests": 2 * n,
            "not_modified": 0 if cycle == "cold" else 2 * n, "jobs": n // 25, "failed": failed,
            "rss": rss}


def verdict(figures, sizes):
    """Exit status of poll.main with run() answering figures[n] for each size."""
    saved_run, saved_argv = poll.run, sys.argv
    poll.run = lambda build, n: (figures[n], 1.0)
    sys.argv = ["poll.py", "--build", BUILD, "--repos", sizes]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            rc = poll.main()
    finally:
        poll.run, sys.argv = saved_run, saved_argv
    return rc, out.getvalue()


def main():
    if not os.path.exists(os.path.join(BUILD, "rd_discover")):
        print("FAIL: %s/rd_discover is not built" % BUILD)
        return 1
    good = {100: [row(100, "cold", 0.05, 12.9), row(100, "warm", 0.02, 12.9)],
            1000: [row(1000, "cold", 0.34, 14.5), row(1000, "warm", 0.17, 14.5)],
            5000: [row(5000, "cold", 1.65, 18.6), row(5000, "warm", 1.48, 19.1)]}
    rc, out = verdict(good, "100,1000,5000")
    check(rc == 0, "5000 repos over the 1000-repo targets: reported, exit 0 (%d)" % rc)
    check("5000  warm" in out and ": met" in out, "5000-repo rows printed, targets met")

    rc, _ = verdict(good, "5000")
    check(rc == 0, "5000 repos alone: exit 0 (%d)" % rc)

    slow = dict(good)
    slow[1000] = [row(1000, "cold", 0.34, 14.5), row(1000, "warm", 0.6, 14.5)]
    rc, out = verdict(slow, "100,1000,5000")
    check(rc == 1 and "NOT met" in out, "1000 repos at 0.6 s CPU: exit 1 (%d)" % rc)

    fat = dict(good)
    fat[1000] = [row(1000, "cold", 0.34, 16.5), row(1000, "warm", 0.17, 16.5)]
    rc, _ = verdict(fat, "1000")
    check(rc == 1, "1000 repos at 16.5 MiB: exit 1 (%d)" % rc)

    broken = dict(good)
    broken[5000] = [row(5000, "cold", 1.65, 18.6), row(5000, "warm", 1.48, 19.1, failed=1)]
    rc, _ = verdict(broken, "100,1000,5000")
    check(rc == 1, "a failed target in the 5000-repo run: exit 1 (%d)" % rc)

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
