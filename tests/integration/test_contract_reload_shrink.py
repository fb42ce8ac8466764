#!/usr/bin/env python3
"""Contract audit (DESIGN.md section 3, Signals): a SIGHUP with a broken file logs every
error at ERROR with file:line:col and keeps the old config; a SIGHUP that shrinks a pool
drains it.
Three warm idle runners (min_idle 3, idle_timeout 10 min); a reload lowers max_runners to 1:
the two idle runners over the limit stop at once (they used to wait for their idle timeout),
a busy runner of the pool is not touched and finishes its job. Then a reload moves `listen`,
and SIGINT drains and exits 0 with no container and no registration left."""
import re
import signal
import sys
import time

import opskit
import rdtest

X64 = opskit.X64


def pool_state(s):
    return opskit.get_json(s.port)["pools"][0]


def main():
    with opskit.TempDir() as tmp:
        big = rdtest.pool("lx", X64, "fake:x64", max_runners=4, min_idle=3, idle_timeout="10m")
        s = opskit.Setup(tmp, instance="shrink", targets=[{"repo": "octo/app"}], pools=[big])
        ok = False
        try:
            s.gh.repos("octo", ["app"])
            rd = s.start()
            # one long job keeps a runner busy; three warm runners beside it
            s.gh.jobs("octo/app", X64, count=1, duration_ms=6000)
            rdtest.wait_until(lambda: pool_state(s)["busy"] == 1 and pool_state(s)["idle"] == 3,
                              30, 0.1, "1 busy + 3 idle runners")
            # a broken file first: every error logged at ERROR with file:line:col, the old
            # config keeps serving (3 idle runners stay)
            good = open(rd.cfg_path).read()
            rd.write_config(good.replace("min_idle: 3", "min_idle: 99") + "bogus: 1\n")
            start = len(rd.logs())
            rd.signal(signal.SIGHUP)
            s.wait_log(r"reload failed", timeout=15, start=start)
            tail = rd.logs()[start:]
            for key in (r"pools\[0\]\.min_idle", r"bogus: unknown key"):
                assert re.search(r"ERROR config: \S+runnerd\.yaml:\d+:\d+: " + key, tail), tail
            assert re.search(r"ERROR daemon: reload failed", tail), tail
            st = pool_state(s)
            assert st["idle"] == 3 and st["min_idle"] == 3 and rd.alive(), st
            small = dict(big, max_runners=1, min_idle=0)
            cfg = s.config(pools=[small])
            rd.write_config(cfg)
            t0 = time.monotonic()
            rd.signal(signal.SIGHUP)
            # max 1 with one busy runner: every idle runner goes, well before idle_timeout
            rdtest.wait_until(lambda: pool_state(s)["running"] == 1, 15, 0.1,
                              "the shrunk pool to stop its idle runners")
            took = time.monotonic() - t0
            st = pool_state(s)
            assert st["busy"] == 1 and st["max"] == 1, st
            job = s.gh.state()["jobs"][0]
            assert job["status"] == "in_progress", "the busy runner's job was touched: %r" % job
            rdtest.wait_until(lambda: s.gh.state()["jobs"][0]["status"] == "completed", 30, 0.1,
                              "the busy runner's job to finish")
            job = s.gh.state()["jobs"][0]
            assert job["conclusion"] == "success", "busy runner killed by the reload: %r" % job
            # listen moves on reload
            old_port = s.port
            s.port = opskit.free_port()
            cfg["listen"] = "127.0.0.1:%d" % s.port
            rd.write_config(cfg)
            rd.signal(signal.SIGHUP)
            s.wait_listening(15)
            try:
                opskit.get(old_port, "/healthz", timeout=2)
                moved = False
            except OSError:
                moved = True
            assert moved, "the old listen address still answers after the reload"
            rd.signal(signal.SIGINT)
            code = rd.proc.wait(40)
            assert code == 0, "SIGINT exit %r" % code
            left = rdtest.containers(rdtest.FAKE_DOCKER, "shrink", env=s.fake_env())
            assert left == [], "containers left: %r" % left
            assert s.gh.state()["runners"] == [], s.gh.state()["runners"]
            print("shrunk in %.1fs" % took)
            ok = True
        finally:
            s.close(dump=not ok)
    print("test_contract_reload_shrink: OK")


if __name__ == "__main__":
    sys.exit(main())
