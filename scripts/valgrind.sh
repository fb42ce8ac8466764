#!/usr/bin/env bash
# The whole ctest suite (every unit and integration test) with every process of
# the build under valgrind memcheck: the unit test binaries, and each runnerd,
# runnerctl, rd_discover and rd_supervise the integration tests start (they run
# them through rdtest.wrap(); the unit tests go through tests/tools/wrap.sh).
# Python, the fake GitHub, the docker doubles and docker run natively.
# Exits non-zero on any failing test, any memcheck error and any definite or
# indirect leak in any of those processes, and prints the memcheck reports.
#
#   scripts/valgrind.sh [BUILD_DIR] [CTEST_ARGS...]
#       BUILD_DIR: default build/ (built with scripts/build.sh if needed; after
#       scripts/test.sh it is current). Not a sanitizer build.
#       CTEST_ARGS: e.g. -R test_reload, -L unit (default: everything).
#
# Environment:
#   RD_VALGRIND_JOBS       tests run at once (ctest -j), default 4: the tests
#                          mostly wait (timers, the fake GitHub, docker), and
#                          four keep two cores busy
#   RD_TEST_TIMEOUT_SCALE  every deadline the tests wait on is multiplied by it
#                          (rdtest.scaled/wait_until, test_io_listener's
#                          run_until; a whole number), default 5: under memcheck the binaries run
#                          10-50 times slower in CPU. What the tests assert
#                          does not change; they only wait longer.
#   RD_VALGRIND_EXCLUDE    a ctest -E regex of tests not run here; default
#                          below, with the reason for each.
# Logs: BUILD_DIR/valgrind/TEST.PID.log, one per process (memcheck's report);
# the ones of a clean pass are removed unless RD_KEEP_VALGRIND_LOGS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$1; shift; fi
jobs=${RD_VALGRIND_JOBS:-4}

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
# An ASan build cannot run under valgrind.
if [ -f "$build/CMakeCache.txt" ] && grep -q '^RD_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "valgrind.sh: $build is a sanitizer build; give a plain one" >&2
    exit 2
fi
scripts/build.sh "$build" >/dev/null
build=$(cd "$build" && pwd)

logs=$build/valgrind
rm -rf "$logs"
mkdir -p "$logs"

# Tests not run here, each with its reason (docs/testing.md says the same):
# - test_fake_docker, test_fake_docker_zygote, test_fake_github,
#   test_listener_helpers, test_bench_poll: they test the docker double (the
#   Python one and its C front door rd_fake_docker, which links no code of
#   runnerd), the fake GitHub, the tests' helpers and bench/poll's verdict on
#   fixed figures; test_fake_broker tests the fake broker; test_core_pure runs nm
#   on librd_core.a; test_install checks the installed layout (cmake --install);
#   test_runner_image tests the runner images under the real
#   dockerd. None runs code of runnerd, so under memcheck they would run exactly
#   as in the plain pass, with nothing to check. (scripts/test.sh leaves them
#   out of the sanitizer pass for the same reason.)
# Every test that is run must start at least one process under memcheck
# (checked below), so a test that starts a binary without rdtest.wrap() fails.
# No test is left out for being slow or timing-sensitive.
no_binary='^integration/(test_bench_poll|test_core_pure|test_fake_broker|test_fake_docker|test_fake_docker_zygote|test_fake_github|test_install|test_listener_helpers|test_runner_image)$'
exclude=${RD_VALGRIND_EXCLUDE-$no_binary}

# memcheck's own exit code, so that it is told apart from a test's failure:
# a test that checks runnerd's exit code fails on it at once; every other
# process's report is checked below from its log.
VG_ERR=99
wrapper="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
  --errors-for-leak-kinds=definite,indirect --error-exitcode=$VG_ERR --track-fds=no
  --num-callers=30 --child-silent-after-fork=yes --log-file=$logs/{test}.%p.log"
# Known noise of system libraries, if any (none needed so far: what libcurl,
# GnuTLS and libuv keep in globals until exit is "still reachable", which is
# neither reported nor an error here).
if [ -f scripts/valgrind.supp ]; then wrapper="$wrapper --suppressions=$PWD/scripts/valgrind.supp"; fi
export RD_TEST_WRAPPER=$(echo $wrapper)
unset RUNNERD_WRAPPER
export RD_TEST_TIMEOUT_SCALE=${RD_TEST_TIMEOUT_SCALE:-5}

