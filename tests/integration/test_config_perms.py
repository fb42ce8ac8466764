#!/usr/bin/env python3
"""File permission warnings from the daemon, at start and on SIGHUP
(runnerd + fake GitHub + fake docker):

1. start with a token file readable by others (mode 644): runnerd runs, and logs one
   WARN `FILE:LINE:COL: github.token_file: warning: PATH is readable by group or
   others (mode 644); chmod 600 it`, never the token itself;
2. chmod 600 the token, make the config file group-writable (mode 664), SIGHUP:
   the reload succeeds and logs a WARN that the config file is writable by group or
   others (whoever can write it controls docker.extra_args), and no token warning.
3. back to 644: nothing warned;
4. the token moved into a group-writable folder (mode 775): the reload warns that the
   folder's group can replace the file; folder back to 755: nothing warned.
--check-config's side is in test_check_config.py.
"""
import os
import re
import signal
import sys

import opskit
import rdtest

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def reload(s, rd):
    """SIGHUP, wait for the reload, return what runnerd logged meanwhile."""
    mark = s.log_size()
    rd.signal(signal.SIGHUP)
    s.wait_log(r"reloaded: \d+ pools", start=mark)
    return rd.logs()[mark:]


def main():
    with rdtest.TempDir() as tmp:
        s = opskit.Setup(tmp, instance="perms", secret=None, listen=True,
                         targets=[{"repo": "perms-org/app"}])
        ok = False
        try:
            s.gh.repos("perms-org", ["app"])
            tok = os.path.join(tmp, "token")
            with open(tok, "w") as f:
                f.write(rdtest.TOKEN + "\n")
            os.chmod(tok, 0o644)
            rd = s.start(s.config(github={"token_file": tok}))
            os.chmod(rd.cfg_path, 0o644)
            m = s.wait_log(r"WARN config: (\S+): github\.token_file: warning: (\S+) is readable "
                           r"by group or others \(mode 644\); chmod 600 it\n")
            check(m.group(1).startswith(rd.cfg_path + ":") and m.group(2) == tok,
                  "start: token file mode 644 warned with file:line:col and path")
            check(rd.alive(), "start: a warning, not a refusal (runnerd runs)")

            os.chmod(tok, 0o600)
            os.chmod(rd.cfg_path, 0o664)
            tail = reload(s, rd)
            want = ("WARN config: %s: warning: this file is writable by group or others "
                    "(mode 664): whoever can write it controls docker.extra_args, and so root; "
                    "chmod go-w it\n" % rd.cfg_path)
            check(want in tail, "reload: group-writable config file warned")
            check("token_file: warning" not in tail, "reload: mode 600 token no longer warned")

            os.chmod(rd.cfg_path, 0o644)
            tail = reload(s, rd)
            check(re.search(r"WARN config: .*warning", tail) is None,
                  "reload: nothing to warn about, nothing warned")

            # 4. the token in a group-writable folder: its group can replace the file
            sub = os.path.join(tmp, "secrets")
            os.mkdir(sub)
            os.chmod(sub, 0o775)
            tok2 = os.path.join(sub, "token")
            with open(tok2, "w") as f:
                f.write(rdtest.TOKEN + "\n")
            os.chmod(tok2, 0o600)
            with open(rd.cfg_path) as f:
                text = f.read()
            with open(rd.cfg_path, "w") as f:
                f.write(text.replace(tok, tok2))
            tail = reload(s, rd)
            want = ("github.token_file: warning: folder %s is writable by group or others "
                    "(mode 0775, uid %d): they can replace %s; chmod go-w / chown it\n"
                    % (os.path.realpath(sub), os.getuid(), tok2))
            check(want in tail, "reload: token in a group-writable folder warned")
            check(len(re.findall(r"WARN config: .*warning", tail)) == 1,
                  "reload: one warning for that folder, nothing else")

            os.chmod(sub, 0o755)
            tail = reload(s, rd)
            check(re.search(r"WARN config: .*warning", tail) is None,
                  "reload: folder mode 755, nothing warned")
            check(rdtest.TOKEN not in rd.logs(), "the token is never logged")
            ok = True
        finally:
            s.close(dump=not ok or bool(failures))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
