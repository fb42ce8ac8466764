#!/usr/bin/env python3
"""Restart adoption when docker is down at start: runnerd is killed with SIGKILL while a
runner is busy; the new runnerd starts while `docker` answers "Cannot connect to the Docker
daemon", so its first `docker ps` fails. It must keep retrying the listing (5 s, then
doubling), and once docker answers again adopt the running container: the job completes
on its one runner (no second registration), the runner's exit is seen, and after SIGTERM
(exit 0) no container and no registration remain; no JIT config in argv or logs."""
import os
import sys
import time

import e2eutil
import rdtest

REPO = "octo-cat/hello"
INSTANCE = "readopt"

WRAPPER = """#!/bin/sh
# docker down while the flag file exists, the docker double otherwise.
if [ -e "%(flag)s" ]; then
    echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
    exit 1
fi
exec "%(double)s" "$@"
"""


def main():
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, INSTANCE)
        flag = os.path.join(tmp, "docker-down")
        wrapper = os.path.join(tmp, "docker-cli")
        with open(wrapper, "w") as f:
            f.write(WRAPPER % {"flag": flag, "double": rdtest.FAKE_DOCKER})
        os.chmod(wrapper, 0o755)
        sc.docker = wrapper
        try:
            scenario(sc, flag)
        except BaseException:
            e2eutil.dump_on_failure(sc, 10000)
            raise
        finally:
            if os.path.exists(flag):
                os.remove(flag)
            sc.close()
    print("test_adoption_retry: OK")
    return 0


def scenario(sc, flag):
    cfg, job = e2eutil.busy_then_kill9(sc, REPO)

    open(flag, "w").close()
    rd2 = sc.runnerd(cfg, name="runnerd2")
    rdtest.wait_until(lambda: "could not list containers" in rd2.logs(), 20, 0.1,
                      "runnerd2 to fail its first docker ps")
    assert "retrying in 5 s" in rd2.logs(), rd2.logs()[-2000:]
    assert "restart: adopted" not in rd2.logs()
    time.sleep(1.0)
    os.remove(flag)  # docker is back
    rdtest.wait_until(lambda: "restart: adopted" in rd2.logs(), 30, 0.1,
                      "the busy container to be adopted on a retry")
    # Logged once the listing's callback is through, just after the adoptions.
    rdtest.wait_until(lambda: "adoption of a previous run's runners done" in rd2.logs(), 10, 0.1,
                      "the retried adoption to be logged as done")
    e2eutil.adopted_job_finishes(sc, rd2, job)
    print("adoption retried: adopted after docker came back, job completed on its one runner")


if __name__ == "__main__":
    sys.exit(main())
