#!/usr/bin/env python3
"""Issue 14 item 5: an installation token whose `expires_at` has already passed by
runnerd's clock (clock skew, a proxy rewriting times) causes no refetch loop.

The fake GitHub shows every installation token's `expires_at` two hours early (the
token itself lives an hour: GitHub accepts it), so each fresh token looks an hour
expired. rd_discover (the real client and poller, GitHub App auth) runs three cycles
a second apart over an org of three repositories with a queued job each. Every cycle
must succeed with the three jobs, using one token (no more than two token requests in
all), and the warning must say what is wrong. The old client renewed a token "before
it expires" at once, forever: 167 token requests in 25 s and not one poll (here: the
first cycle never ends)."""
import json
import os
import subprocess
import sys

import rdtest

DISCOVER = os.path.join(rdtest.BUILD, "rd_discover")
LABELS = ["self-hosted", "linux", "x64"]


def main():
    with rdtest.TempDir() as tmp:
        key, pub = os.path.join(tmp, "app.pem"), os.path.join(tmp, "app.pub")
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True,
                       capture_output=True)
        gh = rdtest.FakeGitHub(tmp, extra_args=["--app-id", "4242", "--app-public-key", pub])
        try:
            gh.repos("skewo", ["a", "b", "c"], org=True)
            want = set()
            for r in ("a", "b", "c"):
                want |= set(gh.jobs("skewo/" + r, LABELS)["job_ids"])
            gh.call("POST", "/_control/token_ttl", {"seconds": 3600, "skew": -7200})
            cfg = rdtest.base_config(gh, "docker", [rdtest.pool("p", LABELS, "img")],
                                     [{"org": "skewo"}])
            del cfg["github"]["token_env"]
            cfg["github"]["app_id"] = 4242
            cfg["github"]["private_key_file"] = key
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(rdtest.to_yaml(cfg) + "\n")
            env = dict(os.environ, RUNNERD_MAX_REQUEST_RATE="0")
            p = subprocess.Popen(rdtest.wrap([DISCOVER, "-c", path, "--cycles", "3",
                                              "--interval-ms", "1000", "--log-level", "info"]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env)
            try:
                out, err = p.communicate(timeout=rdtest.scaled(25))
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            tokens = gh.stats()["by_path"].get("POST /app/installations/{id}/access_tokens", 0)
            runs = gh.stats()["by_path"].get("GET /repos/{o}/{r}/actions/runs", 0)
            print("token requests %d, run listings %d, rd_discover exit %r" % (
                tokens, runs, p.returncode))
            assert p.returncode == 0, "rd_discover did not finish its cycles:\n" + err[-3000:]
            cycles, jobs = [], set()
            for line in out.splitlines():
                obj = json.loads(line)
                if "cycle" in obj:
                    cycles.append((obj, jobs))
                    jobs = set()
                else:
                    jobs.add(obj["job"])
            assert len(cycles) == 3, out
            for summary, jobs in cycles:
                assert summary["failed"] == 0 and jobs == want, (summary, jobs, want)
            assert tokens <= 2, "token requests: %d" % tokens
            assert "in the past by this host's clock" in err, err[-3000:]
            assert "ghs_" not in err, "an installation token in the log"
        finally:
            gh.stop()
    print("test_token_skew: OK")


if __name__ == "__main__":
    sys.exit(main())
