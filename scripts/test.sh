#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install dependencies,
# start dockerd if none answers, build the test runner images, build with
# -Werror, run every test with ctest, then run the whole suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer, the unit tests and the config
# checker under valgrind memcheck, and every libFuzzer target for 60 s.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    one build and ctest: no sanitizer, valgrind or fuzz pass
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/install-deps.sh
if [ -x scripts/start-dockerd.sh ]; then scripts/start-dockerd.sh; fi
if [ -x scripts/build-runner-images.sh ]; then scripts/build-runner-images.sh; fi

jobs=$(nproc)
scripts/build.sh build
(cd build && ctest --output-on-failure -j "$jobs")

if [ $quick -eq 0 ]; then
    scripts/build.sh build-asan -DRD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    (cd build-asan && ctest --output-on-failure -j "$jobs")
    unset ASAN_OPTIONS UBSAN_OPTIONS
    scripts/valgrind.sh build
    scripts/fuzz.sh "${RD_FUZZ_SECONDS:-60}"
fi
echo "test.sh: all test passes finished"
