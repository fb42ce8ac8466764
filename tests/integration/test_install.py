#!/usr/bin/env python3
"""`cmake --install` per DESIGN.md section 6, into a scratch prefix:

1. the layout: P/bin/runnerd and runnerctl (executable, --version answers),
   man pages runnerd(8), runnerd.yaml(5), runnerctl(1) under P/share/man/, the
   unit under P/lib/systemd/system/, the sysusers file under P/lib/sysusers.d/,
   the docs and example configs under P/share/doc/runnerd/ (install.md among
   them);
2. the unit names P: ExecStart/ExecStartPre run P/bin/runnerd with
   P/etc/runnerd/runnerd.yaml, LoadCredential reads P/etc/runnerd/token (the
   build was configured with another prefix: the install-time prefix wins);
   no @VAR@ is left in the unit or the man pages;
3. the man pages render without a groff warning (groff -man -ww -z) and man
   formats them (man --warnings -l);
4. the installed unit's systemd-analyze security exposure is at most 2.0
   (issue 17 F14; it was 5.0) and systemd-analyze verify finds nothing but
   the man pages it cannot look up here;
5. the example config for the unit names exactly the credentials the unit
   loads (token under /run/credentials/runnerd.service/).
Without groff or systemd-analyze this test fails under CI and skips otherwise.
"""
import os
import re
import shutil
import subprocess
import sys

import rdtest

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def main():
    for tool in ("groff", "systemd-analyze", "cmake"):
        if shutil.which(tool) is None:
            rdtest.skip_or_fail("%s not installed (scripts/install-deps.sh)" % tool)
    with rdtest.TempDir() as tmp:
        prefix = os.path.join(tmp, "prefix")
        p = subprocess.run(["cmake", "--install", rdtest.BUILD, "--prefix", prefix],
                           capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "cmake --install exit 0 (%s)" % p.stderr[-500:])
        want = ["bin/runnerd", "bin/runnerctl", "share/man/man8/runnerd.8",
                "share/man/man5/runnerd.yaml.5", "share/man/man1/runnerctl.1",
                "lib/systemd/system/runnerd.service", "lib/sysusers.d/runnerd.conf",
                "share/doc/runnerd/README.md", "share/doc/runnerd/CHANGELOG.md",
                "share/doc/runnerd/install.md", "share/doc/runnerd/operating.md",
                "share/doc/runnerd/configuration.md", "share/doc/runnerd/metrics.md",
                "share/doc/runnerd/examples/runnerd.yaml",
                "share/doc/runnerd/examples/runnerd.yaml.systemd"]
        missing = [w for w in want if not os.path.isfile(os.path.join(prefix, w))]
        check(not missing, "installed layout complete (missing %r)" % missing)
        for b in ("runnerd", "runnerctl"):
            path = os.path.join(prefix, "bin", b)
            ok = os.access(path, os.X_OK)
            if ok:
                v = subprocess.run([path, "--version"], capture_output=True, text=True)
                ok = v.returncode == 0 and v.stdout.startswith(b)
            check(ok, "%s is executable and answers --version" % b)

        unit_path = os.path.join(prefix, "lib/systemd/system/runnerd.service")
        unit = open(unit_path).read() if os.path.exists(unit_path) else ""
        check("ExecStart=%s/bin/runnerd -c %s/etc/runnerd/runnerd.yaml\n" % (prefix, prefix) in unit,
              "unit ExecStart runs the prefix's runnerd with the prefix's config")
        check("ExecStartPre=%s/bin/runnerd --check-config -c %s/etc/runnerd/runnerd.yaml\n"
              % (prefix, prefix) in unit, "unit ExecStartPre checks the config first")
        check("LoadCredential=token:%s/etc/runnerd/token\n" % prefix in unit,
              "unit loads the token credential from the prefix's etc")
        for f in ("lib/systemd/system/runnerd.service", "share/man/man8/runnerd.8",
                  "share/man/man5/runnerd.yaml.5", "share/man/man1/runnerctl.1"):
            path = os.path.join(prefix, f)
            left = re.findall(r"@[A-Z_]+@", open(path).read()) if os.path.exists(path) else ["?"]
            check(not left, "%s: no placeholder left (%r)" % (f, left))

        for sec, name in (("8", "runnerd.8"), ("5", "runnerd.yaml.5"), ("1", "runnerctl.1")):
            path = os.path.join(prefix, "share/man/man%s" % sec, name)
            g = subprocess.run(["groff", "-man", "-ww", "-z", path], capture_output=True, text=True)
            check(g.returncode == 0 and g.stderr == "",
                  "groff -man -ww: %s renders without warnings (%r)" % (name, g.stderr[:300]))
            if shutil.which("man"):
                m = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                                   env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
                check(m.returncode == 0 and m.stderr == "" and len(m.stdout) > 500,
                      "man --warnings -l %s: %d bytes, %r" % (name, len(m.stdout), m.stderr[:300]))

        # systemd-analyze reads the unit as it is (ExecStart paths need not exist offline).
        a = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit_path],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for runnerd\.service: ([0-9.]+)", a.stdout)
        score = float(m.group(1)) if m else 99
        check(score <= 2.0, "systemd-analyze security: exposure %.1f <= 2.0" % score)
        v = subprocess.run(["systemd-analyze", "verify", unit_path], capture_output=True,
                           text=True, timeout=60)
        noise = [ln for ln in (v.stdout + v.stderr).splitlines() if ln.strip() and
                 not re.search(r"Command 'man .*' failed|is not executable|No such file", ln)]
        check(not noise, "systemd-analyze verify: nothing wrong with the unit (%r)" % noise[:5])

        cfg = os.path.join(prefix, "share/doc/runnerd/examples/runnerd.yaml.systemd")
        text = open(cfg).read() if os.path.exists(cfg) else ""
        creds = set(re.findall(r"^LoadCredential=([^:]+):", unit, re.M))
        named = set(re.findall(r"^\s*[a-z_]+: /run/credentials/runnerd\.service/(\S+)", text, re.M))
        check(creds == {"token"} and named == {"token"},
              "the unit loads %r, the example config names %r" % (sorted(creds), sorted(named)))
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
