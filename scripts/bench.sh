#!/usr/bin/env bash
# Benchmarks, each figure beside a peer measured in the same run on the same data; writes
# BENCHMARKS.md. Usage: scripts/bench.sh [--quick] [WORKLOAD...]   (default: all workloads)
# A full run replaces the sections of the workloads it ran (scripts/bench_merge.py) and keeps the
# others; --quick (smaller data, 3 runs) only prints its figures.
#   decode  rows/s and MB/s decoding a binlog of N rows with 8 typed columns on one core:
#           `rowbus inspect binlog` vs `mariadb-binlog --base64-output=decode-rows -v`, same file,
#           and vs the `mysql-replication` PyPI library streaming it from the server
#   memory  peak RSS of `rowbus run` while a single-transaction DELETE of N rows streams to a file
#   sinks   rows/s applied by the postgres and mysql sinks, commit to the last row in the target,
#           vs the database's own bulk load of the same rows (COPY, LOAD DATA) as the ceiling
#           (PostgreSQL: the local service on 127.0.0.1:5432, user postgres, database test)
#   search  documents/s indexed by the opensearch sink (into osmem-server, an in-memory OpenSearch),
#           commit to the last document counted, vs a direct `_bulk` of the same documents from
#           scripts/bulk_peer.py (same body size, same number of connections) as the ceiling
#   kafka   rows/s from the commit of an N-row transaction to the last message in a 3-partition
#           topic of tansu (a Kafka-compatible broker), vs a plain rdkafka producer sending the same
#           messages to the same broker with the same settings (crates/rowbus/examples/kafka_peer.rs)
#   snapshot rows/s of a snapshot of an N-row, 8-column table to the file sink (start to the last
#           line written) vs `mariadb-dump --single-transaction --quick` of the same table to a file
#   transforms rows/s of N binlog rows to the file sink through a filter + rename + mask chain
#           vs the same rows without transforms (the ceiling), alternately from the same position
#   latency p50/p99 from commit to delivered at a steady 5,000 rows/s: rowbus's file sink vs
#           `mariadb-binlog --read-from-remote-server --stop-never -v` streaming the same binlog
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

QUICK=0
WORKLOADS=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    decode|memory|sinks|search|kafka|snapshot|transforms|latency) WORKLOADS+=("$arg") ;;
    *) echo "usage: scripts/bench.sh [--quick] [decode] [memory] [sinks] [search] [kafka] [snapshot] [transforms] [latency]" >&2; exit 2 ;;
  esac
