# shellcheck shell=bash
# Shared by tests/kafka/{fetch,start,stop,create-topic,selftest}; sourced, not run.
#
# Layout (everything under cache/ is git-ignored and rebuilt on demand):
#   cache/lib/*.jar        runtime classpath of kafka_2.13 (pom.xml), from Maven
#   cache/lib/.stamp       sha256 of pom.xml the jars were fetched for
#   cache/bin/create-topic compiled from create-topic.c (librdkafka admin API)
#   cache/cds/*.jsa        JVM class-data-sharing archive of the broker (AppCDS),
#                          written by the first broker that stops cleanly

KAFKA_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_CACHE=$KAFKA_HERE/cache
KAFKA_LIB=$KAFKA_CACHE/lib

kafka_prog=${0##*/}
say() { printf '%s: %s\n' "$kafka_prog" "$*" >&2; }
die() { say "$*"; exit 1; }

# now in milliseconds (for timings)
now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

pom_stamp() { sha256sum "$KAFKA_HERE/pom.xml" | cut -d' ' -f1; }

# true when cache/lib holds the jars for the current pom.xml
jars_cached() {
  [ -f "$KAFKA_LIB/.stamp" ] && [ "$(cat "$KAFKA_LIB/.stamp")" = "$(pom_stamp)" ] &&
    compgen -G "$KAFKA_LIB/kafka_2.13-*.jar" >/dev/null
}

# classpath of the broker: every jar in cache/lib, in a stable order
kafka_classpath() {
  local IFS=: jars
  jars=("$KAFKA_LIB"/*.jar)
  echo "${jars[*]}"
}

# run "$@" holding an exclusive lock on the cache (parallel suites share it)
with_cache_lock() {
  mkdir -p "$KAFKA_CACHE"
  (
    flock -w 600 9 || die "cannot lock $KAFKA_CACHE/.lock"
    "$@"
  ) 9>"$KAFKA_CACHE/.lock"
}

# pid of the broker of DIR when it is running, else nothing and status 1.
# The pid file alone is not trusted (pids are reused): the process must be a
# java running kafka.Kafka with DIR's server.properties.
broker_pid() {
  local dir=$1 pid cmd
  [ -f "$dir/kafka.pid" ] || return 1
  pid=$(cat "$dir/kafka.pid" 2>/dev/null) || return 1
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $cmd in *kafka.Kafka*"$dir/server.properties"*) ;; *) return 1 ;; esac
  # a zombie (exited, not yet reaped) counts as stopped
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  echo "$pid"
}

abs_dir() { (cd "$1" && pwd); }
