#!/usr/bin/env python3
"""Contract audit (DESIGN.md section 3: one queued job never yields two runners, and no
job starves): GitHub gives a queued job to any idle runner whose labels fit, not
necessarily to the runner started for it. Pool `s` (2 labels, slow to start) is chosen
for job 1 (`self-hosted, linux`); pool `f` (4 labels, fast) for job 2. The `f` runner
comes online first and takes job 1, the older job that its labels also fit. Job 2 must
get a runner at once (the poll shows job 1 in_progress on the `f` runner), not only when
job 1 has finished (it used to stay "covered" by the busy runner started for it)."""
import sys

import e2eutil
import rdtest
from e2eutil import events_of

S = ["self-hosted", "linux"]
F = ["self-hosted", "linux", "x64", "fast"]


def main():
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, "audit-oj")
        try:
            gh = sc.gh
            gh.repos("octo", ["app"])
            j1 = gh.jobs("octo/app", S, count=1, duration_ms=8000)["job_ids"][0]
            j2 = gh.jobs("octo/app", F, count=1, duration_ms=500)["job_ids"][0]
            pools = [rdtest.pool("s", S, "fake-runner:slowstart", idle_timeout="3s"),
                     rdtest.pool("f", F, "fake-runner:x64", idle_timeout="3s")]
            rd = sc.runnerd(sc.config(pools, [{"repo": "octo/app"}], shutdown_grace="30s"))
            started = rdtest.wait_until(
                lambda: {e["job"]: e for e in events_of(gh.state(), "job_started")}.get(j1),
                30, 0.1, "job 1 to start")
            assert "-f-" in started["runner"], "the fast runner should take job 1: %r" % started
            second = rdtest.wait_until(
                lambda: {e["job"]: e for e in events_of(gh.state(), "job_started")}.get(j2),
                20, 0.1, "job 2 to start")
            waited = (second["t"] - started["t"]) / 1000.0
            assert waited < 6, "job 2 waited %.1fs for a runner while job 1 ran" % waited
            assert rd.stop(60) == 0
            st = gh.state()
            assert [j["conclusion"] for j in st["jobs"]] == ["success", "success"], st["jobs"]
            runners = {e["runner"] for e in events_of(st, "jit_created")}
            assert len(runners) == 3, "expected s + 2 f runners: %r" % runners
            sc.check_clean()
            print("job 2 started %.1fs after job 1" % waited)
        except BaseException:
            e2eutil.dump_on_failure(sc)
            raise
        finally:
            sc.close()
    print("test_contract_other_job: OK")


if __name__ == "__main__":
    sys.exit(main())
