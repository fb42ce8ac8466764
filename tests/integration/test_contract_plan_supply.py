#!/usr/bin/env python3
"""Contract audit: the `--once --dry-run` plan counts the runners this instance already
has (DESIGN.md section 3: supply = the pool's runners that are starting or idle; the caps
count the capacity runners hold), as `--once` without --dry-run does. Before the fix a dry
run never looked at docker or GitHub's runner list: supply was always 0 and the whole host
was free, so the plan promised starts the daemon would not make.

Setup: a runnerd starts one runner (the double's "hang" image: online, never takes a job)
and is killed with SIGKILL, so its container keeps running. Three more jobs are queued.
Then `runnerd --once --dry-run` must say demand 4, supply 1, start 2 (host max_runners 3
minus the running one, limit host_max), and must not touch that container or GitHub."""
import json
import sys

import e2eutil
import rdtest

X64 = ["self-hosted", "linux", "x64"]


def main():
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, "audit-plan")
        try:
            gh = sc.gh
            gh.repos("o", ["a"])
            gh.jobs("o/a", X64, count=1)
            pools = [rdtest.pool("lx", X64, "fake-runner-hang:x64", cpus=1, memory="512MiB",
                                 max_runners=8, idle_timeout="10m")]
            cfg = sc.config(pools, [{"repo": "o/a"}],
                            host={"cpus": 8, "memory": "16GiB", "max_runners": 3})
            rd = sc.runnerd(cfg)

            def online():
                rs = sc.state()["runners"]
                return len(rs) == 1 and rs[0]["status"] == "online" and rs[0]
            runner = rdtest.wait_until(online, 30, 0.1, "one runner online")
            rd.kill9()
            assert len(sc.calls("run")) == 1, sc.calls("run")
            gh.jobs("o/a", X64, count=3)
            gh.call("POST", "/_control/stats/reset")
            ncalls = len(sc.calls())

            plan = rdtest.Runnerd(tmp, cfg, args=["--once", "--dry-run"], env=sc.env,
                                  name="plan")
            code, out, err = plan.run()
            assert code == 0, "exit %d\n%s" % (code, err[-3000:])
            lines = [json.loads(x) for x in out.strip().split("\n")]
            want = {"scope": "repos/o/a", "pool": "lx", "demand": 4, "supply": 1, "start": 2,
                    "limit": "host_max"}
            assert lines == [want, {"unmatched": 0}], "plan %r, want supply 1 start 2" % lines

            # The dry run only looked: no docker call but ps/inspect, nothing sent but GETs.
            later = [c.get("cmd") for c in sc.calls()[ncalls:]]
            assert set(later) <= {"ps", "inspect"}, "dry run ran docker %r" % later
            posts = [k for k in gh.stats()["by_path"] if not k.startswith("GET ")]
            assert posts == [], "dry run sent %r" % posts
            assert [r["name"] for r in sc.state()["runners"]] == [runner["name"]]
            assert len(sc.containers()) == 1, sc.containers()
            sc.check_no_jit()
        except Exception:
            e2eutil.dump_on_failure(sc)
            raise
        finally:
            sc.close()
    print("test_contract_plan_supply: OK")


if __name__ == "__main__":
    sys.exit(main())
