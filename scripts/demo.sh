#!/usr/bin/env bash
# The demo: a throwaway MariaDB with a binlog, a writer making a few changes a second, and rowbus
# streaming them to the terminal as JSON lines. Ctrl-C stops everything and removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

prepare_release

WORK=$(mktemp -d /tmp/rowbus-demo.XXXXXX)
PORT=$(free_port)
PIDS=()
ROWBUS_PID=""
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$ROWBUS_PID" ]; then
    # Ctrl-C reached rowbus too: give it a moment to drain and save its checkpoint on its own.
    for _ in $(seq 1 50); do kill -0 "$ROWBUS_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$ROWBUS_PID" 2>/dev/null || true
  fi
  [ -f "$WORK/server.pid" ] && kill "$(cat "$WORK/server.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
  log "demo stopped and cleaned up"
}
trap cleanup EXIT INT TERM

log "starting a throwaway MariaDB on 127.0.0.1:$PORT (data in $WORK)"
start_mariadb "$WORK/mariadb" "$PORT"
echo "$(cat "$WORK/mariadb/server.pid")" >"$WORK/server.pid"
SQL=(mariadb --no-defaults -h127.0.0.1 -P"$PORT" -uroot)
"${SQL[@]}" <<'SQL'
CREATE DATABASE shop;
CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64), email VARCHAR(128));
CREATE TABLE shop.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT, amount DECIMAL(10,2),
  status ENUM('new','paid','shipped'), created_at DATETIME(3));
SQL

ADMIN_PORT=$(free_port)
sed "s/@PORT@/$PORT/; s/@ADMIN_PORT@/$ADMIN_PORT/; s#@DATA@#$WORK/rowbus-data#" examples/demo.toml >"$WORK/rowbus.toml"

log "writer: a few inserts, updates and deletes a second"
(
  i=0
  while true; do
    i=$((i + 1))
    "${SQL[@]}" shop -e "BEGIN;
      INSERT INTO customers VALUES ($i, 'customer $i', 'c$i@example.com');
      INSERT INTO orders (customer_id, amount, status, created_at) VALUES ($i, $i * 1.25, 'new', NOW(3));
      COMMIT;
      UPDATE orders SET status = 'paid' WHERE customer_id = $i;
      DELETE FROM customers WHERE id = $((i - 3));" 2>/dev/null || true
    sleep 0.5
  done
) &
PIDS+=($!)

log "rowbus run -c examples/demo.toml (Ctrl-C to stop); in another terminal:"
log "  the dashboard: http://127.0.0.1:$ADMIN_PORT/   (the flow, events/s, lag per sink)"
log "  $ROWBUS status -c $WORK/rowbus.toml    or    curl http://127.0.0.1:$ADMIN_PORT/metrics"
"$ROWBUS" run -c "$WORK/rowbus.toml" &
ROWBUS_PID=$!
wait "$ROWBUS_PID" || true
