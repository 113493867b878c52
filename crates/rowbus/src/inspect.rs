//! `rowbus inspect binlog FILE...`: offline decoding of binlog files to JSON lines on stdout.

use crate::cli::InspectCommand;
use rowbus_core::table_filter::TableFilter;
use rowbus_mysql::inspect::{inspect_file, InspectOptions, Line};
use rowbus_sinks::encode::native_json_line;
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
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buffer = Vec::with_capacity(1 << 12);
    let mut failed = false;
    for file in &files {
        let mut write_error = None;
        let result = inspect_file(file, &options, &mut |line| {
            buffer.clear();
            match line {
                Line::Event(description) => {
                    let _ = serde_json::to_writer(&mut buffer, description);
                    buffer.push(b'\n');
                }
                Line::Change(change) => native_json_line(change, &mut buffer),
            }
            if write_error.is_none() {
                write_error = out.write_all(&buffer).err();
            }
        });
        if let Some(e) = write_error {
            eprintln!("rowbus: cannot write to standard output: {e}");
            return ExitCode::FAILURE;
        }
        if let Err(e) = result {
            let _ = out.flush();
            eprintln!("rowbus: {e}");
            failed = true;
        }
    }
    let _ = out.flush();
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
