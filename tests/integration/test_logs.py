#!/usr/bin/env python3
"""runnerd's log lines as an operator's tools read them (DESIGN.md section 6;
runnerd + fake GitHub + fake docker, one queued job each run):

1. --log-format json: every line is one JSON object with ts, level, component,
   msg; the lines about the runner carry "runner" (its name), "pool", "scope"
   and "job" (a number, the job's id) as fields of their own: the start, the
   "docker run spawned" line, the container's own output (component runner),
   and the exit; the webhook/sched lines carry what they concern.
2. text under the journal: JOURNAL_STREAM names the file runnerd's stderr is
   (device:inode): every line begins with <3>/<4>/<6>/<7> and the level word and
   carries no timestamp; a warning is <4>.
3. JOURNAL_STREAM naming another file (inherited, stderr redirected): lines
   keep their timestamp and have no priority prefix.
"""
import json
import os
import re
import sys

import opskit
import rdtest

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run_one_job(tmp, name, args=(), env=None, log_path_hook=None):
    """Start runnerd, serve one job, stop it; returns (setup, log text, job id)."""
    s = opskit.Setup(tmp, instance=name, secret=None, listen=True,
                     targets=[{"repo": "logs-org/app"}])
    try:
        s.gh.repos("logs-org", ["app"])
        if log_path_hook:
            env = dict(env or {}, **log_path_hook(os.path.join(tmp, "runnerd.log")))
        s.start(args=list(args), env=env)
        job = s.gh.jobs("logs-org/app", opskit.X64, count=1, duration_ms=200)["job_ids"][0]
        rdtest.wait_until(lambda: all(j["status"] == "completed" for j in s.gh.state()["jobs"]),
                          60, 0.2, "the job to complete")
        rdtest.wait_until(lambda: not opskit.get_json(s.port)["runners"], 30, 0.2,
                          "the runner to finish")
        # A warning: a reload of a config file others may write.
        os.chmod(s.rd.cfg_path, 0o666)
        mark = s.log_size()
        s.rd.signal(1)
        s.wait_log(r"reloaded: \d+ pools", start=mark)
        # An error: a reload of a file that does not parse.
        with open(s.rd.cfg_path, "a") as f:
            f.write("pools: [\n")
        mark = s.log_size()
        s.rd.signal(1)
        s.wait_log(r"reload failed", start=mark)
        s.rd.stop(timeout=30)
        return s.rd.logs(), job
    finally:
        s.close()


def journal_env(path):
    # The log file is opened (append) by Runnerd.start(); create it first to
    # know its inode.
    open(path, "a").close()
    st = os.stat(path)
    return {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}


def other_file_env(path):
    other = path + ".other"
    open(other, "a").close()
    st = os.stat(other)
    return {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}


def main():
    with opskit.TempDir() as tmp:
        text, job = run_one_job(tmp, "logsjson", args=["--log-format", "json"],
                                env={"JOURNAL_STREAM": ""})
        objs, bad = [], []
        for line in text.splitlines():
            try:
                o = json.loads(line)
                if not all(k in o for k in ("ts", "level", "component", "msg")):
                    bad.append(line)
                objs.append(o)
            except ValueError:
                bad.append(line)
        check(objs and not bad, "json: %d lines, each an object with ts/level/component/msg "
              "(bad: %r)" % (len(objs), bad[:3]))
        start = [o for o in objs if "starting for job" in o["msg"]]
        check(len(start) == 1, "json: one 'starting for job' line")
        runner = start[0].get("runner") if start else None
        want = {"runner": runner, "pool": "linux-x64", "scope": "repos/logs-org/app", "job": job}
        ok = start and runner and runner.startswith("runnerd-logsjson-linux-x64-") and all(
            start[0].get(k) == v for k, v in want.items()) and isinstance(start[0]["job"], int)
        check(ok, "json: start line carries runner/pool/scope/job fields %r" % (start[:1],))
        about = [o for o in objs if o.get("runner") == runner]
        spawned = [o for o in about if "docker run spawned" in o["msg"]]
        check(spawned and spawned[0].get("job") == job and spawned[0].get("pool") == "linux-x64",
              "json: 'docker run spawned' line with job and pool fields")
        output = [o for o in about if o["component"] == "runner"]
        check(output and all(o.get("scope") == "repos/logs-org/app" for o in output),
              "json: the container's output lines (%d) carry runner and scope" % len(output))
        exited = [o for o in about if "exited" in o["msg"]]
        check(exited, "json: the exit line carries the runner field")
        sched = [o for o in objs if o["component"] == "sched" and "starting 1" in o["msg"]]
        check(sched and sched[0].get("pool") == "linux-x64" and
              sched[0].get("scope") == "repos/logs-org/app",
              "json: the scheduler's start decision carries pool and scope")
        plain = [o for o in objs if "listening on" in o["msg"]]
        check(plain and not any(k in plain[0] for k in ("runner", "pool", "scope", "job")),
              "json: a line about nothing in particular has none of the fields")

    with opskit.TempDir() as tmp:
        text, _ = run_one_job(tmp, "logsjournal", log_path_hook=journal_env)
        lines = text.splitlines()
        rx = re.compile(r"^<([3467])>(DEBUG|INFO|WARN|ERROR) [^ ]+: ")
        prio = {"3": "ERROR", "4": "WARN", "6": "INFO", "7": "DEBUG"}
        bad = [ln for ln in lines if not (rx.match(ln) and prio[rx.match(ln).group(1)] ==
                                          rx.match(ln).group(2))]
        check(lines and not bad, "journal: all %d lines start <N>LEVEL with matching priority "
              "(bad: %r)" % (len(lines), bad[:3]))
        check(not [ln for ln in lines if re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", ln[:40])],
              "journal: no line carries its own timestamp")
        check([ln for ln in lines if ln.startswith("<4>WARN ")] and
              [ln for ln in lines if ln.startswith("<3>ERROR ")] and
              [ln for ln in lines if ln.startswith("<6>INFO ")] and
              [ln for ln in lines if ln.startswith("<7>DEBUG ")],
              "journal: errors are <3>, warnings <4>, info <6>, debug <7>")

    with opskit.TempDir() as tmp:
        text, _ = run_one_job(tmp, "logsother", log_path_hook=other_file_env)
        lines = text.splitlines()
        check(lines and all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ ", ln)
                            for ln in lines),
              "JOURNAL_STREAM naming another file: timestamps, no priority prefix")

    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
