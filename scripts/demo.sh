#!/usr/bin/env bash
# The built-in demo: a fake GitHub with queued jobs across repositories, an
# organisation and two architectures; runnerd serves them with real Docker
# containers (x64 natively, arm64 under qemu emulation). No token needed.
# Then fleet mode: three runnerd hosts share 12 jobs through the fake
# scale-set broker, each job once, each host within its capacity.
#   scripts/demo.sh               both demos, real Docker engine (started if none answers)
#   scripts/demo.sh --fake-docker both, with the docker CLI double instead
#   scripts/demo.sh --poll        only the polling demo
#   scripts/demo.sh --fleet       only the fleet demo (add --fake-docker for the double)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
case " $* " in *" --fake-docker "*) fake=1 ;; *) fake=0 ;; esac
if [ "$fake" = 0 ]; then
    scripts/start-dockerd.sh
    scripts/build-runner-images.sh
fi
scripts/build.sh build >/dev/null
case " $* " in
*" --fleet "*) exec python3 scripts/demo.py --build build "$@" ;;
esac
args=()
for a in "$@"; do [ "$a" = --poll ] || args+=("$a"); done
case " $* " in
*" --poll "*) exec python3 scripts/demo.py --build build "${args[@]}" ;;
esac
python3 scripts/demo.py --build build "${args[@]}"
echo "demo: polling demo done; now fleet mode (three hosts, one fake scale-set broker)"
exec python3 scripts/demo.py --build build --fleet "${args[@]}"
