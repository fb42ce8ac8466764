#!/usr/bin/env bash
# Make sure a Docker engine answers: if `docker info` fails, start dockerd in
# the background (no bridge, no iptables: tests only use --network host/none),
# log to $DOCKERD_LOG (default /var/log/runnerd-dockerd.log, else /tmp), and
# wait up to 30 s for it. Exits non-zero, loudly, when it does not answer.
set -euo pipefail

DOCKER=${DOCKER:-docker}
die() { echo "start-dockerd: ERROR: $*" >&2; exit 1; }

if $DOCKER info >/dev/null 2>&1; then
    echo "start-dockerd: dockerd already answers"
    exit 0
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd not found: install docker.io (scripts/install-deps.sh)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log=${DOCKERD_LOG:-/var/log/runnerd-dockerd.log}
if ! { : >>"$log"; } 2>/dev/null; then
    log=/tmp/runnerd-dockerd.log
fi
echo "start-dockerd: starting dockerd (log: $log)"
$SUDO setsid nohup dockerd --bridge=none --iptables=false </dev/null >>"$log" 2>&1 &

for _ in $(seq 1 60); do
    if $DOCKER info >/dev/null 2>&1; then
        echo "start-dockerd: dockerd answers"
        exit 0
    fi
    sleep 0.5
done
echo "start-dockerd: last lines of $log:" >&2
tail -n 30 "$log" >&2 || true
die "dockerd did not answer within 30 s"
