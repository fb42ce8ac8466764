#!/usr/bin/env bash
# The built-in demo: a fake GitHub with queued jobs across repositories, an
# organisation and two architectures; runnerd serves them with real Docker
# containers (x64 natively, arm64 under qemu emulation). No token needed.
#   scripts/demo.sh               real Docker engine (started if none answers)
#   scripts/demo.sh --fake-docker use the docker CLI double instead
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ "${1:-}" != "--fake-docker" ]; then
    scripts/start-dockerd.sh
    scripts/build-runner-images.sh
fi
scripts/build.sh build >/dev/null
exec python3 scripts/demo.py --build build "$@"
