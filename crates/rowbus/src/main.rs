//! The `rowbus` binary: parses the command line, sets up logging, and dispatches to a command.
//! Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.

mod cli;
mod config;
mod inspect;
mod run;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc: change events allocate many small values; it measured faster than the system
/// allocator on the decode and file-sink benchmarks (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli);
    match cli.command {
        cli::Command::Check { config } => match config::load(&config) {
            Ok(_) => {
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::from(2)
            }
        },
        cli::Command::Inspect { what } => inspect::run(what),
        cli::Command::Run { config } => {
            let config = match config::load(&config) {
                Ok(config) => config,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("rowbus: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
