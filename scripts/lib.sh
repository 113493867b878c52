# Shared shell helpers for rowbus scripts: installing what is missing, the cargo target directory,
# and a throwaway MariaDB with a binlog. Source it; do not run it.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rowbus/target}"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# Installs Debian packages whose command is missing: ensure_pkg COMMAND PACKAGE...
ensure_pkg() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  log "installing $* (for $cmd)"
  if [ -z "${ROWBUS_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    export ROWBUS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not installed: install the Rust toolchain (rustup) first" >&2
    exit 1
  fi
}

# The dashboard's browser test: Debian's Chromium, driven by playwright-core from npm (pinned in
# crates/rowbus/tests/browser/package-lock.json).
ensure_browser() {
  ensure_pkg chromium chromium fonts-dejavu-core
  ensure_pkg node nodejs
  ensure_pkg npm npm
  local dir=crates/rowbus/tests/browser
  if [ ! -d "$dir/node_modules/playwright-core" ]; then
    log "npm ci ($dir)"
    npm ci --prefix "$dir" --no-audit --no-fund --silent
  fi
}

ensure_mariadb() {
  ensure_pkg mariadbd mariadb-server
  ensure_pkg mariadb mariadb-client
  ensure_pkg mariadb-install-db mariadb-server
}

# The database sinks' tests use a PostgreSQL on 127.0.0.1:5432 (user postgres, trust, database
# test), which this project's machines run as a service. Where none answers, install Debian's
# and start its default cluster with that access.
ensure_postgres() {
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then return 0; fi
  ensure_pkg pg_ctlcluster postgresql
  local version; version=$(ls /etc/postgresql | sort -n | tail -1)
  local conf="/etc/postgresql/$version/main"
  grep -q "rowbus tests" "$conf/pg_hba.conf" 2>/dev/null || {
    printf '# rowbus tests\nhost all all 127.0.0.1/32 trust\n' | cat - "$conf/pg_hba.conf" >"$conf/pg_hba.conf.new"
    mv "$conf/pg_hba.conf.new" "$conf/pg_hba.conf"
  }
  pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main reload
  local i
  for i in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_mariadb DIR PORT: a throwaway MariaDB with a row-based binlog, data in DIR.
start_mariadb() {
  local dir=$1 port=$2
  # Its own tmpdir: a starting server removes the `#sql*` files in its tmpdir, other servers'
  # temporary tables in a shared /tmp.
  mkdir -p "$dir/tmp"
  mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
    --skip-test-db --user=root --innodb-log-file-size=4M --innodb-buffer-pool-size=32M >"$dir/install.log" 2>&1
  mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/sock" --port="$port" --tmpdir="$dir/tmp" \
    --bind-address=127.0.0.1 --user=root --pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" \
    --server-id=1 --log-bin=mysql-bin --binlog-format=ROW --binlog-row-image=FULL \
    --binlog-row-metadata=FULL --innodb-log-file-size=4M --innodb-buffer-pool-size=64M >/dev/null 2>&1 &
  echo $! >"$dir/server.pid"
  local i
  for i in $(seq 1 300); do
    if mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "MariaDB did not start; see $dir/error.log" >&2
  return 1
}

# Installs what the demo and benchmarks need and builds rowbus in release mode; sets $ROWBUS.
prepare_release() {
  ensure_rust
  ensure_pkg python3 python3
  ensure_mariadb
  log "building rowbus (release)"
  cargo build --release --quiet -p rowbus
  ROWBUS="$CARGO_TARGET_DIR/release/rowbus"
}

# The search sink's tests talk to osmem-server, an in-memory server of the OpenSearch 3 REST API,
# from the PyPI package of that name, installed into a venv under ~/.cache/rowbus; exports
# OSMEM_SERVER_BIN for the test kit.
ensure_osmem() {
  local venv="$HOME/.cache/rowbus/venv"
  local bin="$venv/lib/python3*/site-packages/osmem_server/bin/osmem-server"
  # shellcheck disable=SC2086
  if ! ls $bin >/dev/null 2>&1; then
    ensure_pkg python3 python3
    log "installing osmem-server into $venv"
    python3 -m venv "$venv" 2>/dev/null || {
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      python3 -m venv "$venv"
    }
    "$venv/bin/pip" install -q 'osmem-server==0.1.6'
  fi
  # shellcheck disable=SC2086
  OSMEM_SERVER_BIN=$(ls $bin | head -1)
  export OSMEM_SERVER_BIN
}

# The Kafka sink's tests talk to tansu, a Kafka-compatible broker (SQLite storage through libsql),
# built once per machine with cargo install (about 15 minutes on 2 cores); exports TANSU_BIN for
# the test kit. librdkafka itself is built by the rdkafka crate (C compiler, make, zlib).
ensure_tansu() {
  local bin="$HOME/.cargo/bin/tansu"
  ensure_pkg make make
  if [ ! -x "$bin" ]; then
    log "cargo install tansu (once per machine, about 15 minutes)"
    cargo install tansu --version 0.6.0 --locked --features libsql --quiet
  fi
  TANSU_BIN="$bin"
  export TANSU_BIN
}

# Measuring helpers of scripts/bench.sh and scripts/ab.sh.
# stats [DECIMALS]: median/min/max of the numbers on stdin, as "median (min–max)".
stats() { python3 -c 'import sys,statistics as s; d=int(sys.argv[1]); v=[float(x) for x in sys.stdin.read().split()]; print(f"{s.median(v):,.{d}f} ({min(v):,.{d}f}–{max(v):,.{d}f})")' "${1:-0}"; }
now() { date +%s.%N; }
# cpu_seconds PID: the user and system CPU seconds process PID has used so far.
cpu_seconds() { awk -v tick="$(getconf CLK_TCK)" '{print ($14 + $15) / tick}' "/proc/$1/stat"; }
# median FILE: the median of the numbers in FILE.
median() { python3 -c 'import sys,statistics as s; print(s.median(float(x) for x in open(sys.argv[1]).read().split()))' "$1"; }
# percent FILE_A FILE_B: the median of the numbers in FILE_A as a percentage of FILE_B's.
percent() { python3 -c 'import sys; print(f"{100*float(sys.argv[1])/float(sys.argv[2]):.0f}%")' "$(median "$1")" "$(median "$2")"; }
# verdict VALUE MIN: "met" when VALUE >= MIN, else "not met".
verdict() { python3 -c 'import sys; print("met" if float(sys.argv[1]) >= float(sys.argv[2]) else "not met")' "$1" "$2"; }

# wait_for_lines FILE N: waits until FILE holds N lines; prints when it last grew. Polls the size,
# which is cheap, and counts lines only once the size holds still.
wait_for_lines() {
  local file=$1 want=$2 size=-1 grew_at
  grew_at=$(now)
  while true; do
    local current; current=$(stat -c %s "$file" 2>/dev/null || echo 0)
    if [ "$current" != "$size" ]; then
      size=$current; grew_at=$(now)
    elif [ "$(wc -l <"$file")" -ge "$want" ]; then
      echo "$grew_at"; return
    fi
    sleep 0.02
  done
}

# create_snapshot_table ROWS CLIENT...: the snapshot workload's table snap.t, ROWS rows of 8 typed
# columns, made through CLIENT (a mariadb command line).
create_snapshot_table() {
  local rows=$1; shift
  "$@" -e "CREATE DATABASE snap; CREATE TABLE snap.t (id BIGINT PRIMARY KEY, a INT,
      b VARCHAR(32), c DECIMAL(10,2), d DATETIME(3), e DOUBLE, f VARCHAR(64), g DATE);
    INSERT INTO snap.t SELECT seq, seq % 100000, CONCAT('name-', seq), (seq % 100000) / 100,
      '2024-01-31 12:00:00.123' + INTERVAL seq SECOND, seq / 7, REPEAT('x', 40),
      '2024-01-01' + INTERVAL (seq % 1000) DAY FROM snap.seq_1_to_$rows"
}

# bench_server NAME: a work directory /tmp/NAME.XXXXXX and a throwaway MariaDB in it, both removed
# at exit with the rowbus processes whose pids are in the directory's rowbus*.pid files; sets WORK,
# PORT and SQL (the client command line).
bench_server() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  trap bench_cleanup EXIT INT TERM
  PORT=$(free_port)
  log "starting a throwaway MariaDB on 127.0.0.1:$PORT"
  start_mariadb "$WORK/mariadb" "$PORT"
  SQL=(mariadb --no-defaults -h127.0.0.1 -P"$PORT" -uroot)
}

bench_cleanup() {
  local pidfile
  for pidfile in "$WORK"/rowbus*.pid "$WORK/mariadb/server.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
