#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: install dependencies,
# start dockerd if none answers, build the test runner images, check the
# install layout and build and lint the Debian package (check-package.sh), build with
# -Werror and with AddressSanitizer + UndefinedBehaviorSanitizer, run every test
# with ctest in both builds (side by side, see below), run the suite again with
# every binary of the build under valgrind memcheck (scripts/valgrind.sh), and
# every libFuzzer target for 60 s, two at a time (scripts/fuzz.sh, beside the
# valgrind pass). The sanitizer and valgrind passes leave out the six tests
# that run no code of runnerd (the tests of the docker double and its C front
# door, the fake GitHub, the test helpers, bench/poll's verdict on fixed figures
# and the runner images): there they would run exactly as in the first pass.
# Each pass prints its wall and CPU time.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    one build and ctest: no sanitizer, valgrind or fuzz pass
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/install-deps.sh
if [ -x scripts/start-dockerd.sh ]; then scripts/start-dockerd.sh; fi
if [ -x scripts/build-runner-images.sh ]; then scripts/build-runner-images.sh; fi

scripts/check-format.sh
jobs=$(nproc)
# Tests that run no code of runnerd (see scripts/valgrind.sh).
no_binary='^integration/(test_bench_poll|test_core_pure|test_fake_broker|test_fake_docker|test_fake_docker_zygote|test_fake_github|test_install|test_listener_helpers|test_runner_image)$'
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
# Install into a scratch prefix, build the .deb, lintian and its contents.
scripts/check-package.sh
pass_done "install and package checks"
if [ $quick -eq 1 ]; then
    (cd build && ctest --output-on-failure -j "$jobs")
    pass_done "build + ctest"
    echo "test.sh: quick pass finished in ${SECONDS}s"
    exit 0
fi
scripts/build.sh build-asan -DRD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
pass_done "both builds"

# The plain ctest pass and the ASan+UBSan one side by side: their tests mostly
# wait (each pass keeps about 0.6 of a core busy at -j2), and one after the other
# they would not leave room for the valgrind pass and the fuzzers in the CI's
# 20 minutes. ASan makes the binaries 2-3 times slower, so that pass stretches
# its deadlines by 2 (RD_TEST_TIMEOUT_SCALE). Each pass's output comes whole.
(cd build && ctest --output-on-failure -j "$jobs") >build/ctest-pass.log 2>&1 &
plain_pid=$!
(cd build-asan &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 RD_TEST_TIMEOUT_SCALE=2 \
    ctest --output-on-failure -j "$jobs" -E "$no_binary") >build-asan/ctest-pass.log 2>&1 &
asan_pid=$!
trap 'kill "$plain_pid" "$asan_pid" 2>/dev/null || true' EXIT
prc=0
wait "$plain_pid" || prc=$?
arc=0
wait "$asan_pid" || arc=$?
trap - EXIT
echo "test.sh: ---- plain ctest pass (build/)"
cat build/ctest-pass.log
echo "test.sh: ---- ASan+UBSan ctest pass (build-asan/)"
cat build-asan/ctest-pass.log
pass_done "plain and ASan+UBSan ctest, side by side"
if [ $prc -ne 0 ] || [ $arc -ne 0 ]; then
    echo "test.sh: FAILED: $([ $prc -ne 0 ] && echo "plain ctest pass ")$([ $arc -ne 0 ] && echo "ASan+UBSan ctest pass")"
    exit 1
fi

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
echo "test.sh: all test passes finished in ${SECONDS}s"
