#!/usr/bin/env python3
"""End to end with the docker CLI double: N queued jobs across repos and an org
become exactly N runners and N completed jobs, within the host caps; a job no
pool serves stays untouched; SIGTERM leaves nothing behind; the JIT config never
appears in argv or logs."""
import json
import os
import re
import sys
import time

import rdtest
import promcheck
import status_schema

X64 = ["self-hosted", "linux", "x64"]
JIT_PREFIX = "eyIucnVubmVyIj"  # base64 of '{".runner"': how every JIT config starts


def max_concurrent(events):
    cur = best = 0
    for ev in sorted(events, key=lambda e: e["t"]):
        if ev["kind"] == "jit_created":
            cur += 1
        elif ev["kind"] == "runner_deleted":
            cur -= 1
        best = max(best, cur)
    return best


def check_no_jit(tmp, logs, calls_path):
    with open(calls_path) as f:
        for line in f:
            call = json.loads(line)
            for arg in call.get("argv", []):
                assert JIT_PREFIX not in arg, "JIT config in argv: %r" % call
                assert not arg.startswith("ACTIONS_RUNNER_INPUT_JITCONFIG="), call
    assert JIT_PREFIX not in logs, "JIT config in runnerd's log"
    assert rdtest.TOKEN not in logs, "token in runnerd's log"


def main():
    with rdtest.TempDir() as tmp:
        gh = rdtest.FakeGitHub(tmp)
        state_dir = os.path.join(tmp, "docker")
        env = {"FAKE_DOCKER_STATE": state_dir}
        rd = None
        try:
            gh.repos("octo-org", ["api", "web", "docs"], org=True)
            gh.repos("octo-cat", ["hello"])
            gh.jobs("octo-cat/hello", X64, count=3, duration_ms=1500)
            gh.jobs("octo-org/api", X64, count=3, duration_ms=1500)
            gh.jobs("octo-org/web", X64, count=2, duration_ms=1500, run_status="in_progress")
            gh.jobs("octo-org/docs", ["self-hosted", "windows"], count=1)
            port = rdtest.free_port()
            pools = [rdtest.pool("linux-x64", X64, "fake-runner:x64", cpus=1, memory="1GiB",
                                 max_runners=8)]
            cfg = rdtest.base_config(gh, rdtest.FAKE_DOCKER, pools,
                                     [{"repo": "octo-cat/hello"}, {"org": "octo-org"}],
                                     instance="e2e", listen="127.0.0.1:%d" % port,
                                     host={"cpus": 4, "memory": "16GiB", "max_runners": 16})
            rd = rdtest.Runnerd(tmp, cfg, env=env).start()

            def servable_done():
                st = gh.state()
                jobs = [j for j in st["jobs"] if "windows" not in j["labels"]]
                return all(j["status"] == "completed" for j in jobs)
            # While runners work: /status follows docs/status.md, /metrics parses.
            base = "http://127.0.0.1:%d" % port
            rdtest.wait_until(lambda: any(e["kind"] == "job_started" for e in gh.state()["events"]),
                              60, 0.1, "a job to start")
            code, body = rdtest.http_get(base + "/status")
            doc = json.loads(body)
            status_schema.validate(doc)
            assert doc["host"]["runners"] <= 4 and doc["host"]["cpus_used"] <= 4, doc["host"]
            assert [p["name"] for p in doc["pools"]] == ["linux-x64"], doc["pools"]
            code, text = rdtest.http_get(base + "/metrics")
            fams = promcheck.parse(text)
            for name in ("runnerd_runners", "runnerd_queued_jobs", "runnerd_runner_starts_total",
                         "runnerd_github_requests_total", "runnerd_build_info"):
                assert name in fams, (name, sorted(fams))
            rdtest.wait_until(servable_done, 120, 0.2, "8 jobs to complete")
            code, body = rdtest.http_get(base + "/healthz")
            assert code == 200, body
            st = gh.state()
            events = st["events"]
            created = [e for e in events if e["kind"] == "jit_created"]
            started = [e for e in events if e["kind"] == "job_started"]
            assert len(started) == 8, started
            assert len({e["job"] for e in started}) == 8, "a job started twice: %r" % started
            assert len({e["runner"] for e in started}) == 8, "a runner ran two jobs"
            assert len(created) == 8, "expected exactly 8 runners, got %d" % len(created)
            assert max_concurrent(events) <= 4, "host cpus cap exceeded"
            win = [j for j in st["jobs"] if "windows" in j["labels"]]
            assert win[0]["status"] == "queued" and not win[0]["runner_name"], win
            code = rd.stop(timeout=60)
            assert code == 0, "runnerd exit %r" % code
            st = gh.state()
            assert st["runners"] == [], "registrations left: %r" % st["runners"]
            left = rdtest.containers(rdtest.FAKE_DOCKER, "e2e", env=dict(os.environ, **env))
            assert left == [], "containers left: %r" % left
            check_no_jit(tmp, rd.logs(), os.path.join(state_dir, "calls.jsonl"))
            runs = [json.loads(x) for x in open(os.path.join(state_dir, "calls.jsonl"))]
            run_calls = [c for c in runs if c.get("cmd") == "run"]
            assert len(run_calls) == 8, len(run_calls)
            assert all(c.get("jit_env") and not c.get("jit_in_argv") for c in run_calls), \
                "JIT config not passed through the environment"
            argv = run_calls[0]["argv"]
            for flag in ("--rm", "--sig-proxy=false", "--security-opt", "--pids-limit",
                         "--cpus", "--memory", "--memory-swap", "--log-driver", "--network"):
                assert flag in argv, (flag, argv)
            assert "--label" in argv and "runnerd.instance=e2e" in argv, argv
            assert re.match(r"runnerd-e2e-linux-x64-", argv[argv.index("--name") + 1]), argv
        except Exception:
            if rd is not None:
                sys.stderr.write(rd.logs()[-6000:])
            raise
        finally:
            if rd is not None and rd.alive():
                rd.kill9()
            rdtest.remove_containers(rdtest.FAKE_DOCKER, "e2e", env=dict(os.environ, **env))
            gh.stop()
    print("test_e2e_fake_docker: OK")


if __name__ == "__main__":
    sys.exit(main())
