#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install dependencies,
# start dockerd if none answers, build the test runner images, build with
# -Werror, run every test with ctest, then run the suite again under
# AddressSanitizer + UndefinedBehaviorSanitizer, again with every binary of the
# build under valgrind memcheck (scripts/valgrind.sh), and every libFuzzer
# target for 60 s, two at a time (scripts/fuzz.sh; beside the valgrind pass,
# see below). The sanitizer and valgrind passes leave out the six tests that
# run no code of runnerd (the tests of the docker double and its C front door,
# the fake GitHub, the test helpers, bench/poll's verdict on fixed figures and
# the runner images): there they would run exactly as in the first pass. Each
# pass prints its wall and CPU time.
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
# Tests that run no code of runnerd (see scripts/valgrind.sh).
no_binary='^integration/(test_bench_poll|test_fake_docker|test_fake_docker_zygote|test_fake_github|test_listener_helpers|test_runner_image)$'
# Wall and CPU time (of the finished child processes) of each pass.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($16 + $17) / hz}' /proc/$$/stat; }
t0=$SECONDS
c0=$(cpu_s)
pass_done() {
    local c
    c=$(cpu_s)
    echo "test.sh: $1 took $((SECONDS - t0))s, $((c - c0)) CPU-s (total so far ${SECONDS}s)"
    t0=$SECONDS
    c0=$c
}

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
    # The fuzzers (CPU-bound, two at a time) run beside the valgrind pass: its
    # tests mostly wait (timers, the fake GitHub, docker), its deadlines are
    # stretched (RD_TEST_TIMEOUT_SCALE), and one after the other the two would
    # not fit the CI's 20 minutes. The fuzzers' output comes after valgrind's.
    fuzz_log=build/fuzz-pass.log
    scripts/fuzz.sh "${RD_FUZZ_SECONDS:-60}" >"$fuzz_log" 2>&1 &
    fuzz_pid=$!
    trap 'kill "$fuzz_pid" 2>/dev/null || true' EXIT
    vrc=0
    RD_VALGRIND_JOBS=${RD_VALGRIND_JOBS:-$((2 * jobs))} scripts/valgrind.sh build || vrc=$?
    pass_done "valgrind ctest (beside the fuzzers)"
    frc=0
    wait "$fuzz_pid" || frc=$?
    trap - EXIT
    cat "$fuzz_log"
    pass_done "the rest of the fuzzing"
    if [ $vrc -ne 0 ] || [ $frc -ne 0 ]; then
        echo "test.sh: FAILED: $([ $vrc -ne 0 ] && echo "valgrind pass ")$([ $frc -ne 0 ] && echo "fuzzing")"
        exit 1
    fi
fi
echo "test.sh: all test passes finished in ${SECONDS}s"
