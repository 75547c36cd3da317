#!/bin/bash
# Build a small FROM-scratch ZooKeeper image without any container registry, from files of
# Debian packages installed on this machine:
#   * a JRE made with jlink (openjdk-17-jdk-headless) holding only the modules ZooKeeper needs,
#   * the ZooKeeper 3.8 jars (libzookeeper-java) with their manifest Class-Path closure,
#     plus slf4j-simple (libslf4j-java) so that the server logs to stderr, and netty-codec
#     (libnetty-java), which the manifest leaves out but the Netty connection factory needs
#     for TLS (secureClientPort): its SslHandler is a codec class,
#   * the shared libraries ldd lists for them, and dash as /bin/sh,
#   * entrypoint.sh, which writes zoo.cfg from the official image's ZOO_* variables.
# The root filesystem keeps Debian's paths (merged /usr, /usr/share/java) and is loaded with
# `docker import`; nothing is pulled.
#
#   usage: docker/zookeeper/build-image.sh [--force] [IMAGE]     (default zklock-zookeeper:3.8)
#
# Idempotent: missing Debian packages are installed (as root), and the build is skipped when
# IMAGE already carries the label io.zklock.build-hash of this script, the entrypoint and the
# package versions. --force (or ZKLOCK_REBUILD_IMAGE=1) rebuilds anyway. IMAGE is tagged only
# after the new image passed its smoke test. The Docker daemon must be running
# (scripts/bootstrap.sh starts it); a daemon that does not answer within 30 s fails the build.
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

force=${ZKLOCK_REBUILD_IMAGE:-}
image=
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --force) force=1 ;;
    -*) echo "build-image.sh: unknown option $arg" >&2; usage >&2; exit 64 ;;
    *) [ -z "$image" ] || { echo "build-image.sh: one IMAGE only" >&2; exit 64; }; image=$arg ;;
  esac
done
image=${image:-zklock-zookeeper:3.8}

here=$(cd "$(dirname "$0")" && pwd)
arch=$(dpkg --print-architecture)
java_home=${JAVA_HOME_HOST:-/usr/lib/jvm/java-17-openjdk-$arch}
jre_dir=/usr/lib/jvm/zk-jre            # inside the image
# jdeps of zookeeper.jar (base, management, naming, jgss, sasl), what the Netty connection
# factory needs (logging, jdk.unsupported), OS metrics for mntr (jdk.management) and TLS /
# Kerberos helpers. java.desktop and java.sql are only used by the AdminServer (off).
modules=java.base,java.logging,java.management,java.naming,java.security.jgss,java.security.sasl
modules=$modules,jdk.unsupported,jdk.management,jdk.crypto.ec,jdk.security.auth
packages=(libzookeeper-java libslf4j-java libnetty-java openjdk-17-jdk-headless dash python3 docker.io)

log() { echo "build-image: $*" >&2; }
now_ms() { date +%s%3N; }
t_start=$(now_ms)

# ------------------------------------------------------------------ 1. Debian packages, daemon
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  # DPkg::Lock::Timeout covers the dpkg lock, not the lists lock `apt-get update` takes and a
  # fresh machine's own apt jobs may hold: retry a bounded number of times (output kept).
  for try in $(seq 10); do
    apt-get -o DPkg::Lock::Timeout=300 update -qq && break
    [ "$try" -lt 10 ] || { log "apt-get update failed 10 times"; exit 1; }
    log "apt-get update failed (try $try of 10), again in 15 s"
    sleep 15
  done
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
# Every probe of the daemon is bounded (timeout 30): a hung dockerd must fail with a message,
# not block until CI's own limit.
if ! timeout -k 5 30 docker info >/dev/null 2>&1; then
  log "the Docker daemon is not reachable or did not answer within 30 s (scripts/bootstrap.sh starts it)"
  exit 69
fi

# ------------------------------------------------------------------ 2. up to date?
versions=$(dpkg-query -W -f='${Package}=${Version}\n' "${packages[@]:0:4}")
build_hash=$(cat "$0" "$here/entrypoint.sh" <(echo "$versions $modules $arch") | sha256sum | cut -c1-16)
current=$(timeout -k 5 30 docker image inspect -f '{{index .Config.Labels "io.zklock.build-hash"}}' "$image" 2>/dev/null || true)
if [ -z "$force" ] && [ "$current" = "$build_hash" ]; then
  log "$image is up to date (build hash $build_hash)"
  exit 0
fi

