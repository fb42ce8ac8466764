#!/usr/bin/env python3
"""Self-test of the helpers the daemon's integration tests use for the listener and
systemd: promcheck (Prometheus exposition checker) and notifysock (fake NOTIFY_SOCKET)."""
import os
import socket
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import promcheck  # noqa: E402
from notifysock import NotifySocket  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


GOOD = """# HELP runnerd_build_info Always 1.
# TYPE runnerd_build_info gauge
runnerd_build_info{version="0.1.0",instance="a\\"b\\\\c\\nd"} 1
# HELP runnerd_runners Runners by pool and state.
# TYPE runnerd_runners gauge
runnerd_runners{pool="linux-x64",state="busy"} 4
runnerd_runners{pool="linux-x64",state="idle"} 0
# HELP runnerd_runner_starts_total Runners started.
# TYPE runnerd_runner_starts_total counter
runnerd_runner_starts_total{pool="linux-x64"} 17
# HELP runnerd_poll_duration_seconds Poll cycle.
# TYPE runnerd_poll_duration_seconds histogram
runnerd_poll_duration_seconds_bucket{le="0.05"} 2
runnerd_poll_duration_seconds_bucket{le="0.1"} 2
runnerd_poll_duration_seconds_bucket{le="+Inf"} 4
runnerd_poll_duration_seconds_sum 120.36
runnerd_poll_duration_seconds_count 4
"""

BAD = {
    "no TYPE": "runnerd_x 1\n",
    "no trailing newline": "# HELP x h\n# TYPE x gauge\nx 1",
    "bad escape": '# HELP x h\n# TYPE x gauge\nx{a="\\t"} 1\n',
    "unterminated": '# HELP x h\n# TYPE x gauge\nx{a="b} 1\n',
    "duplicate series": "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",
    "bad value": "# HELP x h\n# TYPE x gauge\nx one\n",
    "negative counter": "# HELP x h\n# TYPE x counter\nx -1\n",
    "TYPE after samples": "# HELP x h\n# TYPE x gauge\nx 1\n# TYPE x gauge\n",
    "not cumulative": "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                      "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
    "+Inf != count": "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
    "no +Inf": "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
}


def main():
    fams = promcheck.parse(GOOD)
    check(promcheck.value(fams, "runnerd_runners", pool="linux-x64", state="busy") == 4,
          "promcheck parses a good exposition and finds a labelled value")
    check(promcheck.value(fams, "runnerd_poll_duration_seconds_count") == 4, "histogram _count")
    check(promcheck.value(fams, "runnerd_build_info", version="0.1.0",
                          instance='a"b\\c\nd') == 1, "label escapes decoded")
    for what, text in BAD.items():
        try:
            promcheck.parse(text)
            check(False, "promcheck rejects: " + what)
        except ValueError:
            check(True, "promcheck rejects: " + what)

    with tempfile.TemporaryDirectory() as tmp:
        for abstract in (False, True):
            with NotifySocket(tmp, abstract=abstract) as ns:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                addr = "\0" + ns.path[1:] if ns.path.startswith("@") else ns.path
                s.sendto(b"READY=1\nSTATUS=polling", addr)
                s.sendto(b"RELOADING=1\nMONOTONIC_USEC=123", addr)
                s.sendto(b"READY=1", addr)
                s.sendto(b"WATCHDOG=1", addr)
                s.close()
                m = ns.wait_for("READY=1", 2)
                check(NotifySocket.fields(m).get("STATUS") == "polling",
                      "notifysock (%s): first READY with STATUS" % ("abstract" if abstract else "path"))
                m = ns.wait_for("RELOADING=1", 2)
                check("MONOTONIC_USEC=123" in m, "notifysock: RELOADING message whole")
                ns.wait_for("READY=1", 2)
                check(ns.count("WATCHDOG=1") == 1, "notifysock: count")
                try:
                    ns.wait_for("STOPPING=1", 0.2)
                    check(False, "notifysock: wait_for times out")
                except AssertionError:
                    check(True, "notifysock: wait_for times out")

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
