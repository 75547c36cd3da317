#!/bin/bash
# Prepare this machine for zklock's tests and demo (Debian 12, as root; idempotent):
#   1. apt-get install what is missing: docker.io libzookeeper-java libslf4j-java libnetty-java
#      openjdk-17-jdk-headless libcurator-recipes-java (the Curator interop test) python3-venv
#   2. start dockerd (setsid, no systemd needed) when `docker info` fails, and wait for it
#   3. choose the ZooKeeper image, never pulling: $ZKLOCK_ZOOKEEPER_IMAGE if set, else a local
#      zookeeper:3.9, else zklock-zookeeper:3.8 built by docker/zookeeper/build-image.sh
#   4. .venv with `pip install -e '.[dev]'`, versions pinned by scripts/constraints.txt, the
#      setuptools that builds zklock included (skipped while pyproject.toml and the constraints
#      are unchanged; the .venv is recreated when its pip fails or its Python version differs)
# The chosen image goes to .venv/zookeeper-image and, as ZKLOCK_ZOOKEEPER_IMAGE=..., to stdout
# (everything else goes to stderr). Logs: .ci/logs/.
#
#   env: ZKLOCK_PYTHON   interpreter for the venv (default /usr/bin/python3, else python3)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
logs=$repo/.ci/logs
venv=$repo/.venv
mkdir -p "$logs"
log() { echo "bootstrap: $*" >&2; }
fail() { log "$*"; exit 1; }

# One bootstrap at a time on this machine (test.sh and demo.sh may start together, from any
# clone): apt, dockerd and the image tag are machine-wide, so the lock is too. The lock is held
# as long as any process has fd 9 open, so every long-lived process started below gets `9>&-`:
# else dockerd (or a daemon an apt postinst starts) would hold it for good and the next
# bootstrap would wait forever. The wait is bounded for the same reason: a stuck lock fails
# with a message. An existing lock file is opened read-only (flock needs no more), so one that
# another user made in the sticky /run/lock or /tmp cannot make the open fail.
lockdir=/run/lock
[ -d "$lockdir" ] && [ -w "$lockdir" ] || lockdir=/tmp
lock=$lockdir/zklock-bootstrap.lock
[ -e "$lock" ] || (umask 022; : >>"$lock") 2>/dev/null || true  # readable by other users too
exec 9<"$lock" || fail "cannot open the lock file $lock"
flock -w 600 9 || fail "waited 600 s for $lock: another bootstrap still runs, or a process it started holds the lock (see: fuser -v $lock)"

# ------------------------------------------------------------------ 1. Debian packages
packages=(docker.io libzookeeper-java libslf4j-java libnetty-java openjdk-17-jdk-headless libcurator-recipes-java python3-venv)
# Debian's dockerd (20.10) fails every container start on a kernel with AppArmor on when
# apparmor_parser is missing; docker.io only recommends it, and recommends are not installed.
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then packages+=(apparmor); fi
# DPkg::Lock::Timeout covers the dpkg lock, but `apt-get update` also takes the lists lock,
# which a fresh machine's own apt jobs may hold: retry a bounded number of times instead. Every
# try's output stays in the log.
apt_update() {
  local try
  for try in $(seq 10); do
    apt-get -o DPkg::Lock::Timeout=300 update -q && return 0
    [ "$try" -eq 10 ] || { echo "apt-get update failed (try $try of 10), again in 15 s"; sleep 15; }
  done
  return 1
}
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || fail "missing Debian packages (${missing[*]}); run as root to install them"
  log "apt-get install ${missing[*]} (log: .ci/logs/apt.log)"
  {
    # A fresh machine's own apt jobs may hold the dpkg lock for a while: wait, do not fail.
    apt_update && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
      --no-install-recommends "${missing[@]}"
  } >"$logs/apt.log" 2>&1 9>&- || { tail -20 "$logs/apt.log" >&2; fail "apt-get failed"; }
fi

