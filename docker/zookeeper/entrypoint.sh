#!/bin/sh
# Entrypoint of the zklock-zookeeper image (see build-image.sh).
#
# POSIX sh using shell builtins only: the image holds nothing but dash, a jlinked JRE and the
# Debian ZooKeeper jars. It reads the same ZOO_* variables as the official "zookeeper" image on
# Docker Hub, so one test harness drives both images the same way:
#
#   ZOO_TICK_TIME (2000)          ZOO_INIT_LIMIT (5)           ZOO_SYNC_LIMIT (2)
#   ZOO_MAX_CLIENT_CNXNS (60)     ZOO_STANDALONE_ENABLED (true)
#   ZOO_ADMINSERVER_ENABLED (false here: the AdminServer's Jetty is not in the image)
#   ZOO_AUTOPURGE_PURGEINTERVAL (0)  ZOO_AUTOPURGE_SNAPRETAINCOUNT (3)
#   ZOO_4LW_COMMANDS_WHITELIST    written only when set (ZooKeeper's default allows just srvr)
#   ZOO_MY_ID (1)                 written to $ZOO_DATA_DIR/myid
#   ZOO_SERVERS                   space-separated "server.N=host:2888:3888;2181" entries
#   ZOO_CFG_EXTRA                 space-separated key=value lines appended to zoo.cfg,
#                                 e.g. "minSessionTimeout=400 maxSessionTimeout=20000"
#   ZOO_CONF_DIR (/conf) ZOO_DATA_DIR (/data) ZOO_DATA_LOG_DIR (/datalog)
#   JVMFLAGS (a small heap and the serial GC)  SERVER_JVMFLAGS (appended)
#
# Unlike the official image, zoo.cfg is rewritten on every start (the same environment gives the
# same file), and the JVM's DNS cache is shortened: ensemble peers are found by container name,
# and a restarted peer's name does not resolve while it is down, so the default 10 s cache of
# failed lookups would delay leader election after a restart.
#
# Arguments: none, or the official image's "zkServer.sh start-foreground", start the server;
# "key=value" arguments are appended to zoo.cfg; anything else is executed as given
# (for example "java -version").
set -eu

start_server=yes
case "${1:-}" in
  '') ;;
  zkServer.sh) shift $# ;;
  *=*) ;;
  *) start_server=no ;;
esac
if [ "$start_server" = no ]; then
  exec "$@"
fi

: "${ZOO_CONF_DIR:=/conf}"
: "${ZOO_DATA_DIR:=/data}"
: "${ZOO_DATA_LOG_DIR:=/datalog}"
: "${ZOO_TICK_TIME:=2000}"
: "${ZOO_INIT_LIMIT:=5}"
: "${ZOO_SYNC_LIMIT:=2}"
: "${ZOO_MAX_CLIENT_CNXNS:=60}"
: "${ZOO_STANDALONE_ENABLED:=true}"
: "${ZOO_ADMINSERVER_ENABLED:=false}"
: "${ZOO_AUTOPURGE_PURGEINTERVAL:=0}"
: "${ZOO_AUTOPURGE_SNAPRETAINCOUNT:=3}"
: "${ZOO_4LW_COMMANDS_WHITELIST:=}"
: "${ZOO_MY_ID:=1}"
: "${ZOO_SERVERS:=}"
: "${ZOO_CFG_EXTRA:=}"
: "${JVMFLAGS:=-Xms16m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData}"
: "${SERVER_JVMFLAGS:=}"
# netty-codec is not in zookeeper.jar's manifest Class-Path; TLS (secureClientPort) needs it.
: "${ZOO_CLASSPATH:=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-codec.jar}"

cfg="$ZOO_CONF_DIR/zoo.cfg"
{
  echo "dataDir=$ZOO_DATA_DIR"
  echo "dataLogDir=$ZOO_DATA_LOG_DIR"
  echo "clientPort=2181"
  echo "tickTime=$ZOO_TICK_TIME"
  echo "initLimit=$ZOO_INIT_LIMIT"
  echo "syncLimit=$ZOO_SYNC_LIMIT"
  echo "maxClientCnxns=$ZOO_MAX_CLIENT_CNXNS"
  echo "standaloneEnabled=$ZOO_STANDALONE_ENABLED"
  echo "admin.enableServer=$ZOO_ADMINSERVER_ENABLED"
  echo "autopurge.purgeInterval=$ZOO_AUTOPURGE_PURGEINTERVAL"
  echo "autopurge.snapRetainCount=$ZOO_AUTOPURGE_SNAPRETAINCOUNT"
  if [ -n "$ZOO_4LW_COMMANDS_WHITELIST" ]; then
    echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
  fi
  for entry in $ZOO_SERVERS; do echo "$entry"; done
  for entry in $ZOO_CFG_EXTRA; do echo "$entry"; done
  for entry in "$@"; do echo "$entry"; done
} >"$cfg"
echo "$ZOO_MY_ID" >"$ZOO_DATA_DIR/myid"

# Security properties, not -Dsun.net.inetaddr.*: the JRE's java.security file sets
# networkaddress.cache.negative.ttl=10, which takes precedence over the system property.
dns="$ZOO_CONF_DIR/dns.java.security"
printf 'networkaddress.cache.ttl=1\nnetworkaddress.cache.negative.ttl=0\n' >"$dns"

echo "entrypoint: $cfg" >&2
while IFS= read -r line; do echo "  $line" >&2; done <"$cfg"

# JVMFLAGS and SERVER_JVMFLAGS are word-split on purpose (one flag per word).
# shellcheck disable=SC2086
exec java $JVMFLAGS $SERVER_JVMFLAGS \
  -Djava.security.properties="$dns" \
  -Djava.io.tmpdir=/tmp \
  -Dzookeeper.jmx.log4j.disable=true \
  -Dorg.slf4j.simpleLogger.showDateTime=true \
  -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \
  -cp "$ZOO_CONF_DIR:$ZOO_CLASSPATH" \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
