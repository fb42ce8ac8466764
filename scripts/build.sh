#!/usr/bin/env bash
# Configure and build into DIR (default build/). Extra args go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DRD_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