# Scans the memcheck logs; prints the report of each process with an error or
# a definite/indirect leak; returns 1 if there is any.
scan_logs() {
    local bad=0 n=0 summaries=0 f
    for f in "$logs"/*.log; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        grep -q 'ERROR SUMMARY:' "$f" && summaries=$((summaries + 1))
        if grep -qE 'ERROR SUMMARY: [1-9]' "$f"; then
            bad=$((bad + 1))
            echo "valgrind.sh: memcheck errors in $(basename "$f"):"
            sed -n 's/^==[0-9]*== Command: /    command: /p' "$f" | head -1
            # The report without valgrind's preamble and heap summary noise.
            grep -vE '^==[0-9]+== (Memcheck|Copyright|Using Valgrind|Command|Parent PID|$)' "$f" |
                head -150 | sed 's/^/    /'
        fi
    done
    # Processes killed with SIGKILL (and children between fork and exec) end
    # without a summary: nothing to judge there.
    echo "valgrind.sh: $n processes ran under memcheck, $summaries with a final report, $bad with errors or leaks"
    [ "$n" -gt 0 ] || { echo "valgrind.sh: no process ran under memcheck (wrapper not used?)"; return 1; }
    [ $bad -eq 0 ]
}

# Every test that ran must have started something under memcheck: the
# unit binaries via tests/tools/wrap.sh, the integration tests via rdtest.wrap().
check_wrapped() {
    local t missing=0
    for t in $( (cd "$build" && ctest -N ${exclude:+-E "$exclude"} "$@") |
        sed -n 's#^ *Test *\#[0-9]*: \(unit\|integration\)/##p'); do
        # A test that skipped (exit 77: no dockerd outside CI) ran nothing.
        grep -qE "/$t \.*\*\*\*(Skipped|Not Run)" "$logs/ctest.out" 2>/dev/null && continue
        if ! ls "$logs/$t".*.log >/dev/null 2>&1; then
            echo "valgrind.sh: $t started no process under memcheck (a binary not run through rdtest.wrap()?)"
            missing=1
        fi
    done
    [ $missing -eq 0 ]
}

# Removes the logs of the given tests (before they are run again).
drop_logs() {
    local t
    for t in "$@"; do rm -f "$logs/${t##*/}".*.log; done
}

start=$SECONDS
rc=0
(cd "$build" && ctest --output-on-failure -j "$jobs" ${exclude:+-E "$exclude"} "$@") 2>&1 |
    tee "$logs/ctest.out" || rc=$?
echo "valgrind.sh: ctest under memcheck took $((SECONDS - start))s"
if [ $rc -ne 0 ]; then
    # A test that failed on a deadline on a loaded machine runs once more,
    # alone: a real failure, error or leak fails again. Its memcheck logs of the
    # first run go (a test that gives up half-way leaves processes killed mid-
    # work), everyone else's are judged.
    failed=$(sed 's/^[0-9]*:\(unit\|integration\)\///' "$build/Testing/Temporary/LastTestsFailed.log" 2>/dev/null || true)
    if [ -n "$failed" ]; then
        echo "valgrind.sh: running the failed tests again, one at a time:" $failed
        # shellcheck disable=SC2086
        drop_logs $failed
        rc=0
        # (not --rerun-failed: with -E it reruns by the wrong numbers)
        (cd "$build" && ctest --output-on-failure -j 1 -R "^(unit|integration)/($(echo $failed | tr ' ' '|'))\$") 2>&1 |
            tee -a "$logs/ctest.out" || rc=$?
    fi
fi
vrc=0
scan_logs || vrc=$?
check_wrapped "$@" || vrc=1
if [ $rc -ne 0 ] || [ $vrc -ne 0 ]; then
    echo "valgrind.sh: FAILED (tests: $([ $rc -eq 0 ] && echo passed || echo failed), memcheck: $([ $vrc -eq 0 ] && echo clean || echo errors)); logs in $logs"
    exit 1
fi
[ "${RD_KEEP_VALGRIND_LOGS:-0}" = 1 ] || rm -rf "$logs"
echo "valgrind.sh: memcheck clean ($((SECONDS - start))s)"
