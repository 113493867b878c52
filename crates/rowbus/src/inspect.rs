//! `rowbus inspect binlog FILE...`: offline decoding of binlog files to JSON lines on stdout.

use crate::cli::InspectCommand;
use rowbus_core::table_filter::TableFilter;
use rowbus_mysql::inspect::{inspect_file, InspectOptions, Line};
use rowbus_sinks::encode::NativeEncoder;
use std::io::Write;
use std::process::ExitCode;

pub fn run(command: InspectCommand) -> ExitCode {
    let InspectCommand::Binlog {
        files,
        start_position,
        stop_position,
        tables,
        skip_checksums,
    } = command;
    let tables = match TableFilter::new(&tables, &[]) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("--table: {e}");
            return ExitCode::from(2);
        }
    };
    let options = InspectOptions {
        start: start_position,
        stop: stop_position,
        tables,
        skip_checksums,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Lines are encoded into one buffer, written out in 64 KiB pieces: no second copy.
    let mut buffer = Vec::with_capacity(1 << 17);
    let mut encoder = NativeEncoder::default();
    let mut failed = false;
    let mut write_error = None;
    for file in &files {
        let result = inspect_file(file, &options, &mut |line| {
            match line {
                Line::Event(description) => {
                    let _ = serde_json::to_writer(&mut buffer, description);
                    buffer.push(b'\n');
                }
                Line::Change(change) => encoder.encode(change, &mut buffer),
            }
            if buffer.len() >= 1 << 16 && write_error.is_none() {
                write_error = out.write_all(&buffer).err();
                buffer.clear();
            }
        });
        if write_error.is_none() {
            write_error = out.write_all(&buffer).and_then(|_| out.flush()).err();
            buffer.clear();
        }
        if let Some(e) = &write_error {
            eprintln!("rowbus: cannot write to standard output: {e}");
            return ExitCode::FAILURE;
        }
        if let Err(e) = result {
            eprintln!("rowbus: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
