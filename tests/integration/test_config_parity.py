#!/usr/bin/env python3
"""The config and its secrets as a start reads them, and --check-config agreeing
(issue 17 F5, F7, F11, F12; issue 16 item 7; issue 14 items 6-7).

--check-config (each fails on the code before this test):
1. the config path is a FIFO: exit 1 at once, "not a regular file" (it blocked);
2. a webhook secret file holding only a newline: exit 1, file:line:col (a start
   refused it, the check passed it);
3. private_key_file that is not an RSA private key PEM: exit 1, file:line:col;
   a real RSA key (openssl genrsa) passes;
4. api_url http://api.github.com: exit 1, file:line:col (the token in clear
   text); http://127.0.0.1:PORT, http://localhost, http://[::1] stay accepted;
5. listen on 0.0.0.0: exit 0 with a warning that the listener has no
   authentication; 127.0.0.1 warns nothing;
6. api_url https://ghes.example.com (no /api/v3): exit 0 with a warning at
   file:line:col; .../api/v3, api.github.com and api.x.ghe.com warn nothing;
7. client_id instead of app_id: exit 0, the summary names it; both: exit 1.

runnerd with token_env (fake GitHub + fake docker):
8. the token is not in /proc/PID/environ (it was: F5), and a job is still served;
9. SIGHUP after the config file became a FIFO: the reload fails with "not a
   regular file", the loop keeps answering /healthz (it froze);
10. the config back, SIGHUP: reloaded, and a job queued after it is served with
   the token runnerd kept (its environment no longer holds it).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import opskit
import rdtest

BIN = os.environ.get("RUNNERD_BIN")
failures = []

POOL = "pools:\n  - name: p\n    labels: [self-hosted]\n    image: img\n    memory: 1GiB\n"
TARGET = "targets:\n  - repo: o/r\n"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def check_config(path, timeout=20):
    env = dict(os.environ, GITHUB_TOKEN="ghp_parity_token_not_real_0000000000")
    try:
        p = subprocess.run(rdtest.wrap([BIN, "--check-config", "-c", path]), capture_output=True,
                           text=True, env=env, timeout=rdtest.scaled(timeout))
    except subprocess.TimeoutExpired:
        return None, "", "timed out"
    return p.returncode, p.stdout, p.stderr


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def checks(tmp):
    cfg = os.path.join(tmp, "c.yaml")

    # 1. a FIFO where the config should be
    fifo = os.path.join(tmp, "fifo.yaml")
    os.mkfifo(fifo, 0o600)
    t0 = time.monotonic()
    rc, out, err = check_config(fifo)
    check(rc == 1 and err == "%s: not a regular file (a FIFO, device or socket is refused)\n" % fifo,
          "FIFO config: exit 1 'not a regular file' (%r %r)" % (rc, err))
    check(time.monotonic() - t0 < rdtest.scaled(10), "FIFO config: answered without blocking")

    # 2. an empty webhook secret
    hook = os.path.join(tmp, "hook")
    write(hook, "\n")
    write(cfg, "github:\n  token_env: GITHUB_TOKEN\n" + POOL + TARGET
          + "listen: 127.0.0.1:9\nwebhook_secret_file: hook\n", 0o644)
    rc, out, err = check_config(cfg)
    check(rc == 1 and err == "%s:11:22: webhook_secret_file: %s is empty\n" % (cfg, hook),
          "empty webhook secret: exit 1 at file:line:col (%r %r)" % (rc, err))
    write(hook, "s3cret\n")
    rc, out, err = check_config(cfg)
    check(rc == 0 and err == "", "non-empty webhook secret: exit 0 (%r)" % err)

    # 3. an App key that is not an RSA PEM, then a real one
    key = os.path.join(tmp, "app.pem")
    write(key, "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n")
    write(cfg, "github:\n  app_id: 12\n  private_key_file: app.pem\n" + POOL + TARGET, 0o644)
    rc, out, err = check_config(cfg)
    check(rc == 1 and err.startswith("%s:3:21: github.private_key_file: %s is not an RSA private "
                                     "key in PEM form" % (cfg, key)),
          "App key not a PEM: exit 1 at file:line:col (%r)" % err)
    check("bm90IGEga2V5" not in out + err, "App key not a PEM: its content is not printed")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    os.chmod(key, 0o600)
    rc, out, err = check_config(cfg)
    check(rc == 0 and err == "", "RSA App key: exit 0 (%r)" % err)

    # 7. client_id instead of app_id (same key)
    write(cfg, "github:\n  client_id: Iv23liAbCdEf01234567\n  private_key_file: app.pem\n"
          + POOL + TARGET, 0o644)
    rc, out, err = check_config(cfg)
    check(rc == 0 and "auth app client_id Iv23liAbCdEf01234567" in out,
          "client_id: exit 0, summary names it (%r %r)" % (err, out[:300]))
    write(cfg, "github:\n  app_id: 12\n  client_id: Iv23liAbCdEf01234567\n  private_key_file: "
          "app.pem\n" + POOL + TARGET, 0o644)
    rc, out, err = check_config(cfg)
    check(rc == 1 and err == "%s:3:3: github.client_id: app_id and client_id both name the App: "
          "set one of them (app_id is set at line 2)\n" % cfg,
          "app_id and client_id: exit 1 (%r)" % err)

    # 4. api_url http:// only to loopback
    for url, ok in (("http://api.github.com", False), ("http://10.0.0.1:8080/api/v3", False),
                    ("http://127.0.0.1:8080", True), ("http://localhost/", True),
                    ("http://[::1]:9", True), ("https://api.github.com", True)):
        write(cfg, "github:\n  token_env: GITHUB_TOKEN\n  api_url: %s\n" % url + POOL + TARGET,
              0o644)
        rc, out, err = check_config(cfg)
        if ok:
            check(rc == 0 and err == "", "api_url %s: accepted (%r)" % (url, err))
        else:
            check(rc == 1 and err.startswith("%s:3:12: github.api_url: plain http:// would send "
                                             "the token in clear text" % cfg),
                  "api_url %s: refused at file:line:col (%r)" % (url, err))

    # 6. a GHES URL without /api/v3 warns
    for url, warn in (("https://ghes.example.com", True), ("https://ghes.example.com/api/v3", False),
                      ("https://api.octo.ghe.com", False), ("https://api.github.com", False)):
        write(cfg, "github:\n  token_env: GITHUB_TOKEN\n  api_url: %s\n" % url + POOL + TARGET,
              0o644)
        rc, out, err = check_config(cfg)
        if warn:
            check(rc == 0 and err == "%s:3:12: github.api_url: warning: %s is neither "
                  "api.github.com nor a *.ghe.com host and its path has no /api/v3: GitHub "
                  "Enterprise Server serves its REST API at https://HOST/api/v3\n" % (cfg, url),
                  "api_url %s: exit 0 with a warning at file:line:col (%r)" % (url, err))
        else:
            check(rc == 0 and err == "", "api_url %s: no warning (%r)" % (url, err))

    # 5. listen beyond loopback warns
    for addr, warn in (("0.0.0.0:9464", True), ("[::]:9464", True), ("192.0.2.1:80", True),
                       ("127.0.0.1:9464", False), ("localhost:9464", False), ("[::1]:9464", False)):
        write(cfg, "github:\n  token_env: GITHUB_TOKEN\n" + POOL + TARGET + "listen: '%s'\n" % addr,
              0o644)
        rc, out, err = check_config(cfg)
        if warn:
            check(rc == 0 and err.startswith("%s:10:9: listen: warning: %s is not a loopback "
                                             "address: the listener has no authentication"
                                             % (cfg, addr)),
                  "listen %s: exit 0 with a warning (%r)" % (addr, err))
        else:
            check(rc == 0 and err == "", "listen %s: no warning (%r)" % (addr, err))


def served(s, repo, before):
    s.gh.jobs(repo, opskit.X64, count=1, duration_ms=200)
    rdtest.wait_until(lambda: len(opskit.docker_calls(s.state_dir, "run")) > before, 30, 0.1,
                      "a runner for the job queued")


def daemon(tmp):
    s = opskit.Setup(tmp, instance="parity", secret=None, listen=True,
                     targets=[{"repo": "parity-org/app"}])
    ok = False
    try:
        s.gh.repos("parity-org", ["app"])
        rd = s.start()
        if rdtest.WRAPPER:
            # Under valgrind the pid's /proc/PID/environ is the wrapper's own start-up
            # environment (valgrind builds the client's), which runnerd cannot touch.
            print("note: under RD_TEST_WRAPPER the /proc/PID/environ check is left to the plain "
                  "and ASan passes", flush=True)
        else:
            with open("/proc/%d/environ" % rd.proc.pid, "rb") as f:
                environ = f.read()
            check(rdtest.TOKEN.encode() not in environ,
                  "token_env: the token is not in /proc/PID/environ")
            check(b"RD_TEST_TOKEN=" + rdtest.TOKEN.encode() not in environ,
                  "token_env: RD_TEST_TOKEN no longer holds it")
        served(s, "parity-org/app", 0)
        check(True, "token_env: a job is served with the token kept in memory")

        # 9. the config file replaced by a FIFO: the reload must not freeze the loop
        saved = rd.cfg_path + ".saved"
        shutil.copy(rd.cfg_path, saved)
        os.unlink(rd.cfg_path)
        os.mkfifo(rd.cfg_path, 0o600)
        mark = s.log_size()
        rd.signal(signal.SIGHUP)
        m = s.wait_log(r"not a regular file", start=mark, timeout=20)
        check(m is not None, "FIFO reload: refused with 'not a regular file'")
        code, _, _ = opskit.get(s.port, "/healthz", timeout=5)
        check(code in (200, 503), "FIFO reload: /healthz still answers (%s)" % code)
        check(rd.alive(), "FIFO reload: runnerd keeps running")

        # 10. back to a file: reloaded, and jobs still served with the kept token
        os.unlink(rd.cfg_path)
        shutil.copy(saved, rd.cfg_path)
        mark = s.log_size()
        rd.signal(signal.SIGHUP)
        s.wait_log(r"reloaded: \d+ pools", start=mark, timeout=20)
        served(s, "parity-org/app", len(opskit.docker_calls(s.state_dir, "run")))
        check(True, "reload after token_env was taken: a job is still served")
        check(rdtest.TOKEN not in rd.logs(), "the token is never logged")
        ok = True
    finally:
        s.close(dump=not ok or bool(failures))


def main():
    if not BIN or not os.access(BIN, os.X_OK):
        print("RUNNERD_BIN is not set to an executable")
        return 1
    if not shutil.which("openssl"):
        check(False, "the openssl CLI is needed (scripts/install-deps.sh installs it)")
    with rdtest.TempDir() as tmp:
        checks(tmp)
    with rdtest.TempDir() as tmp:
        try:
            daemon(tmp)
        except AssertionError as e:
            check(False, "daemon: %s" % e)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
