#!/usr/bin/env bash
# Run every unit test binary (ctest label "unit") and `runnerd --check-config`
# on every example and bad config under valgrind memcheck. Exits non-zero on any
# memcheck error, any definite or indirect leak, or any failing test.
#
#   scripts/valgrind.sh [BUILD_DIR]     default build/ (built with scripts/build.sh
#                                       if needed; after scripts/test.sh it is current)
#
# Environment: RD_VALGRIND_JOBS (binaries run at once, default 2).
# Logs: BUILD_DIR/valgrind/NAME.log (one per run, kept only when it failed).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=${RD_VALGRIND_JOBS:-2}

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
# An ASan build cannot run under valgrind.
if [ -f "$build/CMakeCache.txt" ] && grep -q '^RD_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "valgrind.sh: $build is a sanitizer build; give a plain one" >&2
    exit 2
fi
scripts/build.sh "$build" >/dev/null

logs=$build/valgrind
rm -rf "$logs"
mkdir -p "$logs"

# memcheck's own exit code, so that it is told apart from a test's failure.
VG_ERR=99
export VALGRIND_OPTS="--tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
  --errors-for-leak-kinds=definite,indirect --error-exitcode=$VG_ERR --track-fds=no
  --num-callers=30"
# Known noise of system libraries, if any (none needed so far).
if [ -f scripts/valgrind.supp ]; then VALGRIND_OPTS="$VALGRIND_OPTS --suppressions=$PWD/scripts/valgrind.supp"; fi
export CMOCKA_MESSAGE_OUTPUT=STDOUT
# Tests with fixed deadlines may multiply them by this (docs/testing.md):
# valgrind makes everything 10-50 times slower.
export RD_TEST_TIMEOUT_SCALE=${RD_TEST_TIMEOUT_SCALE:-10}
runs=$logs/runs.txt
: >"$runs"

# Unit tests, as ctest knows them (label "unit"); the slowest under memcheck
# (RSA in test_auth, real transfers in test_io_http) first, so that the rest
# runs beside them.
for t in $( (cd "$build" && ctest -N -L unit | sed -n 's#^ *Test *\#[0-9]*: unit/##p') |
    awk '/^test_(auth|io_http|pace|io_listener)$/ {print 0, $0; next} {print 1, $0}' | sort -s -k1,1n | cut -d' ' -f2); do
    [ -x "$build/$t" ] || { echo "valgrind.sh: $build/$t missing" >&2; exit 1; }
    printf 'unit %s %s\n' "$t" "$build/$t" >>"$runs"
done

# --check-config: exit 0 (valid) or 1 (invalid, or a referenced file is missing
# here) both count, as long as memcheck is clean: the error paths must free too.
for f in conf/*.yaml conf/examples/*.yaml tests/bad-config/*.yaml; do
    [ -f "$f" ] || continue
    name=check-config-$(echo "$f" | tr '/' '_')
    printf 'config %s %s\n' "$name" "$f" >>"$runs"
done

run_one() { # kind name what
    local kind=$1 name=$2 what=$3 log=$logs/$2.log rc=0
    local start=$SECONDS
    if [ "$kind" = unit ]; then
        valgrind --log-file="$log.vg" "$what" >"$log" 2>&1 || rc=$?
    else
        GITHUB_TOKEN=valgrind-not-a-token valgrind --log-file="$log.vg" \
            "$build/runnerd" --check-config -c "$what" >"$log" 2>&1 || rc=$?
    fi
    local ok=0
    if [ "$kind" = unit ]; then
        [ $rc -eq 0 ] && ok=1
    else
        [ $rc -eq 0 ] || [ $rc -eq 1 ] && ok=1
    fi
    if [ $ok -eq 1 ]; then
        echo "valgrind.sh: $name: ok ($((SECONDS - start))s)"
        rm -f "$log" "$log.vg"
    else
        local why="exit $rc"
        [ $rc -eq $VG_ERR ] && why="memcheck errors or leaks"
        echo "valgrind.sh: $name: FAILED ($why); logs: $log $log.vg"
        printf '%s %s %s\n' "$kind" "$name" "$what" >>"$logs/failed.txt"
        grep -E '==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|Argument|[0-9,]+ .*bytes in .* blocks are (definitely|indirectly) lost|ERROR SUMMARY)' \
            "$log.vg" | head -8 | sed 's/^/    /'
        return 1
    fi
}
export -f run_one
export logs build VG_ERR

start=$SECONDS
rc=0
# xargs: the runs in parallel, $jobs at a time; exit 123 when any failed.
xargs -P "$jobs" -L 1 bash -c 'run_one "$@"' _ <"$runs" || rc=$?
echo "valgrind.sh: $(wc -l <"$runs") runs in $((SECONDS - start))s"
if [ $rc -ne 0 ] && [ -s "$logs/failed.txt" ]; then
    # Some I/O tests have fixed deadlines (a few seconds) that a loaded machine
    # running valgrind in parallel can miss, and a test that fails half-way
    # leaks what it had not freed yet. Run the failed ones once more, alone: a
    # real memory error or leak fails again.
    mv "$logs/failed.txt" "$logs/retry.txt"
    echo "valgrind.sh: running $(wc -l <"$logs/retry.txt") failed run(s) again, one at a time"
    rc=0
    xargs -P 1 -L 1 bash -c 'run_one "$@"' _ <"$logs/retry.txt" || rc=$?
fi
if [ $rc -ne 0 ]; then
    echo "valgrind.sh: FAILED"
    exit 1
fi

# The daemon itself under memcheck, doing its whole job: the plan (--once
# --dry-run) and an end-to-end run with the docker double (poll, schedule, JIT,
# spawn, supervise, SIGTERM drain). The tests assert runnerd's exit code, which
# memcheck turns into $VG_ERR on any error or definite/indirect leak.
export RUNNERD_BIN=$build/runnerd RUNNERD_BUILD=$build RUNNERD_SRC=$PWD
export RUNNERD_WRAPPER="valgrind --error-exitcode=$VG_ERR --leak-check=full --errors-for-leak-kinds=definite,indirect -q"
for t in test_plan test_e2e_fake_docker; do
    if ! python3 "tests/integration/$t.py" >"$logs/daemon-$t.log" 2>&1; then
        echo "valgrind.sh: runnerd under memcheck failed in $t:"
        tail -40 "$logs/daemon-$t.log"
        exit 1
    fi
    echo "valgrind.sh: runnerd under memcheck: $t ok"
done
unset RUNNERD_WRAPPER
echo "valgrind.sh: memcheck clean"
