#!/usr/bin/env python3
"""Issue 17 F6: a runner's output reaches the log within a budget of lines a minute.

A "chatty" container (the docker double) prints 200,000 lines once connected, then runs
its job. runnerd logs at most 600 of that runner's lines in a minute and then one line
saying how many it suppressed (at the latest when the runner exits); the job is served
as usual, and lines logged plus lines suppressed add up to what the container printed
(the 200,000 plus the few lines of the runner itself)."""
import re
import sys

import opskit
import rdtest

X64 = opskit.X64
LINES = 200000
BUDGET = 600


def main():
    with opskit.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="chatty", targets=[{"repo": "octo/app"}],
                         pools=[rdtest.pool("linux-x64", X64, "fake:chatty-x64")],
                         extra_env={"FAKE_DOCKER_CHATTY_LINES": str(LINES)})
        ok = False
        try:
            s.gh.repos("octo", ["app"])
            s.start()
            s.gh.jobs("octo/app", X64, count=1, duration_ms=500)
            rdtest.wait_until(lambda: all(j["status"] == "completed" for j in s.gh.state()["jobs"]),
                              90, 0.2, "the job to be served")
            m = s.wait_log(r"runner: (runnerd-chatty-\S+): (\d+) lines of output suppressed "
                           r"\(over (\d+) lines a minute\)", timeout=60)
            name, suppressed, budget = m.group(1), int(m.group(2)), int(m.group(3))
            rdtest.wait_until(lambda: "%s: done" % name in s.rd.logs() or
                              "%s: exited" % name in s.rd.logs(), 30, 0.2, "the runner to exit")
            logs = s.rd.logs()
            logged = len(re.findall(r"^.*runner: %s: (?!\d+ lines of output suppressed)" %
                                    re.escape(name), logs, re.M))
            reports = len(re.findall(r"runner: %s: \d+ lines of output suppressed" %
                                     re.escape(name), logs))
            total_lines = len(logs.splitlines())
            print("container printed %d lines and the runner's own; runnerd logged %d of them, "
                  "suppressed %d (%d report line(s)); runnerd's whole log: %d lines"
                  % (LINES, logged, suppressed, reports, total_lines))
            assert budget == BUDGET, budget
            assert logged <= BUDGET, "%d lines of one runner logged (budget %d)" % (logged, BUDGET)
            assert reports == 1, reports
            # The runner's own lines (Connected, Listening, Running job, completed) come too.
            assert LINES <= logged + suppressed <= LINES + 20, (logged, suppressed)
            assert total_lines < 2000, "runnerd's log has %d lines" % total_lines
            assert s.rd.stop(30) == 0
            ok = True
        finally:
            s.close(dump=not ok)
    print("test_runner_log_budget: OK")


if __name__ == "__main__":
    sys.exit(main())
