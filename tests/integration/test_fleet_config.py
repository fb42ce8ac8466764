#!/usr/bin/env python3
"""Fleet-mode configuration (docs/fleet.md): --check-config refuses discovery: scaleset
without an explicit instance and an unknown discovery, derives github.web_url from api_url
(api.HOST -> HOST, HOST/api/v3 -> HOST) and names the scale sets in its summary."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdtest  # noqa: E402

BASE = """github: {api_url: "%s", token_env: GITHUB_TOKEN%s}
pools:
  - {name: linux, labels: [self-hosted, linux, x64], image: "r:1", cpus: 1, memory: 1GiB}
targets:
  - {org: acme, discovery: %s}
  - {repo: acme/fw}
"""


def check(text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="rd-fleet-", delete=False) as f:
        f.write(text)
    try:
        p = subprocess.run(rdtest.wrap([rdtest.RUNNERD, "--check-config", "-c", f.name]),
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, GITHUB_TOKEN="x"))
        return p.returncode, p.stdout + p.stderr
    finally:
        os.unlink(f.name)


def main():
    code, out = check(BASE % ("https://api.github.com", "", "scaleset"))
    assert code == 1 and "instance: must be set explicitly when a target uses discovery: " \
        "scaleset" in out, out
    code, out = check("instance: auto\n" + BASE % ("https://api.github.com", "", "scaleset"))
    assert code == 1 and "must be set explicitly" in out, out
    code, out = check("instance: b7\n" + BASE % ("https://api.github.com", "", "webhook"))
    assert code == 1 and 'targets[0].discovery: must be poll or scaleset, not "webhook"' in out, out
    code, out = check("instance: b7\n" + BASE % ("https://api.github.com", "", "scaleset"))
    assert code == 0 and "discovery scaleset at https://github.com: runnerd-b7-linux" in out, out
    code, out = check("instance: b7\n" + BASE % ("https://ghes.corp/api/v3", "", "scaleset"))
    assert code == 0 and "discovery scaleset at https://ghes.corp: runnerd-b7-linux" in out, out
    code, out = check("instance: b7\n" + BASE % ("https://ghes.corp/api/v3",
                                                  ", web_url: \"https://web.corp/\"", "scaleset"))
    assert code == 0 and "discovery scaleset at https://web.corp: runnerd-b7-linux" in out, out
    code, out = check("instance: b7\n" + BASE % ("https://api.github.com",
                                                  ", web_url: \"ftp://x\"", "scaleset"))
    assert code == 1 and "github.web_url" in out, out
    # poll targets alone still accept instance: auto
    code, out = check("instance: auto\n" + BASE % ("https://api.github.com", "", "poll"))
    assert code == 0, out
    print("ok")


if __name__ == "__main__":
    main()
