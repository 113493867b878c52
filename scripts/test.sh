#!/usr/bin/env bash
# The whole test suite: installs what it needs (MariaDB from Debian's packages; PostgreSQL where
# none answers on 127.0.0.1:5432; osmem-server, an in-memory OpenSearch, into a venv; tansu, a Kafka-compatible broker, with cargo install; Chromium and playwright-core for the dashboard's browser test), checks formatting and lints where the toolchain has them, then
# runs every unit and integration test. The integration tests start their own throwaway MariaDB
# servers on free loopback ports, and mount small tmpfs file systems (they run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_rust
ensure_mariadb
ensure_postgres
ensure_browser
ensure_osmem
ensure_tansu

if cargo fmt --version >/dev/null 2>&1; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
fi
if cargo clippy --version >/dev/null 2>&1; then
  log "cargo clippy"
  cargo clippy --workspace --all-targets --quiet -- -D warnings
fi
log "cargo test"
cargo test --workspace --quiet "$@"
shot="${CARGO_TARGET_DIR:-target}/tmp/artifacts/dashboard.png"
[ -f "$shot" ] && log "the dashboard test's screenshot: $shot"
true
