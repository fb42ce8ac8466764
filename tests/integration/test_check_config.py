#!/usr/bin/env python3
"""runnerd --check-config and the command line.

- every tests/bad-config/NN-name.yaml: exit 1, stderr exactly NN-name.expected
  (run from that folder with the file name as passed, `NN-name.yaml`);
- conf/runnerd.yaml and every conf/examples/*.yaml: exit 0 with a summary, with
  GITHUB_TOKEN set and the secret files they name (/etc/runnerd/...) created,
  mode 600, in a temporary folder that a rewritten copy of the config points at;
- a secret file readable (or writable) by others, or the config file writable by
  others: still exit 0, one warning on stderr;
- flags: --version, --help, unknown flag, missing argument, stray argument.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdtest  # noqa: E402

BIN = os.environ.get("RUNNERD_BIN")
SRC = os.environ.get("RUNNERD_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
failures = []


def check(cond, what):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        failures.append(what)


def run(args, cwd=None, env_extra=None, env_drop=()):
    env = dict(os.environ)
    env["GITHUB_TOKEN"] = "ghp_test_token_not_real_000000000000"
    for k in env_drop:
        env.pop(k, None)
    if env_extra:
        env.update(env_extra)
    p = subprocess.run(rdtest.wrap([BIN] + args), cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=rdtest.scaled(30))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def bad_fixtures():
    folder = os.path.join(SRC, "tests", "bad-config")
    files = sorted(glob.glob(os.path.join(folder, "*.yaml")))
    check(len(files) >= 30, "at least 30 bad-config fixtures (%d)" % len(files))
    multi = 0
    for path in files:
        name = os.path.basename(path)
        exp_path = path[:-len(".yaml")] + ".expected"
        if not os.path.exists(exp_path):
            check(False, "%s has an .expected file" % name)
            continue
        with open(exp_path) as f:
            expected = f.read()
        if expected.count("\n") >= 2:
            multi += 1
        rc, out, err = run(["--check-config", "-c", name], cwd=folder,
                           env_drop=("RUNNERD_TEST_SURELY_UNSET_TOKEN",))
        ok = rc == 1 and err == expected and out == ""
        if not ok:
            print("--- %s: exit %d\n--- stderr:\n%s--- expected:\n%s--- stdout:\n%s" %
                  (name, rc, err, expected, out))
        check(ok, "%s: exit 1, stderr as expected" % name)
        for line in expected.splitlines():
            check(re.match(r"^%s:(\d+:\d+: )?\S" % re.escape(name), line) is not None,
                  "%s: message names file:line:col: %s" % (name, line[:60]))
    check(multi >= 5, "several fixtures hold two or more errors (%d)" % multi)


def good_configs():
    files = [os.path.join(SRC, "conf", "runnerd.yaml")]
    files += sorted(glob.glob(os.path.join(SRC, "conf", "examples", "*.yaml")))
    check(len(files) >= 4, "conf/runnerd.yaml and at least 3 examples")
    with tempfile.TemporaryDirectory() as tmp:
        secrets = os.path.join(tmp, "etc-runnerd")
        os.mkdir(secrets)
        for path in files:
            with open(path) as f:
                text = f.read()
            # The secret files the examples name, created for real (mode 600).
            for fn in set(re.findall(r"^[^#\n]*?(/etc/runnerd/[A-Za-z0-9._-]+)", text, re.M)):
                target = os.path.join(secrets, os.path.basename(fn))
                if target.endswith(".pem"):
                    # The App key is parsed by the check as by a start: a real RSA key.
                    subprocess.run(["openssl", "genrsa", "-out", target, "2048"], check=True,
                                   capture_output=True)
                    os.chmod(target, 0o600)
                    continue
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.write(fd, b"not-a-real-secret\n")
                os.close(fd)
            copy = os.path.join(tmp, os.path.basename(path))
            with open(copy, "w") as f:
                f.write(text.replace("/etc/runnerd/", secrets + "/"))
            os.chmod(copy, 0o644)  # whatever the umask: a group-writable config is warned about
            rc, out, err = run(["--check-config", "-c", copy])
            if rc != 0:
                print("--- %s: exit %d\n%s" % (path, rc, err))
            check(rc == 0, "%s: exit 0" % os.path.relpath(path, SRC))
            check(err == "", "%s: nothing on stderr" % os.path.relpath(path, SRC))
            check("configuration OK" in out and "pools:" in out and "targets:" in out
                  and "host: arch" in out, "%s: summary printed" % os.path.relpath(path, SRC))
            check("not-a-real-secret" not in out + err and "ghp_test" not in out + err,
                  "%s: no secret printed" % os.path.relpath(path, SRC))

        # A token file readable by others: a warning, not an error.
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write("ghp_secret_value_000000000000000000\n")
        os.chmod(tok, 0o644)
        cfg = os.path.join(tmp, "warn.yaml")
        with open(cfg, "w") as f:
            f.write("github:\n  token_file: token\npools:\n  - name: p\n    labels: [self-hosted]\n"
                    "    image: img\n    cpus: 1\n    memory: 1GiB\ntargets:\n  - repo: o/r\n")
        os.chmod(cfg, 0o644)
        rc, out, err = run(["--check-config", "-c", cfg])
        check(rc == 0, "world-readable token file: exit 0")
        check(err.startswith(cfg + ":2:15: github.token_file: warning: ") and "mode 644" in err,
              "world-readable token file: warning names file:line:col and mode")
        check("ghp_secret_value" not in out + err, "world-readable token file: secret not printed")
        os.chmod(tok, 0o600)
        rc, out, err = run(["--check-config", "-c", cfg])
        check(rc == 0 and err == "", "mode 600 token file: no warning")

        # A token file writable (not readable) by the group: a warning that says so.
        os.chmod(tok, 0o620)
        rc, out, err = run(["--check-config", "-c", cfg])
        check(rc == 0 and err == "%s:2:15: github.token_file: warning: %s is writable by group or "
              "others (mode 620); chmod 600 it\n" % (cfg, tok),
              "group-writable token file: exit 0, warning says writable")
        os.chmod(tok, 0o600)

        # The config file itself writable by others: whoever can write it is root.
        os.chmod(cfg, 0o646)
        rc, out, err = run(["--check-config", "-c", cfg])
        check(rc == 0 and err == "%s: warning: this file is writable by group or others (mode 646): "
              "whoever can write it controls docker.extra_args, and so root; chmod go-w it\n" % cfg,
              "world-writable config file: exit 0, one warning naming the file and mode")
        check("configuration OK" in out, "world-writable config file: summary still printed")
        os.chmod(cfg, 0o644)

        # Missing config file.
        rc, out, err = run(["--check-config", "-c", os.path.join(tmp, "nope.yaml")])
        check(rc == 1 and err == "%s: cannot open: No such file or directory\n"
              % os.path.join(tmp, "nope.yaml"), "missing file: exit 1 with the reason")


def flags():
    rc, out, err = run(["--version"])
    check(rc == 0 and re.fullmatch(r"runnerd \d+\.\d+\.\d+\S*\n", out) is not None and err == "",
          "--version prints 'runnerd VERSION'")
    rc, out, err = run(["--help"])
    check(rc == 0 and out.startswith("usage: runnerd") and "--check-config" in out
          and "--log-format" in out and err == "", "--help prints usage on stdout")
    rc, out, err = run(["-h"])
    check(rc == 0 and out.startswith("usage: runnerd"), "-h prints usage")
    for args, what in ((["--bogus"], "unknown long flag"), (["-x"], "unknown short flag"),
                       (["-c"], "-c without a file"), (["--log-level"], "--log-level without value"),
                       (["--log-level", "loud"], "bad --log-level"),
                       (["--log-format", "xml"], "bad --log-format"),
                       (["--check-config", "extra"], "stray argument"),
                       (["--version=1"], "argument to a flag that takes none")):
        rc, out, err = run(args)
        check(rc == 2 and out == "" and "usage: runnerd" in err and err.startswith("runnerd: "),
              "%s: exit 2, message and usage on stderr (%d)" % (what, rc))
    # The default file is /etc/runnerd/runnerd.yaml.
    if not os.path.exists("/etc/runnerd/runnerd.yaml"):
        rc, out, err = run(["--check-config"])
        check(rc == 1 and err.startswith("/etc/runnerd/runnerd.yaml: cannot open"),
              "default config path is /etc/runnerd/runnerd.yaml")


def main():
    if not BIN or not os.access(BIN, os.X_OK):
        print("RUNNERD_BIN is not set to an executable")
        return 1
    bad_fixtures()
    good_configs()
    flags()
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
