#!/usr/bin/env python3
"""Contract audit: the exact `docker run` argv of DESIGN.md section 3, for a repo
target and an org target whose pool names a non-default runner group (which must be
resolved to its id), with env, extra_args and command; then SIGTERM drains the idle
runners and exits 0 with nothing left behind."""
import json
import os
import re
import signal
import sys
import urllib.request

import e2eutil
import rdtest

X64 = ["self-hosted", "linux", "x64"]


def api(gh, path):
    req = urllib.request.Request(gh.url + path, headers={
        "Authorization": "Bearer " + rdtest.TOKEN, "User-Agent": "audit",
        "Accept": "application/vnd.github+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def expected_argv(binary, name, instance, pool, rid, scope):
    return [binary, "run", "--rm", "--name", name, "--sig-proxy=false",
            "--label", "runnerd.instance=" + instance, "--label", "runnerd.pool=" + pool,
            "--label", "runnerd.runner-id=%d" % rid, "--label", "runnerd.scope=" + scope,
            "--cpus", "1.5", "--memory", str(768 * 1024 * 1024),
            "--memory-swap", str(768 * 1024 * 1024), "--pids-limit", "512",
            "--security-opt", "no-new-privileges", "--log-driver", "none", "--network", "host",
            "--pull", "never",
            "-e", "ACTIONS_RUNNER_INPUT_JITCONFIG", "-e", "AUDIT_FOO",
            "--init", "--log-driver=none",
            "fake-runner-hang:x64", "/bin/run.sh", "--once"]


def main():
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, "audit-argv")
        try:
            gh = sc.gh
            gh.repos("octo-org", ["api"], org=True)
            gh.repos("octo-cat", ["hello"])
            gh.call("POST", "/_control/runner_groups",
                    {"org": "octo-org", "groups": [{"id": 7, "name": "big"}]})
            gh.jobs("octo-cat/hello", X64, count=1)
            gh.jobs("octo-org/api", X64, count=1)
            pools = [rdtest.pool("lx", X64, "fake-runner-hang:x64", cpus=1.5, memory="768MiB",
                                 pids_limit=512, runner_group="big", env={"AUDIT_FOO": "bar"},
                                 command=["/bin/run.sh", "--once"])]
            cfg = sc.config(pools, [{"repo": "octo-cat/hello"}, {"org": "octo-org"}],
                            docker={"binary": sc.docker, "network": "host",
                                    "extra_args": ["--init", "--log-driver=none"]},
                            shutdown_grace="5s")
            with e2eutil.CmdlineSampler() as samp:
                rd = sc.runnerd(cfg)
                rdtest.wait_until(lambda: len(sc.calls("run")) >= 2, 30, 0.1, "two docker runs")
                # the "hang" runner comes online and never takes the job: both stay online
                rdtest.wait_until(
                    lambda: len([r for r in gh.state()["runners"] if r["status"] == "online"]) == 2,
                    30, 0.1, "two runners online")
            runs = sc.calls("run")
            assert len(runs) == 2, "one job, one runner: %r" % [c["argv"] for c in runs]
            st = gh.state()
            by_name = {r["name"]: r for r in st["runners"]}
            for c in runs:
                argv = c["argv"]
                name = argv[argv.index("--name") + 1]
                assert re.fullmatch(r"runnerd-audit-argv-lx-[a-z0-9]{14}", name), name
                rn = by_name[name]
                scope = "orgs/octo-org" if rn["scope"] == "octo-org" else "repos/" + rn["scope"]
                want = expected_argv(sc.docker, name, "audit-argv", "lx", rn["id"], scope)
                # the double records argv without argv[0]'s path? compare from "run" on
                got = argv if argv[0] != "run" else [sc.docker] + argv
                assert got == want, "argv differs:\n got  %r\n want %r" % (got, want)
                assert c.get("jit_env") and not c.get("jit_in_argv"), c
            org_runners = api(gh, "/orgs/octo-org/actions/runners")["runners"]
            assert len(org_runners) == 1 and org_runners[0]["runner_group_id"] == 7, org_runners
            repo_runners = api(gh, "/repos/octo-cat/hello/actions/runners")["runners"]
            assert len(repo_runners) == 1 and repo_runners[0]["runner_group_id"] == 1, repo_runners
            # labels of the registration are the pool's labels
            assert sorted(l["name"] for l in org_runners[0]["labels"]) == sorted(X64), org_runners
            assert samp.hits == [], "JIT config in a cmdline: %r" % samp.hits
            # SIGTERM: both runners idle -> stopped, exit 0, nothing left
            rd.signal(signal.SIGTERM)
            code = rd.proc.wait(40)
            assert code == 0, "exit %r" % code
            sc.check_clean()
            # their jobs were never taken: still queued, untouched
            assert all(j["status"] == "queued" for j in gh.state()["jobs"]), gh.state()["jobs"]
        except Exception:
            e2eutil.dump_on_failure(sc)
            raise
        finally:
            sc.close()
    print("test_contract_argv: OK")


if __name__ == "__main__":
    sys.exit(main())
