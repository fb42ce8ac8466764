#!/usr/bin/env python3
"""A hung dockerd (docker CLI calls that never answer) must not hold runnerd forever.
runnerd is killed with SIGKILL while a runner is busy; the new runnerd starts while
`docker ps` hangs (the docker double's hang file). With the command deadline shortened to
3 s (RUNNERD_DOCKER_TIMEOUT_MS; 60 s by default) it kills the hung `docker ps`, logs it,
counts the listing as failed and retries it (5 s); once docker answers again it adopts
the running container: the job completes on its one runner (one registration, one
`docker run`), and after SIGTERM (exit 0) no container and no registration remain."""
import os
import sys

import e2eutil
import rdtest

REPO = "octo-cat/hello"


def main():
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, "hang")
        hang = os.path.join(sc.state_dir, "hang")
        try:
            scenario(sc, hang)
        except BaseException:
            e2eutil.dump_on_failure(sc, 10000)
            raise
        finally:
            if os.path.exists(hang):
                os.remove(hang)
            sc.close()
    print("test_docker_hang: OK")
    return 0


def scenario(sc, hang):
    # Long enough for the double's other calls (inspect, wait) under CI load.
    deadline_s = int(rdtest.scaled(3))
    # The job must outlast the hung listing, its deadline and the 5 s retry (valgrind
    # stretches the deadline), else there is nothing left to adopt.
    cfg, job = e2eutil.busy_then_kill9(sc, REPO, duration_ms=(deadline_s + 20) * 1000)

    with open(hang, "w") as f:
        f.write("ps\n")
    sc.env["RUNNERD_DOCKER_TIMEOUT_MS"] = str(deadline_s * 1000)
    rd2 = sc.runnerd(cfg, name="runnerd2")
    rdtest.wait_until(lambda: "no answer within %d s; killing it" % deadline_s in rd2.logs(),
                      20 + deadline_s, 0.1, "runnerd2 to give up on the hung docker ps")
    rdtest.wait_until(lambda: "retrying in 5 s" in rd2.logs(), 10, 0.1,
                      "the failed listing to be retried")
    assert "restart: adopted" not in rd2.logs()
    os.remove(hang)  # dockerd answers again
    rdtest.wait_until(lambda: "restart: adopted" in rd2.logs(), 30, 0.1,
                      "the busy container to be adopted on a retry")
    e2eutil.adopted_job_finishes(sc, rd2, job)
    print("hung docker ps killed after its deadline; adopted once docker answered")


if __name__ == "__main__":
    sys.exit(main())