# ------------------------------------------------------------------ 2. Docker daemon
# Every docker call that probes or waits is bounded: a hung dockerd must fail here with a
# message, not block until CI's own limit (status 124 is the timeout's).
docker_info() { timeout -k 5 30 docker info >/dev/null 2>&1; }
rc=0
docker_info || rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  fail "docker info did not answer within 30 s: a Docker daemon runs but hangs (restart it; its log may be .ci/logs/dockerd.log)"
elif [ "$rc" -ne 0 ]; then
  log "starting dockerd (log: .ci/logs/dockerd.log)"
  # -w: should setsid have to fork, it waits, so $! stays alive exactly as long as dockerd
  setsid -w dockerd >"$logs/dockerd.log" 2>&1 </dev/null 9>&- &   # 9>&-: not the lock (above)
  dockerd_pid=$!
  deadline=$((SECONDS + 60))
  until docker_info; do
    # a dockerd that died (another one holds its pid file, a bad config...) is not waited for
    kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$logs/dockerd.log" >&2; fail "dockerd exited while starting"; }
    [ "$SECONDS" -lt "$deadline" ] || { tail -20 "$logs/dockerd.log" >&2; fail "dockerd did not start within 60 s"; }
    sleep 0.5
  done
fi

# ------------------------------------------------------------------ 3. ZooKeeper image
has_image() { timeout -k 5 30 docker image inspect "$1" >/dev/null 2>&1; }
if [ -n "${ZKLOCK_ZOOKEEPER_IMAGE:-}" ]; then
  image=$ZKLOCK_ZOOKEEPER_IMAGE
  case "$image" in
    zklock-zookeeper:*) "$repo/docker/zookeeper/build-image.sh" "$image" 9>&- ;;
    *) has_image "$image" || log "warning: $image is not present locally (nothing is pulled)" ;;
  esac
elif has_image zookeeper:3.9; then
  image=zookeeper:3.9
else
  image=zklock-zookeeper:3.8
  # skips the build when up to date; 9>&-: its apt-get may start daemons (see the lock)
  "$repo/docker/zookeeper/build-image.sh" "$image" 9>&-
fi

# ------------------------------------------------------------------ 4. Python environment
python=${ZKLOCK_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=python3; fi
fi
constraints=$repo/scripts/constraints.txt
stamp=$(cat "$repo/pyproject.toml" "$constraints" <(echo "$python $repo") | sha256sum | cut -c1-16)
# Recreated when it cannot run pip (broken or half-made) or runs another Python version than
# $python (a venv made by another interpreter: its installed packages are for that one). pip
# and every tool are run as `python -m`: bin/ scripts carry a shebang with the venv's path,
# stale once the clone has moved.
pyversion='import sys; print(sys.implementation.name, *sys.version_info[:3])'
want=$("$python" -c "$pyversion") || fail "cannot run $python (ZKLOCK_PYTHON)"
if [ "$("$venv/bin/python" -c "$pyversion" 2>/dev/null)" != "$want" ] ||
   ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  log "creating .venv with $python"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
if [ "$(cat "$venv/.install-stamp" 2>/dev/null)" != "$stamp" ]; then
  log "pip install -e '.[dev]' with scripts/constraints.txt (log: .ci/logs/pip.log)"
  # The constraints go in PIP_CONSTRAINT, not -c: pip ignores -c in the isolated environment
  # where it builds zklock itself, but that pip inherits the variable, so the setuptools that
  # builds zklock is pinned too. Relative to the repository (pip splits the variable at
  # whitespace, and the clone's path may have some).
  (cd "$repo" && PIP_CONSTRAINT=scripts/constraints.txt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$venv/bin/python" -m pip install -e "$repo[dev]") \
    >"$logs/pip.log" 2>&1 || { tail -30 "$logs/pip.log" >&2; fail "pip install failed"; }
  echo "$stamp" >"$venv/.install-stamp"
fi

echo "$image" >"$venv/zookeeper-image"
log "ZooKeeper image: $image"
echo "ZKLOCK_ZOOKEEPER_IMAGE=$image"
