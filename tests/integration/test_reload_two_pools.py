#!/usr/bin/env python3
"""Regression (found by the soak): a SIGHUP reload with two or more pools
crashed runnerd (pools_rebuild left a moved pool state with a NULL name that
the next lookup passed to strcmp). Reload a 3-pool config, valid and invalid,
and check the daemon keeps running and serving."""
import os
import signal
import sys
import time

import rdtest

X64 = ["self-hosted", "linux", "x64"]


def main():
    with rdtest.TempDir() as tmp:
        gh = rdtest.FakeGitHub(tmp)
        env = {"FAKE_DOCKER_STATE": os.path.join(tmp, "docker")}
        rd = None
        try:
            gh.repos("octo-cat", ["hello"])
            pools = [rdtest.pool("a", X64, "fake-runner:x64"),
                     rdtest.pool("b", X64 + ["big"], "fake-runner:x64"),
                     rdtest.pool("c", X64 + ["gpu"], "fake-runner:x64")]
            cfg = rdtest.base_config(gh, rdtest.FAKE_DOCKER, pools, [{"repo": "octo-cat/hello"}],
                                     instance="reload2")
            rd = rdtest.Runnerd(tmp, cfg, env=env).start()
            rdtest.wait_until(lambda: "running:" in rd.logs(), 30, what="runnerd running")
            for i in range(3):
                cfg["pools"][0]["image"] = "fake-runner:x64-%d" % i
                rd.write_config(cfg)
                rd.signal(signal.SIGHUP)
                rdtest.wait_until(lambda: rd.logs().count("reloaded:") == i + 1 or not rd.alive(),
                                  20, what="reload %d" % (i + 1))
                assert rd.alive(), "runnerd died on reload %d: %s" % (i + 1, rd.logs()[-3000:])
            # a pool removed, then an invalid file: still running
            rd.write_config(dict(cfg, pools=cfg["pools"][:2]))
            rd.signal(signal.SIGHUP)
            rdtest.wait_until(lambda: rd.logs().count("reloaded:") == 4 or not rd.alive(), 20,
                              what="reload 4")
            rd.write_config("pools: [\n")
            rd.signal(signal.SIGHUP)
            rdtest.wait_until(lambda: "reload failed" in rd.logs() or not rd.alive(), 20,
                              what="failed reload")
            assert rd.alive(), rd.logs()[-3000:]
            gh.jobs("octo-cat/hello", X64, count=1, duration_ms=200)
            rdtest.wait_until(lambda: all(j["status"] == "completed" for j in gh.state()["jobs"]),
                              60, 0.2, "the job to be served after the reloads")
            assert rd.stop() == 0
        except Exception:
            if rd is not None:
                sys.stderr.write(rd.logs()[-4000:])
            raise
        finally:
            if rd is not None and rd.alive():
                rd.kill9()
            rdtest.remove_containers(rdtest.FAKE_DOCKER, "reload2", env=dict(os.environ, **env))
            gh.stop()
    print("test_reload_two_pools: OK")


if __name__ == "__main__":
    sys.exit(main())
