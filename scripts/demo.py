#!/usr/bin/env python3
"""runnerd's built-in demo: a fake GitHub with queued jobs across repositories,
an organisation and two architectures; runnerd serves them; the jobs are shown
live, then a summary. Run through scripts/demo.sh, which sets everything up."""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "integration"))
import rdtest  # noqa: E402

X64 = ["self-hosted", "linux", "x64"]
ARM64 = ["self-hosted", "linux", "arm64"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--fake-docker", action="store_true")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--fleet", action="store_true",
                    help="fleet mode: three hosts share jobs through the scale-set broker")
    a = ap.parse_args()
    if a.fleet:
        import demo_fleet
        return demo_fleet.run(a.build, a.fake_docker, a.timeout)
    rdtest.RUNNERD = os.path.join(os.path.abspath(a.build), "runnerd")

    with rdtest.TempDir() as tmp:
        gh = rdtest.FakeGitHub(tmp)
        env = {}
        try:
            gh.repos("octo-org", ["api", "web", "docs", "old-site"], org=True,
                     archived=["old-site"])
            gh.repos("octo-cat", ["hello-world"])
            gh.jobs("octo-cat/hello-world", X64, count=3, duration_ms=3000)
            gh.jobs("octo-org/api", X64, count=3, duration_ms=4000)
            gh.jobs("octo-org/api", ARM64, count=2, duration_ms=3000)
            gh.jobs("octo-org/web", X64, count=2, duration_ms=2000, run_status="in_progress")
            gh.jobs("octo-org/docs", ARM64, count=1, duration_ms=2000)
            gh.jobs("octo-org/web", ["self-hosted", "windows", "x64"], count=1)  # nobody serves

            if a.fake_docker:
                docker = rdtest.FAKE_DOCKER
                env["FAKE_DOCKER_STATE"] = os.path.join(tmp, "docker")
                images = ("fake-runner:x64", "fake-runner:arm64")
            else:
                docker = "docker"
                images = ("runnerd-test-runner:x64", "runnerd-test-runner:arm64")
            pools = [
                rdtest.pool("linux-x64", X64, images[0], cpus=0.5, max_runners=4),
                rdtest.pool("linux-arm64", ARM64, images[1], cpus=0.5, max_runners=2,
                            platform="linux/arm64"),
            ]
            targets = [{"repo": "octo-cat/hello-world"}, {"org": "octo-org"}]
            cfg = rdtest.base_config(gh, docker, pools, targets, instance="demo",
                                     host={"cpus": 3, "memory": "8GiB", "max_runners": 6})
            rd = rdtest.Runnerd(tmp, cfg, env=env)
            print("demo: fake GitHub on %s; 12 jobs queued in 4 repositories (x64 and arm64),"
                  " 1 of them for Windows, which no pool serves" % gh.url)
            print("demo: host capped at 3 cpus / 6 runners; pools linux-x64 (native) and"
                  " linux-arm64 (qemu emulation), 0.5 cpu each")
            print("demo: runnerd log: %s\n" % rd.log_path)
            rd.start()
            t0 = time.monotonic()
            seen = 0
            servable = None
            peak = 0
            while time.monotonic() - t0 < a.timeout:
                st = gh.state()
                for ev in st.get("events", [])[seen:]:
                    job = next((j for j in st["jobs"] if j["id"] == ev.get("job")), None)
                    if ev["kind"] == "job_started" and job:
                        print("%6.1fs  job %-6s %-22s %-26s started on %s (%s)" % (
                            time.monotonic() - t0, job["id"], job["repo"],
                            ",".join(job["labels"]), ev.get("runner"), job.get("runner_arch")))
                    elif ev["kind"] == "job_completed" and job:
                        print("%6.1fs  job %-6s %-22s completed" % (
                            time.monotonic() - t0, job["id"], job["repo"]))
                seen = len(st.get("events", []))
                busy = sum(1 for r in st["runners"] if r.get("status") == "online")
                peak = max(peak, len(st["runners"]))
                servable = [j for j in st["jobs"] if "windows" not in j["labels"]]
                if servable and all(j["status"] == "completed" for j in servable):
                    break
                if not rd.alive():
                    print("demo: runnerd exited early; see " + rd.log_path)
                    break
                time.sleep(0.5)
            elapsed = time.monotonic() - t0
            print("\ndemo: all servable jobs done after %.1fs; sending SIGTERM" % elapsed)
            code = rd.stop(timeout=60)
            st = gh.state()
            servable = [j for j in st["jobs"] if "windows" not in j["labels"]]
            done = [j for j in servable if j["status"] == "completed"]
            arch_ok = all((j.get("runner_arch") == "aarch64") == ("arm64" in j["labels"])
                          for j in done)
            left = rdtest.containers(docker, "demo", env=dict(os.environ, **env))
            print("\n== summary ==")
            print("jobs served:            %d / %d" % (len(done), len(servable)))
            print("right architecture:     %s" % ("yes" if arch_ok else "NO"))
            print("unserved (windows) job: %s" % ", ".join(
                j["status"] for j in st["jobs"] if "windows" in j["labels"]))
            print("runner registrations:   %d left" % len(st["runners"]))
            print("containers:             %d left" % len(left))
            print("runnerd exit code:      %s" % code)
            ok = (len(done) == len(servable) and arch_ok and not st["runners"] and not left
                  and code == 0)
            print("demo: %s" % ("OK" if ok else "FAILED"))
            return 0 if ok else 1
        finally:
            if 'rd' in locals() and rd.alive():
                rd.kill9()
            gh.stop()


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
