#!/bin/sh
# zklock exec from the shell: run commands under a ZooKeeper lock, as flock(1) does with a file.
#
#   sh examples/exec.sh [LOCK_PATH]
#
# Uses the ZooKeeper at $ZKLOCK_HOSTS.  Without it, starts a throwaway one with `zklock server`
# (a container if Docker has the image, else a local Java ZooKeeper) and stops it at the end.
# $ZKLOCK overrides the command (default: zklock), e.g. ZKLOCK="python -m zklock.cli".
# On a server of your own the lock path stays, empty, as every lock path does (zklock never
# deletes a lock's parent: another process may be queueing under it); remove it with
# ZooKeeper's `zkCli.sh deleteall /zklock-examples` if you like.
set -eu

ZKLOCK=${ZKLOCK:-zklock}
LOCK=${1:-/zklock-examples/exec-$$}
work=$(mktemp -d)
server_pid=

cleanup() {
    if [ -n "$server_pid" ]; then
        kill -INT "$server_pid" 2>/dev/null || true  # zklock server stops ZooKeeper on SIGINT
        wait "$server_pid" || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${ZKLOCK_HOSTS:-}" ]; then
    $ZKLOCK server --port 0 >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    tries=0
    until [ -s "$work/server.out" ]; do  # the connect string is its first line on stdout
        tries=$((tries + 1))
        if [ "$tries" -gt 600 ] || ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$work/server.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    ZKLOCK_HOSTS=$(head -n 1 "$work/server.out")
    export ZKLOCK_HOSTS
    echo "0. started a throwaway ZooKeeper at $ZKLOCK_HOSTS"
fi

# 1. One command under the lock.  It finds the fencing token in its environment: hand it to
#    whatever it writes to, so that a resource can refuse a holder older than one it has seen.
$ZKLOCK exec "$LOCK" -- sh -c 'echo "1. holding $ZKLOCK_PATH, fencing token $ZKLOCK_TOKEN"'

# 2. The command's exit status is zklock's exit status.
status=0
$ZKLOCK exec "$LOCK" -- sh -c 'exit 3' || status=$?
echo "2. the command exited 3, zklock exited $status"
[ "$status" -eq 3 ]

# 3. Three jobs started at once run one at a time, in the order of their tokens.
pids=
for name in a b c; do
    $ZKLOCK exec --quiet --identifier "job-$name" "$LOCK" -- sh -c "
        echo \"\$ZKLOCK_TOKEN start $name\" >>'$work/log'
        sleep 0.3
        echo \"\$ZKLOCK_TOKEN end $name\" >>'$work/log'" &
    pids="$pids $!"
done
for pid in $pids; do wait "$pid"; done
echo "3. three jobs, one at a time:"
sed 's/^/     /' "$work/log"
# Each start is followed by its own end, and tokens only go up.
awk '$2 == "start" { if (open != "") exit 1; open = $3; if ($1 <= last) exit 1; last = $1 }
     $2 == "end"   { if (open != $3) exit 1; open = "" }' "$work/log"

# 4. While someone holds the lock: --no-wait and --timeout give up with the -E status.
$ZKLOCK exec --quiet --identifier "long-job" "$LOCK" -- sleep 3 &
holder=$!
until $ZKLOCK status --json "$LOCK" | grep -q '"identifier": "long-job"'; do sleep 0.1; done
$ZKLOCK status "$LOCK" | sed 's/^/     /'
status=0
$ZKLOCK exec --no-wait -E 10 "$LOCK" -- echo "never printed" 2>/dev/null || status=$?
echo "4. --no-wait while long-job holds it: exit $status (the -E value)"
[ "$status" -eq 10 ]
status=0
$ZKLOCK exec --timeout 0.5 "$LOCK" -- echo "never printed" 2>"$work/err" || status=$?
echo "   --timeout 0.5: exit $status, $(tail -n 1 "$work/err")"
[ "$status" -eq 1 ]
wait "$holder"

# 5. What the command leaves running keeps the lock, as with flock(1): zklock lets go only once
#    the background job has finished too (on Linux; it says so on stderr).
$ZKLOCK exec "$LOCK" -- sh -c "
    (sleep 0.5; echo finished >>'$work/background') >/dev/null 2>&1 &
    echo started >>'$work/background'" 2>"$work/err"
echo "5. $(tail -n 1 "$work/err" | cut -c1-90)..."
echo "   when zklock exec returned, the background job had: $(tail -n 1 "$work/background")"
[ "$(tail -n 1 "$work/background")" = finished ]

echo "OK"
