#!/bin/sh
# runnerd test runner: plays a GitHub Actions runner against the fake GitHub
# (tests/fake_github, protocol in FAKES.md) with nothing but busybox.
#
# It reads the JIT config from $ACTIONS_RUNNER_INPUT_JITCONFIG (base64 JSON
# whose ".runner" and ".credentials" values are base64 JSON), opens a session
# reporting `uname -m` as its architecture, polls for a job, "runs" it for the
# duration the server gives, completes it and exits 0. SIGTERM ends it with
# 143, completing a job it runs as cancelled first (as the real runner does).
# Secrets (the JIT config, the runner id and token) only ever travel
# through shell variables and pipes into builtins: never in a process's argv
# (HTTP is spoken with `nc`, the request written by the builtin printf), never
# printed.
#
# With arguments naming an existing command (`docker run IMAGE uname -m`) it
# runs that command instead; other arguments (a pool's `command:`) are ignored.

if [ "$#" -gt 0 ] && command -v "$1" >/dev/null 2>&1; then
    exec "$@"
fi

RUNNER_VERSION=2.329.0
child=

log() { echo "$(date -u '+%Y-%m-%d %H:%M:%SZ'): $*"; }
die() { echo "An error occurred: $*" >&2; exit 1; }

job=
on_term() {
    [ -n "$child" ] && kill "$child" 2>/dev/null
    if [ -n "$job" ]; then
        # Like the real runner on a shutdown signal: the job ends cancelled, and
        # GitHub then removes the ephemeral registration.
        log "The runner has received a shutdown signal; cancelling job-$job"
        post complete "&job=$job&conclusion=cancelled"
    fi
    log "Received SIGTERM, exiting"
    exit 143
}
trap on_term TERM INT

# Sleep that a trapped signal interrupts (a foreground child would delay traps).
nap() {
    sleep "$1" &
    child=$!
    wait "$child"
    child=
}

b64json() { printf '%s' "$1" | base64 -d 2>/dev/null; }
# json_str KEY: the string value of "KEY" in the JSON on stdin (no nesting needed).
json_str() { sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | sed 's#\\/#/#g' | head -n 1; }
json_num() { sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1; }

[ -n "$ACTIONS_RUNNER_INPUT_JITCONFIG" ] || die "Not configured. Run config.(sh/cmd) to configure the runner."
outer=$(b64json "$ACTIONS_RUNNER_INPUT_JITCONFIG")
unset ACTIONS_RUNNER_INPUT_JITCONFIG
runner=$(b64json "$(printf '%s' "$outer" | json_str '\.runner')")
creds=$(b64json "$(printf '%s' "$outer" | json_str '\.credentials')")
outer=
rid=$(printf '%s' "$runner" | json_num agentId)
server=$(printf '%s' "$runner" | json_str serverUrl)
token=$(printf '%s' "$creds" | json_str token)
creds=
[ -n "$rid" ] && [ -n "$server" ] && [ -n "$token" ] || die "the JIT configuration could not be decoded"

# serverUrl = http://HOST:PORT/PREFIX
case "$server" in
    http://*) ;;
    *) die "only http:// server URLs are supported by this test image" ;;
esac
hostport=${server#http://}
prefix=/${hostport#*/}
[ "$prefix" = "/$hostport" ] && prefix=
hostport=${hostport%%/*}
case "$hostport" in
    \[*\]:*) host=${hostport%]:*}; host=${host#[}; port=${hostport##*]:} ;;
    *:*) host=${hostport%:*}; port=${hostport##*:} ;;
    *) host=$hostport; port=80 ;;
esac
prefix=${prefix%/}
arch=$(uname -m)

# post ACTION EXTRA-QUERY: POST to the runner endpoint; sets $status and $body.
post() {
    resp=$(printf 'POST %s/%s?id=%s&token=%s%s HTTP/1.0\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' \
        "$prefix" "$1" "$rid" "$token" "$2" "$hostport" | timeout 20 nc "$host" "$port" 2>/dev/null)
    status=$(printf '%s\n' "$resp" | head -n 1 | cut -d ' ' -f 2)
    body=$(printf '%s' "$resp" | tr -d '\r' | sed '1,/^$/d')
    case "$status" in [0-9][0-9][0-9]) ;; *) status=000 ;; esac
}

while :; do
    post session "&arch=$arch"
    case "$status" in
        200) break ;;
        401|404) die "runner registration not found or not authorized (HTTP $status)" ;;
    esac
    log "Failed to create a session (HTTP $status), retrying in 1 s"
    nap 1
done
echo
echo "√ Connected to GitHub"
echo
echo "Current runner version: '$RUNNER_VERSION'"
log "Listening for Jobs"

while :; do
    post acquire ""
    case "$status" in
        200) break ;;
        204) nap "0.$((100 + RANDOM % 150))" ;;
        401|404) log "Runner registration has been deleted from the server, exiting"; exit 1 ;;
        *) nap 1 ;;
    esac
done
set -- $body
job=$1
ms=${2:-0}
log "Running job: job-$job"
nap "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
tries=0
while [ "$tries" -lt 30 ]; do
    post complete "&job=$job&conclusion=success"
    case "$status" in 200|401|404) break ;; esac
    tries=$((tries + 1))
    nap 1
done
log "Job job-$job completed with result: Succeeded"
job=
exit 0
