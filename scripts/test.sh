#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install dependencies,
# start dockerd if none answers, build the test runner images, build with
# -Werror, run every test with ctest, then run the suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer, again with every binary of the
# build under valgrind memcheck (scripts/valgrind.sh), and every libFuzzer
# target for 60 s, two at a time (scripts/fuzz.sh). The sanitizer and valgrind
# passes leave out the four tests that start no binary of the build (the
# Python doubles' and helpers' own tests, the runner images): they would run
# there exactly as in the first pass. Each pass prints how long it took.
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
# Tests that start no binary of the build (see scripts/valgrind.sh).
no_binary='^integration/(test_fake_docker|test_fake_github|test_listener_helpers|test_runner_image)$'
t0=$SECONDS
pass_done() { echo "test.sh: $1 took $((SECONDS - t0))s (total so far $SECONDS s)"; t0=$SECONDS; }

scripts/build.sh build
(cd build && ctest --output-on-failure -j "$jobs")
pass_done "build + ctest"

if [ $quick -eq 0 ]; then
    scripts/build.sh build-asan -DRD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    (cd build-asan && ctest --output-on-failure -j "$jobs" -E "$no_binary")
    unset ASAN_OPTIONS UBSAN_OPTIONS
    pass_done "ASan+UBSan build + ctest"
    RD_VALGRIND_JOBS=$jobs scripts/valgrind.sh build
    pass_done "valgrind ctest"
    scripts/fuzz.sh "${RD_FUZZ_SECONDS:-60}"
    pass_done "fuzzing"
fi
echo "test.sh: all test passes finished in ${SECONDS}s"
