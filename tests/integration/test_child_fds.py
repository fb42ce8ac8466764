#!/usr/bin/env python3
"""Issue 17 F3: docker CLI children inherit only stdin, stdout and stderr.

runnerd's docker binary is a wrapper that records the descriptors it was started with
(/proc/self/fd and what each points to) and then execs the docker double. runnerd polls
the fake GitHub (libcurl keeps its TCP connections to the API open), a queued job gets a
runner (`docker run`), the runner finishes, and every recorded docker call (ps at start,
run, and whatever follows) must show exactly 0, 1 and 2: no API socket, no listener
socket, no pipe of another child, no log or config file."""
import json
import os
import sys
import time

import opskit
import rdtest

X64 = opskit.X64

WRAPPER = r'''#!/usr/bin/python3
import json, os, sys
fds = {}
for name in os.listdir("/proc/self/fd"):
    try:
        fds[int(name)] = os.readlink("/proc/self/fd/" + name)
    except OSError:
        pass  # the descriptor listdir itself used, closed by now
with open(os.environ["FAKE_DOCKER_FDLOG"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:2], "fds": fds}) + "\n")
os.execv(%r, [%r] + sys.argv[1:])
''' % (rdtest.FAKE_DOCKER, rdtest.FAKE_DOCKER)


def main():
    with opskit.TempDir() as tmp:
        fdlog = os.path.join(tmp, "fds.jsonl")
        wrapper = os.path.join(tmp, "docker-wrapper")
        with open(wrapper, "w") as f:
            f.write(WRAPPER)
        os.chmod(wrapper, 0o755)
        s = opskit.Setup(tmp, instance="fds", targets=[{"repo": "octo/app"}],
                         extra_env={"FAKE_DOCKER_FDLOG": fdlog})
        ok = False
        try:
            s.gh.repos("octo", ["app"])
            cfg = s.config()
            cfg["docker"]["binary"] = wrapper
            s.start(cfg=cfg)
            # A few polls first, so libcurl holds its connections to the API.
            time.sleep(2)
            s.gh.jobs("octo/app", X64, count=1, duration_ms=1000)
            rdtest.wait_until(lambda: all(j["status"] == "completed" for j in s.gh.state()["jobs"]),
                              60, 0.2, "the job to be served")
            rdtest.wait_until(lambda: s.gh.state()["runners"] == [], 30, 0.2,
                              "the runner registration to be gone")
            with open(fdlog) as f:
                calls = [json.loads(line) for line in f]
            cmds = [c["argv"][0] if c["argv"] else "?" for c in calls]
            print("docker calls recorded: %s" % " ".join(cmds))
            assert "ps" in cmds and "run" in cmds, cmds
            bad = []
            for c in calls:
                extra = {fd: what for fd, what in c["fds"].items() if int(fd) > 2}
                if sorted(int(fd) for fd in c["fds"]) != [0, 1, 2] or extra:
                    bad.append((c["argv"], c["fds"]))
                else:
                    print("ok   docker %s: fds %s" % (c["argv"][0], sorted(c["fds"].values())))
            for argv, fds in bad:
                print("FAIL docker %s inherited %s" % (argv, fds))
            assert not bad, "%d of %d docker calls inherited descriptors" % (len(bad), len(calls))
            assert s.rd.stop(30) == 0
            ok = True
        finally:
            s.close(dump=not ok)
    print("test_child_fds: OK")


if __name__ == "__main__":
    sys.exit(main())
