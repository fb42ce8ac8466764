#!/usr/bin/env python3
"""docker.binary for the soak: records the runner credentials of every JIT
config that `run` receives (so the soak can look for them in logs and argv),
then execs the fake docker with the same arguments.

Env: FAKE_DOCKER_SOAK_BIN (the fake docker), FAKE_DOCKER_SOAK_SECRETS (file the credentials
are appended to, one a line; the soak's temporary directory, mode 0600)."""
import base64
import json
import os
import sys


def record_secrets():
    enc = os.environ.get("ACTIONS_RUNNER_INPUT_JITCONFIG")
    path = os.environ.get("FAKE_DOCKER_SOAK_SECRETS")
    if not enc or not path:
        return
    found = []
    try:
        files = json.loads(base64.b64decode(enc))
        creds = json.loads(base64.b64decode(files[".credentials"]))
        tok = creds.get("data", {}).get("token")
        if tok:
            found.append(tok)
        rsa = json.loads(base64.b64decode(files[".credentials_rsaparams"]))
        for k in ("d", "p", "q", "modulus"):
            if rsa.get(k):
                found.append(rsa[k])
    except (ValueError, KeyError, TypeError):
        found.append("UNDECODABLE")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write("".join(x + "\n" for x in found))


if len(sys.argv) > 1 and sys.argv[1] == "run":
    record_secrets()
fake = os.environ["FAKE_DOCKER_SOAK_BIN"]
os.execv(fake, [fake] + sys.argv[1:])
