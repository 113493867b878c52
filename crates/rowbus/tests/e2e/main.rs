//! End-to-end tests of the `rowbus` binary against real MariaDB servers (rowbus-testkit). One test
//! binary; the shared server is started once, and each test uses its own database and server_id.

mod support;

mod admin;
mod big_transaction;
mod config_errors;
mod dashboard;
mod database_sinks;
mod database_types;
mod delivery;
mod failures;
mod full_disk;
mod inspect_cli;
mod kafka_sink;
mod kafka_source;
mod reconnect;
mod reload;
mod restart;
mod schema_history;
mod search_nest;
mod search_overload;
mod search_sink;
mod server_errors;
mod snapshot;
mod source_transactions;
mod start_positions;
mod torture;
mod transforms;
mod type_matrix;
