#!/usr/bin/env python3
"""Per-target poll errors carry the real reason (issue 16 item 4; runnerd +
fake GitHub + fake docker):

1. GitHub answers the repository's runs listing 403 with a message: /status
   targets[].last_error and the WARN "poll failed" line say "HTTP 403: <GitHub's
   message>" (the old code said "permission denied" or "input/output error");
2. GitHub unreachable (the fake stopped): last_error carries curl's words
   (connection refused / couldn't connect), not just "input/output error".
"""
import re
import sys

import opskit
import rdtest

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def target_error(s):
    return opskit.get_json(s.port)["targets"][0].get("last_error") or ""


def main():
    with opskit.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="perr", secret=None, targets=[{"repo": "perr-org/app"}])
        ok = False
        try:
            s.gh.repos("perr-org", ["app"])
            s.gh.fault(kind="403", path="/repos/perr-org/app/actions/runs", count=-1)
            rd = s.start()
            err = rdtest.wait_until(lambda: target_error(s), 30, 0.2, "a target error")
            check(err == "HTTP 403: Injected fault 403",
                  "last_error is GitHub's status and message (%r)" % err)
            check(re.search(r"WARN poller: perr-org/app: poll failed: HTTP 403: Injected fault 403",
                            rd.logs()), "the poll failure is logged with GitHub's words")
            s.gh.call("DELETE", "/_control/faults")
            rdtest.wait_until(lambda: not target_error(s), 60, 0.2, "the target to recover")
            s.gh.stop()
            err = rdtest.wait_until(lambda: target_error(s), 90, 0.2, "a transport error")
            check(re.search(r"connect|refused", err, re.I) is not None and err != "input/output error",
                  "last_error carries curl's words for an unreachable API (%r)" % err)
            ok = not failures
        finally:
            s.close(dump=not ok)
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
