#!/usr/bin/env python3
"""Regression (found by the soak): a runner's container dies mid-job, runnerd is
killed -9 and restarted before GitHub notices. The start-up sweep sees the
registration busy/online and leaves it; once GitHub shows it offline the
periodic runner listing must delete it (it used to stay for GitHub's 1-day
cleanup)."""
import json
import os
import signal
import sys

import rdtest

X64 = ["self-hosted", "linux", "x64"]


def main():
    with rdtest.TempDir() as tmp:
        gh = rdtest.FakeGitHub(tmp)
        state_dir = os.path.join(tmp, "docker")
        env = {"FAKE_DOCKER_STATE": state_dir}
        rd = None
        try:
            gh.repos("octo-cat", ["hello"])
            pools = [rdtest.pool("linux-x64", X64, "fake-runner:x64", idle_timeout="3s")]
            cfg = rdtest.base_config(gh, rdtest.FAKE_DOCKER, pools, [{"repo": "octo-cat/hello"}],
                                     instance="orphan")
            rd = rdtest.Runnerd(tmp, cfg, env=env).start()
            job = gh.jobs("octo-cat/hello", X64, count=1, duration_ms=60000)["job_ids"][0]

            def busy_runner():
                for r in gh.state()["runners"]:
                    if r["busy"]:
                        return r
                return None
            victim = rdtest.wait_until(busy_runner, 60, 0.2, "a busy runner")
            rd.kill9()
            cdir = os.path.join(state_dir, "containers")
            for fn in os.listdir(cdir):
                if fn.endswith(".json"):
                    with open(os.path.join(cdir, fn)) as f:
                        rec = json.load(f)
                    if rec.get("name") == victim["name"] and rec.get("pid"):
                        os.kill(rec["pid"], signal.SIGKILL)
            rd.start()
            rdtest.wait_until(lambda: "running:" in rd.logs().split("SIGKILL")[-1], 30, 0.2,
                              "the restarted runnerd")
            rdtest.wait_until(lambda: rd.logs().count("running:") >= 2, 30, 0.2, "restart")
            # GitHub fails the job of the vanished runner: it shows offline and idle.
            gh.call("POST", "/_control/jobs/%d" % job, {"status": "completed",
                                                        "conclusion": "failure"})
            gh.jobs("octo-cat/hello", X64, count=1, duration_ms=300)
            rdtest.wait_until(lambda: all(j["status"] == "completed" for j in gh.state()["jobs"]),
                              60, 0.2, "the second job")
            rdtest.wait_until(lambda: not any(r["name"] == victim["name"]
                                              for r in gh.state()["runners"]),
                              30, 0.2, "the dead runner's registration to be deleted")
            assert rd.stop() == 0
            left = gh.state()["runners"]
            assert left == [], "registrations left: %r" % left
        except Exception:
            if rd is not None:
                sys.stderr.write(rd.logs()[-5000:])
            raise
        finally:
            if rd is not None and rd.alive():
                rd.kill9()
            rdtest.remove_containers(rdtest.FAKE_DOCKER, "orphan", env=dict(os.environ, **env))
            gh.stop()
    print("test_orphan_after_restart: OK")


if __name__ == "__main__":
    sys.exit(main())
