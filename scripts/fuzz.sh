#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz/ with clang into build-fuzz/ and run
# each for SECONDS (default 60), two at a time. Exits non-zero when a target
# crashed, leaked, hit a sanitizer, timed out on an input or ran out of memory,
# or when a saved regression input (tests/fuzz/regressions/TARGET/) fails.
#
#   scripts/fuzz.sh [SECONDS]            every target
#   scripts/fuzz.sh SECONDS TARGET...    only these (e.g. fuzz_config)
#
# Environment: RD_FUZZ_BUILD (build dir, default build-fuzz), RD_FUZZ_JOBS
# (targets run at once, default 2).
#
# Kept under $RD_FUZZ_BUILD/fuzz/: corpus/TARGET (grows from run to run),
# artifacts/TARGET (crash-*, leak-*, timeout-*, oom-* inputs: reproduce with
# `$RD_FUZZ_BUILD/tests/fuzz/TARGET FILE`), logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
case $secs in
'' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;;
esac
build=${RD_FUZZ_BUILD:-build-fuzz}
jobs=${RD_FUZZ_JOBS:-2}

all_targets=(fuzz_config fuzz_ghjson fuzz_webhook fuzz_docker fuzz_sched fuzz_headers fuzz_listener)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

# Per target: longest input and dictionary.
max_len() {
    case $1 in
    fuzz_config) echo 16384 ;;
    fuzz_ghjson | fuzz_webhook | fuzz_listener) echo 65536 ;;
    fuzz_sched) echo 512 ;;
    *) echo 4096 ;;
    esac
}
dict() {
    case $1 in
    fuzz_config) echo tests/fuzz/dict/config.dict ;;
    fuzz_ghjson | fuzz_webhook) echo tests/fuzz/dict/json.dict ;;
    fuzz_listener | fuzz_headers) echo tests/fuzz/dict/http.dict ;;
    esac
}

command -v clang >/dev/null || { echo "fuzz.sh: clang not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DRD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_all -j "$jobs"

out=$build/fuzz
mkdir -p "$out/seeds" "$out/corpus" "$out/artifacts" "$out/logs"
python3 tests/fuzz/seeds.py . "$out/seeds"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()

# Saved regression inputs must keep passing (one run each, no fuzzing).
for t in "${targets[@]}"; do
    reg=tests/fuzz/regressions/$t
    bin=$build/tests/fuzz/$t
    [ -d "$reg" ] && [ -x "$bin" ] || continue
    files=("$reg"/*)
    [ -e "${files[0]}" ] || continue
    if ! "$bin" -runs=1 "${files[@]}" >"$out/logs/$t.regressions.log" 2>&1; then
        echo "fuzz.sh: $t: a regression input fails again (log: $out/logs/$t.regressions.log)"
        failed+=("$t(regression)")
    fi
done

run_one() {
    local t=$1 bin=$build/tests/fuzz/$1
    local corpus=$out/corpus/$t art=$out/artifacts/$t/ log=$out/logs/$t.log
    mkdir -p "$corpus" "$art"
    local d
    d=$(dict "$t")
    # -timeout: one input; -max_total_time: the run; `timeout`: a hard stop in
    # case the target wedges outside an input.
    timeout -k 10 $((secs + 120)) "$bin" \
        -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$art" ${d:+-dict="$d"} \
        "$corpus" "$out/seeds/$t" >"$log" 2>&1
}

pids=()
names=()
status_of() { # name pid: report one finished run
    local t=$1 rc=$2 log=$out/logs/$1.log
    local execs cov
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    if [ "$rc" -eq 0 ]; then
        echo "fuzz.sh: $t: ok (${execs:-?} inputs, coverage ${cov:-?} edges, ${secs}s)"
    else
        echo "fuzz.sh: $t: FAILED (exit $rc); log: $log; inputs kept in $out/artifacts/$t/:"
        ls -1 "$out/artifacts/$t/" | sed 's/^/    /'
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*invariant failed)' "$log" | head -5 | sed 's/^/    /'
        failed+=("$t")
    fi
}

for t in "${targets[@]}"; do
    if [ ! -x "$build/tests/fuzz/$t" ]; then
        # CMake says why (for fuzz_headers: a parser it reaches changed shape).
        echo "fuzz.sh: $t: not built, not run (see the cmake warnings above)"
        continue
    fi
    while [ "${#pids[@]}" -ge "$jobs" ]; do
        # Wait for the oldest run (all take about $secs).
        rc=0
        wait "${pids[0]}" || rc=$?
        status_of "${names[0]}" "$rc"
        pids=("${pids[@]:1}")
        names=("${names[@]:1}")
    done
    echo "fuzz.sh: $t: fuzzing for ${secs}s"
    run_one "$t" &
    pids+=($!)
    names+=("$t")
done
while [ "${#pids[@]}" -gt 0 ]; do
    rc=0
    wait "${pids[0]}" || rc=$?
    status_of "${names[0]}" "$rc"
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz.sh: all fuzz targets ran clean"
