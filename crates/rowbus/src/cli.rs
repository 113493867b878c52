//! The command line (clap) and logging set-up.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// rowbus: stream every row change of MySQL and MariaDB to where it is needed.
#[derive(Debug, Parser)]
#[command(name = "rowbus", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,

    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: read the binlog and deliver changes until SIGINT/SIGTERM.
    Run {
        /// The configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate a configuration file; every error names its field. Exit code 2 when invalid.
    Check {
        /// The configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// The sinks' failure logs: events a sink rejected, kept in order until replayed or purged.
    /// Works while rowbus is stopped (the data directory is locked while it runs).
    Failures {
        #[command(subcommand)]
        what: FailuresCommand,
    },
    /// Snapshot tables again while the pipeline runs (or at its next start): every row is
    /// delivered as an `op = "r"` event, merged with the stream, without locks.
    Snapshot {
        /// The configuration file (TOML): its data_dir and source.
        #[arg(short, long)]
        config: PathBuf,
        /// A table to snapshot, as db.table (repeatable).
        #[arg(long = "table", required = true)]
        tables: Vec<String>,
        /// Only the rows matching this SQL condition, such as "created_at > '2024-01-01'".
        #[arg(long = "where")]
        condition: Option<String>,
        /// Only this sink receives the rows (repeatable; default: every sink), such as one just
        /// added by a reload.
        #[arg(long = "sink")]
        sinks: Vec<String>,
        /// Rebuild the tables' search indexes without downtime: the rows go to a new index while
        /// live changes go to both, then the alias moves to the new index (search sinks only).
        #[arg(long)]
        reindex: bool,
    },
    /// Run the configured transforms on one change (native JSON, as the file sink writes them;
    /// `-` reads standard input) and print what each sink would receive.
    TestTransform {
        /// The configuration file (TOML): its transforms and sinks.
        #[arg(short, long)]
        config: PathBuf,
        /// The change, as a native JSON event.
        #[arg(long)]
        event: PathBuf,
    },
    /// Apply the changed configuration file to the running process (as SIGHUP does), through
    /// its admin API: sinks and transforms change at a transaction boundary without losing or
    /// repeating changes; an invalid file is refused and the running configuration kept.
    Reload {
        /// The configuration file (TOML) rowbus runs with, changed.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// The running pipeline's state, from its admin API (`[admin] listen`): the source's
    /// checkpoint, lag and counts, and each sink's deliveries, queue, failures and last error.
    Status {
        /// The configuration file (TOML): its `[admin]` section.
        #[arg(short, long)]
        config: PathBuf,
        /// Print the API's JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Pause the running pipeline's source (changes stay in the binlog), or one sink (its changes
    /// wait in its queue and the checkpoint stays before them), through the admin API.
    Pause {
        /// The configuration file (TOML): its `[admin]` section.
        #[arg(short, long)]
        config: PathBuf,
        /// Pause this sink instead of the source.
        #[arg(long)]
        sink: Option<String>,
    },
    /// Resume what `rowbus pause` paused.
    Resume {
        /// The configuration file (TOML): its `[admin]` section.
        #[arg(short, long)]
        config: PathBuf,
        /// Resume this sink instead of the source.
        #[arg(long)]
        sink: Option<String>,
    },
    /// Decode offline data, such as binlog files.
    Inspect {
        #[command(subcommand)]
        what: InspectCommand,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct FailuresTarget {
    /// The configuration file (TOML): its data_dir and sinks.
    #[arg(short, long)]
    pub config: PathBuf,
    /// Only this sink (default: every sink).
    #[arg(long)]
    pub sink: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum FailuresCommand {
    /// One line per record: sink, id, time, attempts, parked, key, error.
    List {
        #[command(flatten)]
        target: FailuresTarget,
    },
    /// One record in full, with its event as native JSON.
    Show {
        #[command(flatten)]
        target: FailuresTarget,
        /// The record's id (from `list`).
        id: u64,
    },
    /// Re-send the records, in order, through each sink; delivered ones leave the log.
    Replay {
        #[command(flatten)]
        target: FailuresTarget,
        /// Print what would be sent, send nothing, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete the records (asks for confirmation on a terminal).
    Purge {
        #[command(flatten)]
        target: FailuresTarget,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum InspectCommand {
    /// Print the events of binlog files as JSON lines: one line per event (position, type,
    /// details) and one native change event per row. Exit code 1 if a file is corrupt.
    Binlog {
        /// Binlog files, read in the order given.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print only events starting at or after this offset.
        #[arg(long)]
        start_position: Option<u64>,
        /// Stop before the event starting at this offset.
        #[arg(long)]
        stop_position: Option<u64>,
        /// Only row changes of tables matching this db.table glob (repeatable).
        #[arg(long = "table")]
        tables: Vec<String>,
        /// Do not verify event checksums (to read what remains of a damaged file).
        #[arg(long)]
        skip_checksums: bool,
    },
}

pub fn init_logging(cli: &Cli) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cli.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
