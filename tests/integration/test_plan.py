#!/usr/bin/env python3
"""`runnerd --once --dry-run` prints the plan (DESIGN.md, CLI) and creates nothing."""
import json
import sys

import rdtest

X64 = ["self-hosted", "linux", "x64"]


def main():
    with rdtest.TempDir() as tmp:
        gh = rdtest.FakeGitHub(tmp)
        try:
            gh.repos("octo-org", ["api", "web", "docs"], org=True)
            gh.repos("octo-cat", ["hello"])
            gh.jobs("octo-cat/hello", X64, count=3)
            gh.jobs("octo-org/api", X64, count=2)
            gh.jobs("octo-org/web", X64, count=1, run_status="in_progress")
            gh.jobs("octo-org/docs", X64, count=1, status="waiting")      # not demand
            gh.jobs("octo-org/docs", ["self-hosted", "windows"], count=2)  # unmatched
            pools = [rdtest.pool("linux-x64", X64, "img", cpus=2, memory="1GiB", max_runners=8)]
            cfg = rdtest.base_config(gh, "/nonexistent/docker", pools,
                                     [{"repo": "octo-cat/hello"}, {"org": "octo-org"}],
                                     host={"cpus": 8, "memory": "16GiB", "max_runners": 3})
            rd = rdtest.Runnerd(tmp, cfg, args=["--once", "--dry-run"])
            code, out, err = rd.run()
            assert code == 0, "exit %d\n%s" % (code, err)
            lines = [json.loads(x) for x in out.strip().split("\n")]
            plan = {(x["scope"], x["pool"]): x for x in lines if "scope" in x}
            assert lines[-1] == {"unmatched": 2}, lines
            # DESIGN.md: unmatched jobs are counted and logged once (each)
            assert err.count("matches no pool") == 2, err
            hello = plan[("repos/octo-cat/hello", "linux-x64")]
            org = plan[("orgs/octo-org", "linux-x64")]
            assert hello["demand"] == 3 and org["demand"] == 3, lines
            assert hello["supply"] == 0 and org["supply"] == 0, lines
            # host max_runners 3 over 6 jobs: scopes take turns, host_max binds
            assert hello["start"] + org["start"] == 3, lines
            assert {hello["limit"], org["limit"]} == {"host_max"}, lines
            assert set(hello) == {"scope", "pool", "demand", "supply", "start", "limit"}
            st = gh.state()
            stats = gh.stats()
            assert st["runners"] == [], "dry run registered runners: %r" % st["runners"]
            assert stats.get("jit_created", 0) == 0, stats
            posts = [k for k in stats["by_path"] if not k.startswith("GET ")]
            assert posts == [], "dry run sent %r" % posts
            assert rdtest.TOKEN not in rd.logs(), "token in log"
            # cpus cap: 8 cpus / 2 per runner = 4, host max 16
            cfg["host"] = {"cpus": 8, "memory": "16GiB", "max_runners": 16}
            rd.write_config(cfg)
            code, out, err = rd.run()
            assert code == 0, err
            lines = [json.loads(x) for x in out.strip().split("\n")]
            starts = sum(x.get("start", 0) for x in lines)
            limits = {x.get("limit") for x in lines if "scope" in x}
            assert starts == 4 and "host_cpus" in limits, lines
        finally:
            gh.stop()
    print("test_plan: OK")


if __name__ == "__main__":
    sys.exit(main())
