#!/usr/bin/env python3
"""Pool identity across reloads that reorder the pools (issue 13 item 3): a runner
started before two SIGHUP reloads, each of which moves its pool to another position
in the file, keeps its pool. Checked three ways after each reload:
- /status lists the runner under its pool (b), busy with its job;
- pool b's counters (starts 1) stay with b, not with the pool now at b's old position;
- b's max_runners (1) still counts the busy runner: a second job for b stays queued
  while the first runs (a runner left at its old position would count against
  another pool and b would start a second one), and is served once the first ends."""
import os
import sys
import time

import opskit
import rdtest

X64 = opskit.X64
BIG = X64 + ["big"]
GPU = X64 + ["gpu"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def job(gh, jid):
    for j in gh.state()["jobs"]:
        if j["id"] == jid:
            return j
    return None


def pools(order, image="fake:x64"):
    by = {"a": rdtest.pool("a", X64, image),
          "b": rdtest.pool("b", BIG, "fake:x64", max_runners=1),
          "c": rdtest.pool("c", GPU, "fake:x64")}
    return [by[n] for n in order]


def reload(s, cfg):
    start = s.log_size()
    s.rd.write_config(cfg)
    s.rd.signal(__import__("signal").SIGHUP)
    s.wait_log(r"reloaded: |reload failed", timeout=20, start=start)
    out = s.rd.logs()[start:]
    check("reloaded:" in out, "reload applied" + ("" if "reloaded:" in out else
                                                  " (%s)" % out[-600:].strip()))


def check_identity(s, runner, long_id, second_id, when):
    st = opskit.get_json(s.port)
    mine = [r for r in st["runners"] if r["name"] == runner]
    check(len(mine) == 1 and mine[0]["pool"] == "b" and mine[0]["state"] == "busy"
          and mine[0]["job_id"] == long_id,
          "%s: /status lists %s in pool b, busy with job %d (%r)" % (when, runner, long_id, mine))
    byname = {p["name"]: p for p in st["pools"]}
    check(byname["b"]["starts"] == 1 and byname["a"]["starts"] == 0
          and byname["c"]["starts"] == 0,
          "%s: pool b keeps its counters (starts a/b/c = %s)"
          % (when, [byname[n]["starts"] for n in "abc"]))
    check(byname["b"]["busy"] == 1 and byname["a"]["busy"] == 0 and byname["c"]["busy"] == 0,
          "%s: the busy runner counts in pool b only (busy a/b/c = %s)"
          % (when, [byname[n]["busy"] for n in "abc"]))
    j2 = job(s.gh, second_id)
    check(j2 is not None and j2["status"] == "queued",
          "%s: b's second job waits for b's one slot (%r)" % (when, j2 and j2["status"]))


def main():
    with rdtest.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="reord", targets=[{"repo": "o/a"}],
                         pools=pools("abc"))
        ok = False
        try:
            s.gh.repos("o", ["a"])
            s.start()
            long_ms = int(rdtest.scaled(25) * 1000)
            long_id = s.gh.jobs("o/a", BIG, duration_ms=long_ms)["job_ids"][0]
            rdtest.wait_until(lambda: (job(s.gh, long_id) or {}).get("status") == "in_progress",
                              rdtest.scaled(30), 0.2, "the long job on a runner of pool b")
            runner = job(s.gh, long_id)["runner_name"]
            check("-b-" in runner, "the long job runs on a runner of pool b (%s)" % runner)
            second_id = s.gh.jobs("o/a", BIG, duration_ms=300)["job_ids"][0]

            # Reload 1: b moves from position 1 to 2; a (now at 1) also changes its image.
            reload(s, s.config(pools=pools("cab", image="fake:x64-2")))
            time.sleep(3)  # three polls and plans
            check_identity(s, runner, long_id, second_id, "after reload 1 (c, a, b)")
            # Reload 2: b moves to position 0; its reference held across both reloads.
            reload(s, s.config(pools=pools("bca")))
            time.sleep(3)
            check_identity(s, runner, long_id, second_id, "after reload 2 (b, c, a)")

            rdtest.wait_until(lambda: (job(s.gh, second_id) or {}).get("status") == "completed",
                              rdtest.scaled(60), 0.2, "b's second job, after the first")
            j1, j2 = job(s.gh, long_id), job(s.gh, second_id)
            check(j1["status"] == "completed", "the long job was not cut short (%r)" % j1)
            check("-b-" in (j2.get("runner_name") or ""),
                  "the second job ran in pool b (%s)" % j2.get("runner_name"))
            check(s.rd.stop() == 0, "runnerd exits 0")
            ok = not failures
        finally:
            s.close(dump=not ok)
    if failures:
        print("test_reload_reorder: %d failures" % len(failures))
        return 1
    print("test_reload_reorder: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
