#!/usr/bin/env python3
"""Contract audit (DESIGN.md section 3, Restarts): after `kill -9` of runnerd, a restart
adopts the running containers (their jobs finish, no second runner), removes a dead
container of its instance, and deletes offline registrations named `runnerd-<instance>-*`
that have no container, also when the rest of the name is not "<pool>-<suffix>" (e.g.
`runnerd-<instance>-orphan-1`), while a generated name of a daemon whose instance extends
this one (`runnerd-<instance>-2-<pool>-<14 chars>`) is left alone."""
import json
import subprocess
import sys
import urllib.request

import e2eutil
import rdtest
from e2eutil import X64, events_of

REPO = "octo-cat/hello"
INSTANCE = "audit-rs"


def register(gh, name):
    req = urllib.request.Request(
        gh.url + "/repos/%s/actions/runners/generate-jitconfig" % REPO, method="POST",
        data=json.dumps({"name": name, "runner_group_id": 1, "labels": X64}).encode(),
        headers={"Authorization": "Bearer " + rdtest.TOKEN, "User-Agent": "audit",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["runner"]["id"]


def main():
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, INSTANCE)
        try:
            gh = sc.gh
            gh.repos("octo-cat", ["hello"])
            cfg = sc.config([rdtest.pool("lx", X64, "fake-runner:x64")], [{"repo": REPO}],
                            shutdown_grace="20s")
            jobs = gh.jobs(REPO, X64, count=2, duration_ms=8000)["job_ids"]
            rd1 = sc.runnerd(cfg, name="first")
            rdtest.wait_until(lambda: len(events_of(sc.state(), "job_started")) == 2, 30, 0.1,
                              "2 busy runners")
            rd1.kill9()
            assert len(sc.containers()) == 2, sc.containers()
            # left behind: a dead container of this instance, an orphan registration,
            # and another (nested) instance's registration
            dead = "runnerd-%s-lx-deadcontainer1" % INSTANCE
            subprocess.run([sc.docker, "run", "--name", dead, "--label",
                            "runnerd.instance=" + INSTANCE, "--label", "runnerd.pool=lx",
                            "--network", "host", "fake-runner:x64"], env=sc.denv,
                           capture_output=True, timeout=30)
            assert dead in sc.containers(), "could not make a dead container"
            orphan = "runnerd-%s-orphan-1" % INSTANCE
            foreign = "runnerd-%s-2-lx-abcdefgh012345" % INSTANCE
            register(gh, orphan)
            foreign_id = register(gh, foreign)
            rd2 = sc.runnerd(cfg, name="second")
            rdtest.wait_until(lambda: orphan not in [r["name"] for r in sc.state()["runners"]],
                              20, 0.1, "the orphan registration %s to be deleted" % orphan)
            rdtest.wait_until(lambda: dead not in sc.containers(), 20, 0.1,
                              "the dead container to be removed")
            rdtest.wait_until(lambda: all(j["status"] == "completed" for j in sc.state()["jobs"]),
                              40, 0.2, "the adopted jobs to complete")
            st = sc.state()
            assert all(j["conclusion"] == "success" for j in st["jobs"]), st["jobs"]
            assert {j["id"] for j in st["jobs"]} == set(jobs)
            ours = [e for e in events_of(st, "jit_created") if e["runner"] not in (orphan, foreign)]
            assert len(ours) == 2, "a second runner for an adopted job: %r" % ours
            assert rd2.logs().count("restart: adopted runnerd-%s-lx-" % INSTANCE) == 2, \
                rd2.logs()[-3000:]
            assert rd2.stop(40) == 0
            left = [r for r in sc.state()["runners"]]
            assert [r["id"] for r in left] == [foreign_id], \
                "registrations left (only the other instance's may stay): %r" % left
            assert sc.containers() == [], sc.containers()
            logs = sc.logs()
            assert e2eutil.JIT_PREFIX not in logs and rdtest.TOKEN not in logs, "secret in log"
            for c in sc.calls("run"):
                if c["argv"][c["argv"].index("--name") + 1] != dead:
                    assert c.get("jit_env") and not c.get("jit_in_argv"), c
        except BaseException:
            e2eutil.dump_on_failure(sc)
            raise
        finally:
            sc.close()
    print("test_contract_restart: OK")


if __name__ == "__main__":
    sys.exit(main())
