#!/usr/bin/env python3
"""End to end with a real Docker engine and mixed architectures: an x64 pool
(runnerd-test-runner:x64) and an emulated arm64 pool (platform linux/arm64,
runnerd-test-runner:arm64 under qemu-user-static), --network host, pull never.
x64 jobs run in x86_64 containers, arm64 jobs in aarch64 ones (the runner
reports `uname -m` to the fake GitHub), a riscv64 job no pool serves stays
queued, exactly one runner per served job; after SIGTERM no container with the
instance label and no registration remain; the JIT config never appears in any
/proc/*/cmdline (sampled during the run), log line or docker label.

Needs dockerd and the images (scripts/start-dockerd.sh,
scripts/build-runner-images.sh): without them it FAILS when CI=true, else
prints SKIP and exits 77."""
import os
import signal
import subprocess
import sys
import time

import e2eutil
import rdtest
from e2eutil import events_of

DOCKER = os.environ.get("DOCKER", "docker")
X64 = ["self-hosted", "linux", "x64"]
ARM64 = ["self-hosted", "linux", "arm64"]
RISCV = ["self-hosted", "linux", "riscv64"]
IMAGES = ("runnerd-test-runner:x64", "runnerd-test-runner:arm64")


def prerequisites():
    if not rdtest.docker_available(DOCKER):
        rdtest.skip_or_fail("no reachable dockerd (scripts/start-dockerd.sh)")
    for image in IMAGES:
        p = subprocess.run([DOCKER, "image", "inspect", image], capture_output=True, timeout=30)
        if p.returncode != 0:
            rdtest.skip_or_fail("image %s missing (scripts/build-runner-images.sh)" % image)


def labels_of_running(instance):
    p = subprocess.run([DOCKER, "ps", "--filter", "label=runnerd.instance=" + instance,
                        "--format", "{{.Names}} {{.Labels}}"], capture_output=True, text=True,
                       timeout=30)
    return p.stdout


def main():
    prerequisites()
    instance = "e2edocker%d" % os.getpid()
    with rdtest.TempDir() as tmp:
        sc = e2eutil.Scenario(tmp, instance, docker=DOCKER)
        try:
            with e2eutil.CmdlineSampler() as sampler:
                scenario(sc, sampler)
        except BaseException:
            e2eutil.dump_on_failure(sc, 8000)
            raise
        finally:
            sc.close()
            rdtest.remove_containers(DOCKER, instance)
    print("test_e2e_docker: OK")
    return 0


def scenario(sc, sampler):
    gh = sc.gh
    gh.repos("octo-org", ["api", "web"], org=True)
    gh.repos("octo-cat", ["hello"])
    x_jobs = gh.jobs("octo-cat/hello", X64, count=2, duration_ms=1500)["job_ids"]
    x_jobs += gh.jobs("octo-org/api", X64, count=1, duration_ms=1500)["job_ids"]
    a_jobs = gh.jobs("octo-org/web", ARM64, count=2, duration_ms=1500)["job_ids"]
    r_job = gh.jobs("octo-org/api", RISCV, count=1)["job_ids"][0]
    common = dict(cpus=0.5, memory="256MiB", pull="never", startup_timeout="90s",
                  job_timeout="3m", idle_timeout="30s", max_runners=4)
    pools = [rdtest.pool("x64", X64, IMAGES[0], **common),
             rdtest.pool("arm64", ARM64, IMAGES[1], platform="linux/arm64",
                         **dict(common, cpus=1))]  # qemu is slow enough without a quota
    cfg = sc.config(pools, [{"repo": "octo-cat/hello"}, {"org": "octo-org"}],
                    host={"cpus": 4, "memory": "4GiB", "max_runners": 6},
                    shutdown_grace="30s")
    cfg["docker"]["network"] = "host"
    rd = sc.runnerd(cfg)
    t0 = time.monotonic()
    label_text = ""

    def served():
        nonlocal label_text
        label_text += labels_of_running(sc.instance)
        st = gh.state()
        return all(j["status"] == "completed" for j in st["jobs"] if j["id"] != r_job)
    rdtest.wait_until(served, 150, 0.5, "3 x64 and 2 arm64 jobs to complete")
    took = time.monotonic() - t0
    st = gh.state()
    jobs = {j["id"]: j for j in st["jobs"]}
    for jid in x_jobs:
        assert jobs[jid]["conclusion"] == "success", jobs[jid]
        assert jobs[jid]["runner_arch"] == "x86_64", jobs[jid]
        assert "-x64-" in jobs[jid]["runner_name"], jobs[jid]
    for jid in a_jobs:
        assert jobs[jid]["conclusion"] == "success", jobs[jid]
        assert jobs[jid]["runner_arch"] == "aarch64", jobs[jid]
        assert "-arm64-" in jobs[jid]["runner_name"], jobs[jid]
    assert jobs[r_job]["status"] == "queued" and not jobs[r_job]["runner_name"], jobs[r_job]
    created = events_of(st, "jit_created")
    assert len(created) == 5, "expected exactly one runner per served job: %r" % created
    started = events_of(st, "job_started")
    assert len({e["runner"] for e in started}) == 5 and len(started) == 5, started
    assert "matches no pool" in rd.logs()
    code = rd.stop(timeout=60)
    assert code == 0, "runnerd exit %r" % code
    sampler.sample()
    assert sampler.hits == [], "JIT config in a process's argv: %r" % sampler.hits[:3]
    assert e2eutil.JIT_PREFIX not in label_text, "JIT config in a docker label"
    sc.check_clean()
    assert gh.state()["jobs"][[j["id"] for j in st["jobs"]].index(r_job)]["status"] == "queued"
    print("served 3 x64 + 2 arm64 jobs in %.1fs; %d /proc samples, no JIT config in argv"
          % (took, sampler.samples))


if __name__ == "__main__":
    sys.exit(main())
