//! The `rowbus` binary: parses the command line, sets up logging, and dispatches to a command.
//! Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.

mod admin;
mod cli;
mod config;
mod dashboard;
mod failures;
mod inspect;
mod process;
mod reload;
mod run;
mod snapshot;
mod status;
mod test_transform;
mod transforms;

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
        cli::Command::Status { config, json } => with_config(&config, |c| status::run(c, json)),
        cli::Command::Pause { config, sink } => with_config(&config, |c| {
            status::pause_or_resume(c, sink.as_deref(), "pause")
        }),
        cli::Command::Resume { config, sink } => with_config(&config, |c| {
            status::pause_or_resume(c, sink.as_deref(), "resume")
        }),
        cli::Command::TestTransform { config, event } => {
            with_config(&config, |c| test_transform::run(c, &event))
        }
        cli::Command::Snapshot {
            config,
            tables,
            condition,
            sinks,
            reindex,
        } => snapshot::request(
            &config,
            snapshot::Ask {
                tables,
                condition,
                sinks,
                reindex,
            },
        ),
        cli::Command::Failures { what } => match failures_command(what) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("rowbus: {e:#}");
                ExitCode::FAILURE
            }
        },
        cli::Command::Reload { config } => with_config(&config, status::reload),
        cli::Command::Run { config: path } => {
            let config = match load(&path) {
                Ok(config) => config,
                Err(code) => return code,
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
            match runtime.block_on(run::run(path, config)) {
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

/// Loads the configuration and runs a command with it; exit code 2 for an invalid configuration,
/// 1 for the command's error.
fn with_config(
    path: &std::path::Path,
    command: impl FnOnce(&config::Config) -> anyhow::Result<()>,
) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match command(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rowbus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration, or the exit code for an invalid one (its errors printed).
fn load(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(2)
    })
}

fn failures_command(what: cli::FailuresCommand) -> anyhow::Result<ExitCode> {
    use cli::FailuresCommand::*;
    let target = match &what {
        List { target } | Show { target, .. } | Replay { target, .. } | Purge { target, .. } => {
            target.clone()
        }
    };
    let config = match load(&target.config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    // The data directory's lock: a running rowbus owns its failure logs; list and replay then
    // go through its admin API.
    let lock = rowbus_core::checkpoint::CheckpointStore::open(&config.data_dir);
    let _lock = match lock {
        Ok(lock) => lock,
        Err(e) => {
            let api = match &what {
                List { .. } => failures::through_api(&config, &target.sink, false),
                Replay { dry_run: false, .. } => failures::through_api(&config, &target.sink, true),
                _ => None,
            };
            return match api {
                Some(done) => done.map(|()| ExitCode::SUCCESS),
                None => Err(anyhow::anyhow!(
                    "{e}; stop rowbus first (list and replay work while it runs when it has an [admin] section)"
                )),
            };
        }
    };
    match what {
        List { .. } => failures::list(&config, &target.sink)?,
        Show { id, .. } => failures::show(&config, &target.sink, id)?,
        Purge { yes, .. } => failures::purge(&config, &target.sink, yes)?,
        Replay { dry_run, .. } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            for sink in failures::chosen(&config, &target.sink)? {
                let mut built = run::open_sink_for_replay(sink)?;
                let done =
                    runtime.block_on(failures::replay(&config, sink, &mut *built, dry_run))?;
                eprintln!(
                    "sink `{}`: {} {}, {} kept",
                    sink.name,
                    done.delivered,
                    if dry_run {
                        "would be sent"
                    } else {
                        "delivered"
                    },
                    done.kept
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