done
[ ${#WORKLOADS[@]} -eq 0 ] && WORKLOADS=(decode memory sinks search kafka snapshot transforms latency)
if [ "$QUICK" = 1 ]; then DECODE_ROWS=50000; MEMORY_ROWS=100000; SINK_ROWS=50000; SNAPSHOT_ROWS=100000; TRANSFORM_ROWS=200000; LATENCY_SECONDS=5; RUNS=3; else DECODE_ROWS=200000; MEMORY_ROWS=1000000; SINK_ROWS=200000; SNAPSHOT_ROWS=1000000; TRANSFORM_ROWS=1000000; LATENCY_SECONDS=20; RUNS=5; fi

prepare_release

bench_server rowbus-bench
RESULTS="$WORK/results.md"
: >"$RESULTS"

# The decode workload's Python peer: mysql-replication in a virtualenv (kept between runs).
PEER_VENV="${ROWBUS_BENCH_VENV:-$HOME/.cache/rowbus/bench-venv}"
ensure_python_peer() {
  if [ ! -x "$PEER_VENV/bin/python" ] || ! "$PEER_VENV/bin/python" -c 'import pymysqlreplication' 2>/dev/null; then
    log "installing mysql-replication into $PEER_VENV"
    python3 -m venv "$PEER_VENV"
    "$PEER_VENV/bin/pip" install --quiet mysql-replication
  fi
}

bench_decode() {
  log "decode: writing $DECODE_ROWS rows of 8 columns into a binlog"
  "${SQL[@]}" -e "CREATE DATABASE bench; CREATE TABLE bench.t (id BIGINT PRIMARY KEY, a INT, b BIGINT,
    c VARCHAR(32), d DECIMAL(10,2), e DATETIME(3), f DOUBLE, g TINYINT) DEFAULT CHARSET=utf8mb4; FLUSH BINARY LOGS;"
  local step=1000 from=1
  while [ "$from" -le "$DECODE_ROWS" ]; do
    local to=$((from + step - 1))
    "${SQL[@]}" bench -e "INSERT INTO t SELECT seq, seq % 100000, seq * 1000003, CONCAT('name-', seq),
      (seq % 100000) / 100, '2024-01-31 12:00:00.123' + INTERVAL seq SECOND, seq / 7, seq % 100 FROM seq_${from}_to_${to}"
    from=$((to + 1))
  done
  local file
  file=$("${SQL[@]}" -N -e "SHOW MASTER STATUS" | cut -f1)
  "${SQL[@]}" -e "FLUSH BINARY LOGS"
  local binlog="$WORK/mariadb/data/$file"
  local bytes; bytes=$(stat -c %s "$binlog")
  local rowbus_rows; rowbus_rows=$("$ROWBUS" inspect binlog --table 'bench.*' "$binlog" | grep -c '"op":"c"')
  [ "$rowbus_rows" = "$DECODE_ROWS" ] || { echo "rowbus decoded $rowbus_rows rows, expected $DECODE_ROWS" >&2; exit 1; }
  local peer_rows; peer_rows=$(mariadb-binlog --base64-output=decode-rows -v "$binlog" | grep -c '^### INSERT')
  [ "$peer_rows" = "$DECODE_ROWS" ] || { echo "mariadb-binlog decoded $peer_rows rows, expected $DECODE_ROWS" >&2; exit 1; }
  ensure_python_peer
  log "decode: $RUNS runs each, alternating, pinned to one core"
  : >"$WORK/rowbus.times"; : >"$WORK/peer.times"; : >"$WORK/python.times"
  for _ in $(seq 1 "$RUNS"); do
    local t0 t1
    t0=$(now); taskset -c 0 "$ROWBUS" inspect binlog "$binlog" >/dev/null; t1=$(now)
    python3 -c "print($DECODE_ROWS/($t1-$t0))" >>"$WORK/rowbus.times"
    t0=$(now); taskset -c 0 mariadb-binlog --base64-output=decode-rows -v "$binlog" >/dev/null; t1=$(now)
    python3 -c "print($DECODE_ROWS/($t1-$t0))" >>"$WORK/peer.times"
    # Streams from the server as a replica (the server's work is on the other core).
    taskset -c 0 "$PEER_VENV/bin/python" scripts/decode_peer.py "$PORT" "$file" "$DECODE_ROWS" >>"$WORK/python.times"
  done
  local mb; mb=$(python3 -c "print(round($bytes/1e6, 1))")
  {
    echo "### decode: $DECODE_ROWS rows, 8 columns, one binlog of $mb MB, one core"
    echo
    echo "| decoder | rows/s, median (min–max) of $RUNS |"
    echo "|---|---|"
    echo "| rowbus inspect binlog (native JSON lines) | $(stats <"$WORK/rowbus.times") |"
    echo "| mariadb-binlog --base64-output=decode-rows -v | $(stats <"$WORK/peer.times") |"
    echo "| mysql-replication (PyPI), streaming the same binlog from the server | $(stats <"$WORK/python.times") |"
    echo
  } >>"$RESULTS"
}

bench_memory() {
  log "memory: single-transaction DELETEs of $MEMORY_ROWS rows streamed to the file sink, $RUNS runs"
  "${SQL[@]}" -e "CREATE DATABASE IF NOT EXISTS mem; CREATE TABLE mem.t (id BIGINT PRIMARY KEY, pad VARCHAR(100))
    DEFAULT CHARSET=utf8mb4"
  local start; start=$("${SQL[@]}" -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
  cat >"$WORK/mem.toml" <<TOML
data_dir = "$WORK/mem-data"
[sources.mem]
type = "mysql"
url = "mysql://root@127.0.0.1:$PORT"
server_id = 777
include = ["mem.*"]
start = "$start"
[sinks.out]
type = "file"
path = "$WORK/mem.jsonl"
TOML
  "$ROWBUS" run -c "$WORK/mem.toml" 2>"$WORK/mem.log" &
  echo $! >"$WORK/rowbus.pid"
  local pid; pid=$(cat "$WORK/rowbus.pid")
  : >"$WORK/mem.rates"; : >"$WORK/mem.server"
  local r lines=0
  for r in $(seq 1 "$RUNS"); do
    # The inserts stream too (into the same file): the DELETE is timed from its commit.
    "${SQL[@]}" -e "INSERT INTO mem.t SELECT seq, REPEAT('x', 100) FROM mem.seq_1_to_$MEMORY_ROWS"
    lines=$((lines + MEMORY_ROWS))
    wait_for_lines "$WORK/mem.jsonl" "$lines" >/dev/null
    local t0; t0=$(now)
    "${SQL[@]}" -e "DELETE FROM mem.t"
    local committed; committed=$(now)
    lines=$((lines + MEMORY_ROWS))
    local t1; t1=$(wait_for_lines "$WORK/mem.jsonl" "$lines")
    python3 -c "print($MEMORY_ROWS/($t1-$committed))" >>"$WORK/mem.rates"
    python3 -c "print($MEMORY_ROWS/($committed-$t0))" >>"$WORK/mem.server"
  done
  local hwm; hwm=$(awk '/VmHWM/ {print $2}' /proc/"$pid"/status)
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus.pid"
  local mb; mb=$(python3 -c "print(round($hwm/1024, 1))")
  {
    echo "### memory: single-transaction DELETE of $MEMORY_ROWS rows to the file sink"
    echo
    echo "| measure | value |"
    echo "|---|---|"
    echo "| peak RSS of rowbus (VmHWM) over $RUNS inserts and deletes of $MEMORY_ROWS rows | $mb MB |"
    echo "| rows/s from the DELETE's commit to the last line written (fsync per batch), median (min–max) of $RUNS | $(stats <"$WORK/mem.rates") |"
    echo "| for comparison: rows/s of the DELETE itself on the server | $(stats <"$WORK/mem.server") |"
    echo
    echo "Targets: peak RSS at most 150 MB: $(verdict 150 "$mb"); file sink at least 500,000 rows/s"
    echo "(median): $(verdict "$(median "$WORK/mem.rates")" 500000)."
    echo
  } >>"$RESULTS"
}

# wait_for_count CMD N: runs CMD (printing a count) until it prints at least N; prints the time.
wait_for_count() {
  local want=$2
  while true; do
    local n; n=$(eval "$1" 2>/dev/null || echo 0)
    if [ "${n:-0}" -ge "$want" ]; then now; return; fi
    sleep 0.05
  done
}

# wait_for_table TABLE N CLIENT...: waits until TABLE (keyed by id 1..N) holds N rows; prints the
# time. Asks over one open connection of CLIENT (reading queries from stdin, one result line
# each), first for the last id, which the primary key answers at once, then for the count, so
# that the wait costs the database and the machine little beside the sink being measured.
wait_for_table() {
  local table=$1 want=$2; shift 2
  local query="SELECT coalesce(max(id), 0) FROM $table;" n=0
  coproc POLL { "$@"; }
  while true; do
    echo "$query" >&"${POLL[1]}"
    if ! read -r -t 120 n <&"${POLL[0]}"; then
      echo "bench: $1 gave no answer about $table within 120 s (its error, if any, is above)" >&2
      return 1
    fi
    case "$n" in ''|*[!0-9]*) echo "bench: ${1} answered \"$n\" about $table" >&2; return 1 ;; esac
    if [ "$n" -ge "$want" ]; then
      [ "$query" != "SELECT count(*) FROM $table;" ] && { query="SELECT count(*) FROM $table;"; continue; }
      now; break
    fi
    sleep 0.01
  done
  exec {POLL[1]}>&-
  wait "$POLL_PID" 2>/dev/null || true
}

# sinks_one pg|my: one rowbus with the postgres or the mysql sink, started at the binlog's end (so
# that no other rowbus reads while it is measured) and warmed up by a first small table; then
# $RUNS tables of $SINK_ROWS rows, each timed from the commit of its INSERT to its last row in
# the target, and after each the ceiling: the same rows bulk-loaded from a file by the database.
sinks_one() {
  local kind=$1 sink_section wait_with target
  local cols_my="id BIGINT PRIMARY KEY, a INT, b VARCHAR(32), c DECIMAL(10,2), d DATETIME(3)"
  local cols_pg="id bigint PRIMARY KEY, a integer, b varchar(32), c numeric(10,2), d timestamp(3)"
  if [ "$kind" = pg ]; then
    sink_section="type = \"postgres\"
url = \"postgres://postgres@127.0.0.1:5432/test\"
schema = \"rowbus_bench\""
    wait_with=("${PSQL[@]}" -At); target=rowbus_bench
  else
    sink_section="type = \"mysql\"
url = \"mysql://root@127.0.0.1:$PORT\"
schema = \"sinks_copy\""
    wait_with=("${SQL[@]}" -N -B --unbuffered); target=sinks_copy
  fi
  local start; start=$("${SQL[@]}" -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
  cat >"$WORK/sinks-$kind.toml" <<TOML
data_dir = "$WORK/sinks-$kind-data"
[sources.bench]
type = "mysql"
url = "mysql://root@127.0.0.1:$PORT"
server_id = $([ "$kind" = pg ] && echo 778 || echo 779)
include = ["sinks.${kind}*"]
start = "$start"
[sinks.$kind]
$sink_section
TOML
  "$ROWBUS" run -c "$WORK/sinks-$kind.toml" 2>"$WORK/sinks-$kind.log" &
  echo $! >"$WORK/rowbus-$kind.pid"
  local fill="SELECT seq, seq % 100000, CONCAT('name-', seq), (seq % 100000) / 100,
      '2024-01-31 12:00:00.123' + INTERVAL seq SECOND FROM sinks.seq_1_to_"
  local r
  for r in $(seq 0 "$RUNS"); do
    local rows=$SINK_ROWS; [ "$r" = 0 ] && rows=1000 # run 0 warms up (connections, catalogs)
    if [ "$kind" = pg ]; then
      "${PSQL[@]}" -c "CREATE TABLE rowbus_bench.$kind$r ($cols_pg); CREATE TABLE rowbus_bench.c$r ($cols_pg)" >/dev/null
    else
      "${SQL[@]}" -e "CREATE TABLE sinks_copy.$kind$r ($cols_my); CREATE TABLE sinks_copy.c$r ($cols_my)"
    fi
    "${SQL[@]}" -e "CREATE TABLE sinks.$kind$r ($cols_my); INSERT INTO sinks.$kind$r $fill$rows"
    local committed done_at
    committed=$(now)
    done_at=$(wait_for_table "$target.$kind$r" "$rows" "${wait_with[@]}")
    [ "$r" = 0 ] && continue
    python3 -c "print($rows/($done_at-$committed))" >>"$WORK/$kind.times"
    "${SQL[@]}" -N -B -e "SELECT id, a, b, c, DATE_FORMAT(d, '%Y-%m-%d %H:%i:%s.%f') FROM sinks.$kind$r" >"$WORK/rows.tsv"
    local t0 t1
    if [ "$kind" = pg ]; then
      t0=$(now); "${PSQL[@]}" -c "\\copy rowbus_bench.c$r FROM '$WORK/rows.tsv'"; t1=$(now)
      python3 -c "print($rows/($t1-$t0))" >>"$WORK/copy.times"
    else
      t0=$(now); "${SQL[@]}" --local-infile=1 -e "LOAD DATA LOCAL INFILE '$WORK/rows.tsv' INTO TABLE sinks_copy.c$r"; t1=$(now)
      python3 -c "print($rows/($t1-$t0))" >>"$WORK/load.times"
    fi
  done
  local pid; pid=$(cat "$WORK/rowbus-$kind.pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus-$kind.pid"
}

bench_sinks() {
  ensure_pkg psql postgresql-client
  PSQL=(psql -h 127.0.0.1 -p 5432 -U postgres -d test -q -v ON_ERROR_STOP=1)
  "${PSQL[@]}" -c "DROP SCHEMA IF EXISTS rowbus_bench CASCADE; CREATE SCHEMA rowbus_bench" >/dev/null
  "${SQL[@]}" -e "CREATE DATABASE sinks; CREATE DATABASE sinks_copy; SET GLOBAL local_infile = 1"
  : >"$WORK/pg.times"; : >"$WORK/copy.times"; : >"$WORK/my.times"; : >"$WORK/load.times"
  log "sinks: $RUNS runs of $SINK_ROWS rows, each one transaction, to PostgreSQL, then to MariaDB"
  sinks_one pg
  sinks_one my
  "${PSQL[@]}" -c "DROP SCHEMA rowbus_bench CASCADE" >/dev/null
  {
    echo "### sinks: $SINK_ROWS rows of 5 columns in one transaction, applied to a database"
    echo
    echo "| path | rows/s, median (min–max) of $RUNS |"
    echo "|---|---|"
    echo "| rowbus, postgres sink (4 workers), commit to last row | $(stats <"$WORK/pg.times") |"
    echo "| ceiling: PostgreSQL COPY of the same rows from a file | $(stats <"$WORK/copy.times") |"
    echo "| rowbus, mysql sink into MariaDB (4 workers), commit to last row | $(stats <"$WORK/my.times") |"
    echo "| ceiling: MariaDB LOAD DATA LOCAL INFILE of the same rows | $(stats <"$WORK/load.times") |"
    echo
    echo "Target \"at least 50% of COPY / LOAD DATA\" (medians): postgres sink $(percent "$WORK/pg.times" "$WORK/copy.times") of COPY,"
    echo "mysql sink $(percent "$WORK/my.times" "$WORK/load.times") of LOAD DATA."
    echo
    echo "Each sink runs in its own rowbus, started at the end of the binlog and measured alone, after"
    echo "a first table of 1,000 rows (not counted) has opened its connections; the source and both"
    echo "databases share the machine's two cores. The wait for the last row asks the target over one"
    echo "open connection, first for the highest id, then for the count. Until 2026-12-05 the wait"
    echo "started a client every 50 ms for a \`count(*)\` (about 13% of the machine's CPU), and both"
    echo "sinks' rowbus ran throughout, each reading past the other's rows, without a warm-up."
    echo
  } >>"$RESULTS"
}

bench_search() {
  ensure_osmem
  local osm_port; osm_port=$(free_port)
  "$OSMEM_SERVER_BIN" -addr "127.0.0.1:$osm_port" -no-stdin-watch -no-ja -parent-pid $$ >"$WORK/osmem.log" 2>&1 &
  echo $! >"$WORK/rowbus-osmem.pid"
  local OSM="http://127.0.0.1:$osm_port"
  until curl -sf "$OSM/" >/dev/null; do sleep 0.05; done
  "${SQL[@]}" -e "CREATE DATABASE IF NOT EXISTS search"
  local cols="id BIGINT PRIMARY KEY, a INT, b VARCHAR(32), c DECIMAL(10,2), d DATETIME(3)"
  local start; start=$("${SQL[@]}" -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
  cat >"$WORK/search.toml" <<TOML
data_dir = "$WORK/search-data"
[sources.bench]
type = "mysql"
url = "mysql://root@127.0.0.1:$PORT"
server_id = 780
include = ["search.*"]
start = "$start"
[sinks.search]
type = "opensearch"
url = "$OSM"
TOML
  "$ROWBUS" run -c "$WORK/search.toml" 2>"$WORK/search.log" &
  echo $! >"$WORK/rowbus-search.pid"
  : >"$WORK/search.times"; : >"$WORK/bulk.times"
  log "search: $RUNS runs of $SINK_ROWS rows, each one transaction, to osmem-server"
  local count="curl -s $OSM/search.s\$r/_count | python3 -c 'import sys,json; print(json.load(sys.stdin).get(\"count\",0))'"
  for r in $(seq 1 "$RUNS"); do
    "${SQL[@]}" -e "CREATE TABLE search.s$r ($cols);
      INSERT INTO search.s$r SELECT seq, seq % 100000, CONCAT('name-', seq), (seq % 100000) / 100,
      '2024-01-31 12:00:00.123' + INTERVAL seq SECOND FROM search.seq_1_to_$SINK_ROWS"
    local committed done_at
    committed=$(now)
    done_at=$(wait_for_count "$count" "$SINK_ROWS")
    python3 -c "print($SINK_ROWS/($done_at-$committed))" >>"$WORK/search.times"
    # The ceiling: the same documents sent by a plain client, bodies built beforehand.
    "${SQL[@]}" -N -B -e "SELECT id, a, b, c, DATE_FORMAT(d, '%Y-%m-%d %H:%i:%s.%f') FROM search.s$r" >"$WORK/docs.tsv"
    local took; took=$(python3 scripts/bulk_peer.py "$OSM" "ceiling$r" "$WORK/docs.tsv" 4 5242880)
    python3 -c "print($SINK_ROWS/$took)" >>"$WORK/bulk.times"
    curl -s -XDELETE "$OSM/search.s$r,ceiling$r" >/dev/null
  done
  local pid; pid=$(cat "$WORK/rowbus-search.pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus-search.pid"
  pid=$(cat "$WORK/rowbus-osmem.pid"); kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus-osmem.pid"
  {
    echo "### search: $SINK_ROWS rows of 5 columns in one transaction, indexed into osmem-server"
    echo
    echo "| path | documents/s, median (min–max) of $RUNS |"
    echo "|---|---|"
    echo "| rowbus, opensearch sink (4 workers, external versions), commit to last document counted | $(stats <"$WORK/search.times") |"
    echo "| ceiling: direct \`_bulk\` of the same documents (scripts/bulk_peer.py, 4 connections, bodies built beforehand) | $(stats <"$WORK/bulk.times") |"
    echo
    echo "osmem-server is an in-memory server of the OpenSearch API that indexes a few thousand"
    echo "documents/s here: both paths are bound by it, so the figure shows the sink keeping up with"
    echo "its server, not how it compares on a real cluster (none runs on this machine)."
    echo
  } >>"$RESULTS"
}

bench_kafka() {
  ensure_tansu
  log "building the Kafka peer (release)"
  cargo build --release --quiet -p rowbus --example kafka_peer
  local PEER="$CARGO_TARGET_DIR/release/examples/kafka_peer"
  local kport; kport=$(free_port)
  local BROKERS="127.0.0.1:$kport"
  mkdir -p "$WORK/tansu"
  (cd "$WORK/tansu" && exec "$TANSU_BIN" broker --listener-url "tcp://$BROKERS" \
    --advertised-listener-url "tcp://$BROKERS" --storage-engine sqlite://tansu.db >"$WORK/tansu.log" 2>&1) &
  echo $! >"$WORK/rowbus-tansu.pid"
  until (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null; do sleep 0.05; done
  "${SQL[@]}" -e "CREATE DATABASE IF NOT EXISTS kafka"
  local cols="id BIGINT PRIMARY KEY, a INT, b VARCHAR(32), c DECIMAL(10,2), d DATETIME(3)"
  local start; start=$("${SQL[@]}" -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
  cat >"$WORK/kafka.toml" <<TOML
data_dir = "$WORK/kafka-data"
[sources.bench]
type = "mysql"
url = "mysql://root@127.0.0.1:$PORT"
server_id = 781
include = ["kafka.*"]
start = "$start"
[sinks.kafka]
type = "kafka"
brokers = "$BROKERS"
topic = "{db}.{table}"
create_topics = true
partitions = 3
TOML
  "$ROWBUS" run -c "$WORK/kafka.toml" 2>"$WORK/kafka.log" &
  echo $! >"$WORK/rowbus-kafka.pid"
  : >"$WORK/kafka.times"; : >"$WORK/producer.times"
  log "kafka: $RUNS runs of $SINK_ROWS rows, each one transaction, to tansu"
  for r in $(seq 1 "$RUNS"); do
    "${SQL[@]}" -e "CREATE TABLE kafka.k$r ($cols)"
    "$TANSU_BIN" topic create "ceiling$r" --partitions 3 --broker "tcp://$BROKERS" >/dev/null
    "${SQL[@]}" -e "INSERT INTO kafka.k$r SELECT seq, seq % 100000, CONCAT('name-', seq), (seq % 100000) / 100,
      '2024-01-31 12:00:00.123' + INTERVAL seq SECOND FROM kafka.seq_1_to_$SINK_ROWS"
    local committed done_at
    committed=$(now)
    done_at=$("$PEER" wait "$BROKERS" "kafka.k$r" "$SINK_ROWS")
    python3 -c "print($SINK_ROWS/($done_at-$committed))" >>"$WORK/kafka.times"
    # The ceiling: the same messages (read back from rowbus's topic) sent by a plain producer.
    local took; took=$("$PEER" copy "$BROKERS" "kafka.k$r" "ceiling$r")
    python3 -c "print($SINK_ROWS/$took)" >>"$WORK/producer.times"
  done
  local pid; pid=$(cat "$WORK/rowbus-kafka.pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus-kafka.pid"
  pid=$(cat "$WORK/rowbus-tansu.pid"); kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus-tansu.pid"
  {
    echo "### kafka: $SINK_ROWS rows of 5 columns in one transaction, to a 3-partition topic of tansu"
    echo
    echo "| path | rows/s, median (min–max) of $RUNS |"
    echo "|---|---|"
    echo "| rowbus, kafka sink (native JSON, acks=all, idempotence), commit to the last message in the topic | $(stats <"$WORK/kafka.times") |"
    echo "| ceiling: a plain rdkafka producer sending the same messages, same settings, to the same broker | $(stats <"$WORK/producer.times") |"
    echo
    echo "tansu (SQLite storage) runs on the same two cores as MariaDB, rowbus and the peer."
    echo
  } >>"$RESULTS"
}

bench_snapshot() {
  log "snapshot: $RUNS runs of a $SNAPSHOT_ROWS-row table, rowbus to the file sink vs mariadb-dump"
  create_snapshot_table "$SNAPSHOT_ROWS" "${SQL[@]}"
  : >"$WORK/snap.rates"; : >"$WORK/dump.rates"
  : >"$WORK/snap.cpu"; : >"$WORK/snap.server-cpu"; : >"$WORK/dump.cpu"; : >"$WORK/dump.server-cpu"
  local server_pid; server_pid=$(cat "$WORK/mariadb/server.pid")
  for r in $(seq 1 "$RUNS"); do
    rm -rf "$WORK/snap-data" "$WORK/snap.jsonl"
    cat >"$WORK/snap.toml" <<TOML
data_dir = "$WORK/snap-data"
[sources.snap]
type = "mysql"
url = "mysql://root@127.0.0.1:$PORT"
server_id = $((7820 + r))
include = ["snap.*"]
snapshot = "initial"
[sinks.out]
type = "file"
path = "$WORK/snap.jsonl"
TOML
    : >"$WORK/snap.jsonl"
    local t0 t1 pid s0
    s0=$(cpu_seconds "$server_pid"); t0=$(now)
    "$ROWBUS" run -c "$WORK/snap.toml" 2>"$WORK/snap.log" &
    pid=$!; echo "$pid" >"$WORK/rowbus-snap.pid"
    t1=$(wait_for_lines "$WORK/snap.jsonl" "$SNAPSHOT_ROWS")
    cpu_seconds "$pid" >>"$WORK/snap.cpu"
    python3 -c "print($(cpu_seconds "$server_pid") - $s0)" >>"$WORK/snap.server-cpu"
    kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus-snap.pid"
    python3 -c "print($SNAPSHOT_ROWS/($t1-$t0))" >>"$WORK/snap.rates"
    s0=$(cpu_seconds "$server_pid"); t0=$(now)
    local TIMEFORMAT='%U %S'
    { time mariadb-dump --no-defaults -h127.0.0.1 -P"$PORT" -uroot --single-transaction --quick snap t >"$WORK/dump.sql"; } 2>"$WORK/dump.time"
    t1=$(now)
    python3 -c "print($(cpu_seconds "$server_pid") - $s0)" >>"$WORK/dump.server-cpu"
    awk '{print $1 + $2}' "$WORK/dump.time" >>"$WORK/dump.cpu"
    python3 -c "print($SNAPSHOT_ROWS/($t1-$t0))" >>"$WORK/dump.rates"
  done
  {
    echo "### snapshot: a table of $SNAPSHOT_ROWS rows and 8 columns"
    echo
    echo "| path | rows/s, median (min–max) of $RUNS |"
    echo "|---|---|"
    echo "| rowbus \`snapshot = \"initial\"\` to the file sink, process start to the last line written | $(stats <"$WORK/snap.rates") |"
    echo "| peer: \`mariadb-dump --single-transaction --quick\` of the same table to a file | $(stats <"$WORK/dump.rates") |"
    echo
    local ratio; ratio=$(percent "$WORK/snap.rates" "$WORK/dump.rates")
    echo "Target \"at least as fast as mariadb-dump\" (medians): $(verdict "${ratio%\%}" 100), $ratio."
    echo
    echo "CPU seconds of a run (medians): rowbus $(printf %.2f "$(median "$WORK/snap.cpu")") and MariaDB $(printf %.2f "$(median "$WORK/snap.server-cpu")") while it ran;"
    echo "mariadb-dump $(printf %.2f "$(median "$WORK/dump.cpu")") and MariaDB $(printf %.2f "$(median "$WORK/dump.server-cpu")") while it ran. Both share the machine's $(nproc) cores."
    echo
    echo "rowbus reads the table by primary key in chunks of at most 10,000 rows (key ranges aiming at"
    echo "8,000, two read at once), merges them with the (idle) stream, and writes"
    echo "native JSON lines with an fsync per batch, $(($(stat -c %s "$WORK/snap.jsonl") / SNAPSHOT_ROWS)) bytes per row (each line carries the row's"
    echo "key, source block and timestamps); mariadb-dump writes multi-row INSERT statements,"
    echo "$(($(stat -c %s "$WORK/dump.sql") / SNAPSHOT_ROWS)) bytes per row, without an fsync."
    echo
  } >>"$RESULTS"
}

bench_transforms() {
  log "transforms: $RUNS runs each of $TRANSFORM_ROWS binlog rows to the file sink, with a filter + rename + mask chain and without"
  "${SQL[@]}" -e "CREATE DATABASE tx; CREATE TABLE tx.t (id BIGINT PRIMARY KEY, email VARCHAR(64),
      status VARCHAR(16), amount DECIMAL(10,2), name VARCHAR(32), note VARCHAR(64), n INT, created DATETIME)"
  local start; start=$("${SQL[@]}" -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
  # One row in ten is "spam", which the chain's filter drops.
  "${SQL[@]}" -e "INSERT INTO tx.t SELECT seq, CONCAT('user', seq, '@example.com'),
      IF(seq % 10 = 0, 'spam', 'ok'), (seq % 10000) / 100, CONCAT('name-', seq), REPEAT('x', 40),
      seq % 1000, '2024-01-31 12:00:00' + INTERVAL seq SECOND FROM tx.seq_1_to_$TRANSFORM_ROWS"
  local kept=$((TRANSFORM_ROWS - TRANSFORM_ROWS / 10))
  : >"$WORK/tx-plain.rates"; : >"$WORK/tx-chain.rates"
  local r variant
  for r in $(seq 1 "$RUNS"); do
    for variant in plain chain; do
      rm -rf "$WORK/tx-data" "$WORK/tx.jsonl"
      # Each process its own server_id: the server may not have dropped the last one's yet.
      local sid=$((7900 + 2 * r)); [ "$variant" = chain ] && sid=$((sid + 1))
      cat >"$WORK/tx.toml" <<TOML
data_dir = "$WORK/tx-data"
[sources.tx]
type = "mysql"
url = "mysql://root@127.0.0.1:$PORT"
server_id = $sid
include = ["tx.*"]
start = "$start"
[sinks.out]
type = "file"
path = "$WORK/tx.jsonl"
TOML
      local want=$TRANSFORM_ROWS
      if [ "$variant" = chain ]; then
        want=$kept
        cat >>"$WORK/tx.toml" <<'TOML'
[[transforms]]
filter = 'row.status != "spam"'
[[transforms]]
rename = { email = "email_address", n = "quantity" }
[[transforms]]
mask = ["name"]
TOML
      fi
      : >"$WORK/tx.jsonl"
      local t0 t1 pid
      "$ROWBUS" run -c "$WORK/tx.toml" 2>"$WORK/tx.log" &
      pid=$!; echo "$pid" >"$WORK/rowbus-tx.pid"
      # Timed from the first line written, so that process start and connecting do not count.
      while [ ! -s "$WORK/tx.jsonl" ]; do sleep 0.005; done
      t0=$(now)
      t1=$(wait_for_lines "$WORK/tx.jsonl" "$want")
      kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus-tx.pid"
      python3 -c "print($TRANSFORM_ROWS/($t1-$t0))" >>"$WORK/tx-$variant.rates"
    done
  done
  local ratio; ratio=$(python3 -c "
import statistics as s
p=[float(x) for x in open('$WORK/tx-plain.rates').read().split()]
c=[float(x) for x in open('$WORK/tx-chain.rates').read().split()]
print(f'{100*s.median(c)/s.median(p):.0f}%')")
  {
    echo "### transforms: $TRANSFORM_ROWS binlog rows of 8 columns to the file sink"
    echo
    echo "| pipeline | source rows/s, median (min–max) of $RUNS |"
    echo "|---|---|"
    echo "| no transforms (the ceiling) | $(stats <"$WORK/tx-plain.rates") |"
    echo "| filter (\`row.status != \"spam\"\`, drops 1 in 10) + rename of 2 columns + mask of 1 | $(stats <"$WORK/tx-chain.rates") ($ratio of the ceiling) |"
    echo
    echo "Both read the same binlog from the same position, alternately, timed from the first line"
    echo "written to the last; rows/s counts the rows read, whether or not the filter kept them."
    echo
  } >>"$RESULTS"
}

bench_latency() {
  log "latency: 5,000 rows/s for $LATENCY_SECONDS s, commit to delivered (rowbus file sink vs mariadb-binlog)"
  "${SQL[@]}" -e "CREATE DATABASE lat; CREATE TABLE lat.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, sent DECIMAL(16,6))"
  local status; status=$("${SQL[@]}" -N -e "SHOW MASTER STATUS")
  local file pos; file=$(echo "$status" | awk '{print $1}'); pos=$(echo "$status" | awk '{print $2}')
  cat >"$WORK/lat.toml" <<TOML
data_dir = "$WORK/lat-data"
[sources.lat]
type = "mysql"
url = "mysql://root@127.0.0.1:$PORT"
server_id = 781
include = ["lat.*"]
start = "$file:$pos"
[sinks.out]
type = "file"
path = "$WORK/lat.jsonl"
TOML
  : >"$WORK/lat.jsonl"
  "$ROWBUS" run -c "$WORK/lat.toml" 2>"$WORK/lat.log" &
  echo $! >"$WORK/rowbus-lat.pid"
  python3 scripts/latency.py "$PORT" "$LATENCY_SECONDS" 5000 "$WORK/lat.jsonl" "$file" "$pos" >"$WORK/lat.md"
  local pid; pid=$(cat "$WORK/rowbus-lat.pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus-lat.pid"
  {
    echo "### latency: 5,000 rows/s for $LATENCY_SECONDS s (transactions of 50 rows), commit to delivered"
    echo
    echo "| reader | rows seen | p50 ms | p99 ms | max ms |"
    echo "|---|---|---|---|---|"
    cat "$WORK/lat.md"
    echo
    echo "Measured from the client's send time (the row's \`sent\` column) to the moment each reader"
    echo "saw the row; both readers run at the same time on the same binlog."
    echo
  } >>"$RESULTS"
}

mkdir -p "$WORK/sections"
for w in "${WORKLOADS[@]}"; do
  : >"$RESULTS"
  "bench_$w"
  mv "$RESULTS" "$WORK/sections/$w.md"
done

# A quick run only prints its figures; a full run replaces its workloads' sections of
# BENCHMARKS.md, each then naming the run that measured it, and keeps the others.
run="\`scripts/bench.sh$([ "$QUICK" = 1 ] && echo " --quick") ${WORKLOADS[*]}\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates scripts || echo " with uncommitted changes")"
if [ "$QUICK" = 1 ]; then
  echo "Quick run ($run); BENCHMARKS.md is left as it is:"
  echo
  cat "$WORK"/sections/*.md
  exit 0
fi
cat >"$WORK/header.md" <<HEADER
# Benchmarks

Written by \`scripts/bench.sh\` on this machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, MariaDB $(mariadbd --version | awk '{print $3}').
Each figure stands beside its peer or ceiling, measured in the same run on the same data; each
section names the run that measured it (\`scripts/bench.sh WORKLOAD\` measures one again and
replaces only its section). Targets are those of issue 9.
HEADER
python3 scripts/bench_merge.py BENCHMARKS.md "$WORK/sections" "$WORK/header.md" "Measured by $run." docs/performance-log.md
log "BENCHMARKS.md: the sections of ${WORKLOADS[*]} replaced"
