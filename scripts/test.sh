#!/bin/bash
# The whole check: bootstrap, then ruff, mypy and pytest (unit + integration tests against a
# real ZooKeeper and a 3-node ensemble in containers). Every step runs; the exit status is 1
# when any failed (pytest finding no tests counts as a failure). Arguments go to pytest.
# Containers zklock.testing made for runs that are gone are swept before and after.
# Logs: .ci/logs/.
#
#   env: ZKLOCK_TEST_TIMEOUT   per-test limit in seconds (default 120, needs pytest-timeout; the
#                              slowest test takes about 15 s: a hang must not eat CI's budget)
#        ZKLOCK_STEP_TIMEOUT   limit in seconds for each pytest step as a whole (default 1500;
#                              the whole run takes about 15 min): an overrun fails that step
#                              with exit 124 and the summary still prints, before CI's 90 min
set -uo pipefail

now_ms() { date +%s%3N; }
t_run=$(now_ms)
repo=$(cd "$(dirname "$0")/.." && pwd)
logs=$repo/.ci/logs
cd "$repo" || exit 1
"$repo/scripts/bootstrap.sh" >/dev/null || { echo "test.sh: bootstrap failed" >&2; exit 1; }
# shellcheck source=scripts/_env.sh
. "$repo/scripts/_env.sh"
export PYTHONDONTWRITEBYTECODE=1

summary=()
failed=0
step() {  # step NAME COMMAND...: run, time and record it
  local name=$1 start rc
  shift
  echo "==> $name" >&2
  start=$(now_ms)
  "$@"
  rc=$?
  summary+=("$(printf '%-10s %6.1fs  %s' "$name" "$(( $(now_ms) - start ))e-3" \
    "$(case $rc in 0) echo ok ;; 124|137) echo "FAILED (exit $rc: timed out)" ;; *) echo "FAILED (exit $rc)" ;; esac)")")
  [ "$rc" -eq 0 ] || failed=1
  return 0
}

# Every docker call of the sweep is bounded (timeout 30): a hung dockerd must fail the sweep
# with a message, not block the run until CI's own limit. Other docker errors stay ignored.
dock() { timeout -k 5 30 docker "$@"; }
timed_out() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }  # timed_out STATUS (of timeout -k)

running() {  # running KIND ID: the test process that created the object is still alive
  local labels=.Labels pid rc
  [ "$1" = container ] && labels=.Config.Labels
  pid=$(dock "$1" inspect -f "{{index $labels \"io.zklock.testing.pid\"}}" "$2" 2>/dev/null)
  rc=$?
  # No answer in time: keep it (removing a live run's container would be worse than a leftover).
  timed_out "$rc" && return 0
  [ -n "$pid" ] || return 1
  # Not `kill -0` alone: it fails for another user's live process too (EPERM), which would then
  # count as dead and lose its containers. /proc shows every live process, unless it is mounted
  # with hidepid, which hides other users' processes; those still answer `kill -0` with EPERM
  # ("not permitted"), never "no such process".
  [ -d "/proc/$pid" ] && return 0
  local out
  out=$(LC_ALL=C kill -0 "$pid" 2>&1) && return 0
  [[ $out == *"not permitted"* ]]
}

sweep() {  # containers and networks of crashed runs (Ryuk is off); live runs keep theirs
  local id ids stale=()
  # Only what zklock.testing made (it labels the pid of its process): never another project's
  # testcontainers containers, whatever their image.
  ids=$(dock ps -aq --filter label=io.zklock.testing.pid)
  ! timed_out $? || { echo "test.sh: docker ps did not answer within 30 s: is dockerd hung?" >&2; return 1; }
  for id in $ids; do
    running container "$id" || stale+=("$id")
  done
  if [ ${#stale[@]} -gt 0 ]; then
    echo "test.sh: removing ${#stale[@]} leftover container(s)" >&2
    # One already gone (another sweep, its own run's teardown) is not a failure.
    timeout -k 5 120 docker rm -f -v "${stale[@]}" >/dev/null 2>&1 || true
  fi
  ids=$(dock network ls -q --filter label=io.zklock.testing)
  ! timed_out $? || { echo "test.sh: docker network ls did not answer within 30 s: is dockerd hung?" >&2; return 1; }
  for id in $ids; do
    running network "$id" || dock network rm "$id" >/dev/null 2>&1 || true
  done
}

lint() {
  local paths=() p
  for p in zklock tests examples benchmarks; do [ -e "$p" ] && paths+=("$p"); done
  .venv/bin/python -m ruff check "${paths[@]}"
}

in_terminal_foreground() {  # this script's process group is its terminal's foreground one
  # Fields of /proc/PID/stat after "(comm) ": state ppid pgrp session tty_nr tpgid. Not
  # `[ -t 0 ]`: stdin may be redirected at a prompt, or a background job may have a terminal.
  local stat pgrp tpgid
  stat=$(cat "/proc/$$/stat" 2>/dev/null) || return 1
  read -r _ _ pgrp _ _ tpgid _ <<<"${stat##*) }"
  [ "$tpgid" -gt 0 ] && [ "$pgrp" = "$tpgid" ]
}

run_pytest() {
  local args=(-ra --durations=15) limit=(-k 30)
  if .venv/bin/python -c 'import pytest_timeout' 2>/dev/null; then
    args+=("--timeout=${ZKLOCK_TEST_TIMEOUT:-120}")
  fi
  # The step's limit: TERM (then KILL 30 s later) to pytest and, by default, its process group
  # (worker subprocesses too, so none keeps tee's pipe open). In a terminal's foreground job,
  # --foreground instead: timeout's own process group would not get the terminal's Ctrl-C.
  in_terminal_foreground && limit+=(--foreground)
  timeout "${limit[@]}" "${ZKLOCK_STEP_TIMEOUT:-1500}" \
    .venv/bin/python -m pytest "${args[@]}" "$@" 2>&1 | tee "$logs/${PYTEST_LOG:-pytest}.log"
  # timeout's status (124 when over the limit) is pytest's otherwise; any non-zero status
  # fails, including 5 (no tests collected)
  return "${PIPESTATUS[0]}"
}

echo "test.sh: ZooKeeper image $ZKLOCK_ZOOKEEPER_IMAGE" >&2
step sweep sweep
step ruff lint
step mypy .venv/bin/python -m mypy
step pytest run_pytest "$@"
# The whole suite again with every client made through zklock.testing (the workers in
# subprocesses too) on zklock's LeanHandler: issue 4 asks that whatever handler ships pass
# all of it, session loss and chaos included.  The unit tests talk to no server, so they run
# once, above.
run_pytest_lean() {
  ZKLOCK_TEST_HANDLER=lean PYTEST_LOG=pytest-lean run_pytest tests/integration tests/chaos
}
if [ $# -eq 0 ]; then
  step pytest-lean run_pytest_lean
fi
step sweep sweep

echo >&2
printf '%s\n' "${summary[@]}" >&2
printf '%-10s %6.1fs  (bootstrap included)\n' total "$(( $(now_ms) - t_run ))e-3" >&2
exit "$failed"