# ------------------------------------------------------------------ 3. root filesystem
# The jars named below are required, not just copied when present: without zookeeper.jar there
# is no server, without slf4j-simple.jar it logs nothing (no slf4j binding), and without
# netty-codec.jar the Netty connection factory cannot serve TLS (the TLS tests need it). A jar
# missing from the manifest closure (jline.jar, the CLI's) is only reported below.
for required in zookeeper.jar:libzookeeper-java slf4j-simple.jar:libslf4j-java netty-codec.jar:libnetty-java; do
  jar=/usr/share/java/${required%%:*}
  [ -f "$jar" ] || { log "$jar is missing (Debian package ${required#*:}); the image would be unusable"; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/zklock-zk-image.XXXXXX")
# The import goes to a temporary name; IMAGE is tagged only after the smoke test passed. Had
# IMAGE been tagged first, a failed smoke test (or a kill in between) would leave a broken
# image whose build hash looks current, and the next run would report it up to date. On exit,
# by any path, the temporary name goes: after the tag that only untags it, before the tag it
# deletes the unverified image.
tmp_image=zklock-zookeeper-unverified:$build_hash-$$
# A build killed outright (SIGKILL skips the trap below) left its unverified image: remove
# those whose build process is gone.
for stale in $(timeout -k 5 30 docker images --format '{{.Repository}}:{{.Tag}}' \
    zklock-zookeeper-unverified 2>/dev/null || true); do
  [ -d "/proc/${stale##*-}" ] || timeout -k 5 30 docker image rm -f "$stale" >/dev/null 2>&1 || true
done
cleanup() {
  rm -rf "$work"
  timeout -k 5 30 docker image rm -f "$tmp_image" >/dev/null 2>&1 || true
}
trap cleanup EXIT
root=$work/rootfs
mkdir -p "$root"/usr/{bin,lib,lib64,local/bin,share/java} "$root"/{etc,root}
ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"      # merged /usr, so the loader and
ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"    # library paths from ldd resolve
install -d -m 1777 "$root/tmp" "$root/conf" "$root/data" "$root/datalog"

"$java_home/bin/jlink" --add-modules "$modules" --output "$root$jre_dir" \
  --strip-debug --no-man-pages --no-header-files --compress=2 --generate-cds-archive >/dev/null
rm -f "$root$jre_dir/lib/server/classes_nocoops.jsa"         # only for heaps above 32 GiB
ln -s ../lib/jvm/zk-jre/bin/java "$root/usr/bin/java"

# zookeeper.jar's manifest Class-Path names absolute /usr/share/java paths: copy its closure
# to the same paths (as files, not symlinks), plus the slf4j binding and netty-codec (TLS).
python3 - "$root" /usr/share/java/zookeeper.jar /usr/share/java/slf4j-simple.jar \
  /usr/share/java/netty-codec.jar <<'PY'
import os
import shutil
import sys
import zipfile

root, pending = sys.argv[1], sys.argv[2:]
done: set[str] = set()


def manifest_class_path(jar: str) -> list[str]:
    try:
        with zipfile.ZipFile(jar) as archive:
            text = archive.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (KeyError, zipfile.BadZipFile):
        return []
    # Manifest lines are wrapped at 72 bytes; a continuation line starts with one space.
    joined = text.replace("\r\n", "\n").replace("\n ", "")
    for line in joined.splitlines():
        if line.startswith("Class-Path:"):
            base = os.path.dirname(jar)
            return [e if e.startswith("/") else os.path.join(base, e) for e in line[11:].split()]
    return []


while pending:
    jar = pending.pop()
    if jar in done:
        continue
    done.add(jar)
    if not os.path.exists(jar):
        print(f"build-image:   not installed, skipped: {jar}", file=sys.stderr)
        continue
    target = root + jar
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(jar, target)
    pending.extend(manifest_class_path(jar))
print(f"build-image:   {sum(os.path.exists(j) for j in done)} jars", file=sys.stderr)
PY

cp -L /bin/dash "$root/usr/bin/dash"
ln -s dash "$root/usr/bin/sh"
{ echo /bin/dash; find "$root$jre_dir" -type f \( -name '*.so' -o -perm -u+x \); } |
  while read -r elf; do
    # "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    ldd "$elf" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; break } }' || true
  done | grep -v "^$root" | sort -u | while read -r lib; do
    case "$lib" in /lib/*|/lib64/*) dest=$root/usr$lib ;; *) dest=$root$lib ;; esac
    mkdir -p "$(dirname "$dest")"
    cp -L "$lib" "$dest"
  done

cat >"$root/etc/passwd" <<'TXT'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
TXT
cat >"$root/etc/group" <<'TXT'
root:x:0:
nogroup:x:65534:
TXT
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
install -m 0755 "$here/entrypoint.sh" "$root/usr/local/bin/entrypoint.sh"
t_rootfs=$(now_ms)

# ------------------------------------------------------------------ 4. import (temporary name)
zk_version=$(dpkg-query -W -f='${Version}' libzookeeper-java)
old_id=$(timeout -k 5 30 docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
tar --numeric-owner --owner=0 --group=0 -C "$root" -c . | docker import \
  --change "ENV PATH=/usr/local/bin:/usr/bin:/bin JAVA_HOME=$jre_dir LANG=C.UTF-8" \
  --change 'WORKDIR /' \
  --change 'EXPOSE 2181 2888 3888' \
  --change "LABEL org.opencontainers.image.title=zookeeper org.opencontainers.image.version=$zk_version io.zklock.build-hash=$build_hash" \
  --change 'ENTRYPOINT ["/bin/sh", "/usr/local/bin/entrypoint.sh"]' \
  --change 'CMD []' \
  --message "ZooKeeper $zk_version from Debian packages, jlinked JRE, FROM scratch" \
  - "$tmp_image" >/dev/null
new_id=$(timeout -k 5 30 docker image inspect -f '{{.Id}}' "$tmp_image")
t_import=$(now_ms)

# ------------------------------------------------------------------ 5. smoke test, then tag
if ! version=$(docker run --rm --network none "$tmp_image" java -version 2>&1); then
  log "smoke test failed (the new image is removed; $image is unchanged): $version"
  exit 1                                                  # cleanup removes $tmp_image
fi
log "${version%%$'\n'*}"
docker tag "$tmp_image" "$image"
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  docker image rm "$old_id" >/dev/null 2>&1 || true       # still used by a container: kept
fi
t_end=$(now_ms)
log "$(awk -v a="$t_start" -v b="$t_rootfs" -v c="$t_import" -v d="$t_end" 'BEGIN {
  printf "built %s in %.1fs (root filesystem %.1fs, import %.1fs, smoke test %.1fs)",
    "'"$image"'", (d - a) / 1000, (b - a) / 1000, (c - b) / 1000, (d - c) / 1000 }')"
docker image ls "$image" >&2
