#!/usr/bin/env bash
# The built-in demo: a fake GitHub with queued jobs across repositories, an
# organisation and two architectures; runnerd serves them with real Docker
# containers (x64 natively, arm64 under qemu emulation). No token needed.
#   scripts/demo.sh               real Docker engine (started if none answers)
#   scripts/demo.sh --fake-docker use the docker CLI double instead
#   scripts/demo.sh --fleet       fleet mode: three runnerd hosts share 12 jobs through the
#                                 fake scale-set broker (add --fake-docker for the double)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
case " $* " in *" --fake-docker "*) fake=1 ;; *) fake=0 ;; esac
if [ "$fake" = 0 ]; then
    scripts/start-dockerd.sh
    scripts/build-runner-images.sh
fi
scripts/build.sh build >/dev/null
exec python3 scripts/demo.py --build build "$@"
