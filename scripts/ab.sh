#!/usr/bin/env bash
# Two rowbus builds alternated on one workload, for a change whose effect is smaller than this
# machine's run-to-run noise: only pairs run back to back compare. Not of record (BENCHMARKS.md's
# figures come from scripts/bench.sh); docs/performance-log.md labels what it measured so.
# Usage: scripts/ab.sh BIN_A BIN_B [snapshot|binlog] [PAIRS]   (default: snapshot, 5 pairs)
#   snapshot  `snapshot = "initial"` of bench.sh's 1,000,000-row, 8-column table to the file sink
#   binlog    a committed single-transaction DELETE of 1,000,000 rows, read from the position
#             before it to the file sink
# Each run is timed from process start to the last line written. Prints each run's rows/s and CPU
# seconds (rowbus's and the server's while it ran), then each side's medians and the pairs A won.
# Build BIN_B from another checkout or commit; copy BIN_A aside first if both share a target dir.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[ $# -ge 2 ] || { echo "usage: scripts/ab.sh BIN_A BIN_B [snapshot|binlog] [PAIRS]" >&2; exit 2; }
BIN_A=$(realpath "$1"); BIN_B=$(realpath "$2"); WORKLOAD=${3:-snapshot}; PAIRS=${4:-5}
ROWS=1000000
case "$WORKLOAD" in snapshot|binlog) ;; *) echo "unknown workload: $WORKLOAD" >&2; exit 2 ;; esac
ensure_mariadb

bench_server rowbus-ab

if [ "$WORKLOAD" = snapshot ]; then
  log "creating a $ROWS-row table"
  create_snapshot_table "$ROWS" "${SQL[@]}"
  SOURCE=$'include = ["snap.*"]\nsnapshot = "initial"'
else
  log "writing a $ROWS-row DELETE to the binlog"
  "${SQL[@]}" -e "CREATE DATABASE mem; CREATE TABLE mem.t (id BIGINT PRIMARY KEY, pad VARCHAR(100))
    DEFAULT CHARSET=utf8mb4; INSERT INTO mem.t SELECT seq, REPEAT('x', 100) FROM mem.seq_1_to_$ROWS"
  start=$("${SQL[@]}" -N -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}')
  "${SQL[@]}" -e "DELETE FROM mem.t"
  SOURCE=$'include = ["mem.*"]\n'"start = \"$start\""
fi
SERVER_PID=$(cat "$WORK/mariadb/server.pid")

# one BIN SIDE: one run; appends "rows/s rowbus-cpu server-cpu" to $WORK/SIDE.
one() {
  local bin=$1 side=$2
  rm -rf "$WORK/data"; : >"$WORK/out.jsonl"
  cat >"$WORK/ab.toml" <<TOML
data_dir = "$WORK/data"
[sources.ab]
type = "mysql"
url = "mysql://root@127.0.0.1:$PORT"
server_id = $((7900 + RANDOM % 100))
$SOURCE
[sinks.out]
type = "file"
path = "$WORK/out.jsonl"
TOML
  local s0 t0 t1 pid
  s0=$(cpu_seconds "$SERVER_PID"); t0=$(now)
  "$bin" run -c "$WORK/ab.toml" 2>"$WORK/$side.log" &
  pid=$!; echo "$pid" >"$WORK/rowbus.pid"
  t1=$(wait_for_lines "$WORK/out.jsonl" "$ROWS")
  local line
  line="$(python3 -c "print(round($ROWS/($t1-$t0)))") $(cpu_seconds "$pid") $(python3 -c "print(round($(cpu_seconds "$SERVER_PID") - $s0, 2))")"
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$WORK/rowbus.pid"
  echo "$line" >>"$WORK/$side"
  echo "$side: $line" | awk '{printf "%s %9s rows/s  rowbus %s CPU-s  MariaDB %s CPU-s\n", $1, $2, $3, $4}'
}

: >"$WORK/A"; : >"$WORK/B"
log "$PAIRS pairs of the $WORKLOAD workload, A = $BIN_A, B = $BIN_B"
for _ in $(seq 1 "$PAIRS"); do
  one "$BIN_A" A
  one "$BIN_B" B
done
for side in A B; do
  awk '{print $1}' "$WORK/$side" >"$WORK/$side.rates"; awk '{print $2}' "$WORK/$side" >"$WORK/$side.cpu"
  echo "$side: rows/s $(stats <"$WORK/$side.rates"), rowbus CPU-s $(stats 2 <"$WORK/$side.cpu")"
done
won=$(paste "$WORK/A.rates" "$WORK/B.rates" | awk '$1 > $2 {n++} END {print n + 0}')
echo "A faster in $won of $PAIRS pairs"
