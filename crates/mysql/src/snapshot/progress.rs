//! Reporting a snapshot's progress: on a terminal, a bar per table (rows, rows/s, ETA) redrawn on
//! standard error; otherwise a log line every few seconds; and a line when a table is done.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const LOG_EVERY: Duration = Duration::from_secs(5);
const DRAW_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct Reporter {
    terminal: bool,
    table: String,
    estimated: u64,
    /// Rows delivered before this process began on the table (a resumed snapshot).
    resumed_at: u64,
    started: Instant,
    last: Instant,
}

impl Reporter {
    /// Starts reporting a table; `rows` were read before (a resumed snapshot).
    pub fn start(table: &str, estimated: u64, rows: u64) -> Reporter {
        let terminal = std::io::stderr().is_terminal();
        tracing::info!(
            table,
            estimated_rows = estimated,
            resumed_after_rows = rows,
            "snapshot of a table begins"
        );
        let now = Instant::now();
        Reporter {
            terminal,
            table: table.to_string(),
            estimated,
            resumed_at: rows,
            started: now,
            last: now,
        }
    }

    fn rate(&self, rows: u64) -> f64 {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        rows.saturating_sub(self.resumed_at) as f64 / secs
    }

    /// `rows` have been emitted so far.
    pub fn update(&mut self, rows: u64) {
        let every = if self.terminal { DRAW_EVERY } else { LOG_EVERY };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let rate = self.rate(rows);
        let left = self.estimated.saturating_sub(rows);
        let eta = if rate > 0.0 { left as f64 / rate } else { 0.0 };
        if self.terminal {
            let done = if self.estimated == 0 {
                0
            } else {
                (rows * 30 / self.estimated.max(rows)) as usize
            };
            let _ = write!(
                std::io::stderr(),
                "\r{} [{}{}] {rows}/{} rows {:.0} rows/s ETA {:.0}s   ",
                self.table,
                "#".repeat(done),
                " ".repeat(30 - done.min(30)),
                self.estimated.max(rows),
                rate,
                eta
            );
        } else {
            tracing::info!(table = %self.table, rows, estimated_rows = self.estimated, rows_per_s = rate as u64, eta_s = eta as u64, "snapshot progress");
        }
    }

    /// The table is done after `rows`.
    pub fn finish(self, rows: u64) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
        tracing::info!(
            table = %self.table,
            rows,
            seconds = self.started.elapsed().as_secs_f64(),
            rows_per_s = self.rate(rows) as u64,
            "snapshot of a table done"
        );
    }
}
