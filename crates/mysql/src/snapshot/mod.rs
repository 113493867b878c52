//! Snapshots: every existing row of chosen tables delivered as `op = "r"` events, merged with the
//! live stream so that a target ends equal to the source while writes go on, without locks.
//!
//! The `Snapshotter` runs inside the source loop. At a transaction boundary it reads the next chunk
//! of the table in progress (`read`, keyset pagination by the primary key), holds it until the
//! stream reaches the chunk's high watermark while dropping the keys the stream changes meanwhile
//! (`chunk`), then emits the rest followed by a boundary that carries the new progress; a chunk
//! that goes out at once has the next one read ahead while it is sent on, and the one after that
//! too when the table is read in key ranges (`ranges`) on a server with exact positions. The
//! progress rides in every boundary's `Position`, so the checkpoint saves it: a restart resumes at
//! the last delivered chunk. Tables requested while running (`rowbus snapshot`) arrive as files in the
//! request directory.

pub mod chunk;
pub mod progress;
pub mod ranges;
pub mod read;
pub mod values;

use crate::config::MysqlSourceConfig;
use crate::connect::connect;
use crate::decode::Decoder;
use crate::error::SourceError;
use crate::schema::history::At;
use crate::schema::{Schema, SYSTEM_DATABASES};
use chunk::{Changes, Chunk};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use progress::Reporter;
use ranges::Ranges;
use read::{Outcome, TablePlan};
use rowbus_core::event::{now_ms, ChangeEvent, Op, Row, SourceEvent, SourceInfo, SourceRecord};
use rowbus_core::snapshot::{KeyPart, SnapshotProgress, TableProgress};
use rowbus_core::table_filter::TableFilter;
use rowbus_core::Position;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the request directory is looked at.
const REQUEST_POLL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Snapshotter {
    /// The source's name, for the events' `source.name`.
    name: Arc<str>,
    progress: Option<SnapshotProgress>,
    /// `progress` as the boundaries carry it.
    shared: Option<Arc<SnapshotProgress>>,
    plan: Option<Arc<TablePlan>>,
    /// The next chunks, in key order, read while the one before goes out: one, or two at once
    /// on two connections when the table is read in `ranges` and the server gives exact
    /// positions.
    ahead: VecDeque<ReadAhead>,
    /// How the table in progress is cut into ranges (a key of one integer column).
    ranges: Option<Ranges>,
    /// Whether the server gives reads their exact position (as the last read showed).
    exact_positions: bool,
    reporter: Option<Reporter>,
    pending: Option<Chunk>,
    conn: Option<Conn>,
    /// A second connection, for the second of two reads at once.
    spare: Option<Conn>,
    /// After the table's columns differed from the history: read again once the stream is here.
    wait_for: Option<At>,
    requests_polled: Option<Instant>,
    /// Changes the stream delivered to the table being read, since `tracked_since`: a read may see
    /// the server before some of them (its engine commits trail the binlog), and must drop them.
    recent: Changes,
    tracked_since: Option<At>,
    /// Reads in a row that found the table changed.
    changed_in_a_row: u32,
    /// A rebuild's begin marker goes out before the next chunk (once per table and process: the
    /// search sink takes it again after a restart).
    reindex_begin_due: bool,
}

/// Every included table of `schema`, as `db.table`, in name order.
pub fn included_tables(schema: &Schema, filter: &TableFilter) -> Vec<String> {
    let mut tables = Vec::new();
    for (db, database) in &schema.databases {
        if SYSTEM_DATABASES.contains(&db.as_str()) {
            continue;
        }
        for table in database.tables.keys() {
            if filter.matches(db, table) {
                tables.push(format!("{db}.{table}"));
            }
        }
    }
    tables
}

impl Snapshotter {
    /// Resumes the progress saved with the checkpoint, if any.
    pub fn new(name: &str, saved: Option<Arc<SnapshotProgress>>) -> Self {
        let mut snapshotter = Snapshotter {
            name: Arc::from(name),
            ..Snapshotter::default()
        };
        if let Some(saved) = saved.filter(|p| !p.is_done()) {
            tracing::info!(tables = saved.tables.len(), table = %saved.tables[0].table, "resuming the snapshot");
            snapshotter.progress = Some((*saved).clone());
            snapshotter.shared = Some(saved);
        }
        snapshotter
    }

    /// Adds tables to read.
    pub fn request(&mut self, tables: impl IntoIterator<Item = TableProgress>) {
        let progress = self.progress.get_or_insert_with(SnapshotProgress::default);
        for table in tables {
            tracing::info!(table = %table.table, condition = ?table.condition, "snapshot requested");
            progress.request(table);
        }
        self.share();
    }

    fn share(&mut self) {
        if self
            .progress
            .as_ref()
            .is_some_and(SnapshotProgress::is_done)
        {
            self.progress = None;
            // Idle until the next request, which opens them again.
            self.close_connections();
            tracing::info!("snapshot done");
        }
        self.shared = self.progress.clone().map(Arc::new);
    }

    /// A new binlog session (a reconnect, maybe to another server): what was read against the
    /// previous one is read again; the saved progress stays.
    pub fn begin_session(&mut self) {
        self.void_reads();
        self.close_connections();
        self.wait_for = None;
    }

    /// What was read of the table in progress, and is being read, no longer counts: it is
    /// planned and read again.
    fn void_reads(&mut self) {
        self.pending = None;
        self.plan = None;
        self.ahead.clear();
        self.recent.clear();
        self.tracked_since = None;
    }

    fn close_connections(&mut self) {
        self.conn = None;
        self.spare = None;
    }

    /// An open connection no read holds, if there is one.
    fn idle_connection(&mut self) -> Option<Conn> {
        self.conn.take().or_else(|| self.spare.take())
    }

    fn current_condition(&self) -> Option<&str> {
        self.progress.as_ref()?.tables.first()?.condition.as_deref()
    }

    /// Whether the next chunk should be read now.
    pub fn wants_chunk(&self, decoder: &Decoder) -> bool {
        let boundary = decoder.last_boundary();
        self.progress.is_some()
            && self.pending.is_none()
            && !decoder.in_transaction()
            && !boundary.file.is_empty()
            && self
                .wait_for
                .as_ref()
                .is_none_or(|w| At::from(boundary) >= *w)
    }

    /// Takes the requests `rowbus snapshot` left in `dir` (at most once a second).
    pub fn poll_requests(&mut self, dir: &Path, decoder: &Decoder, filter: &TableFilter) {
        if self
            .requests_polled
            .is_some_and(|t| t.elapsed() < REQUEST_POLL)
        {
            return;
        }
        self.requests_polled = Some(Instant::now());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let request = std::fs::read(&file)
                .ok()
                .and_then(|text| serde_json::from_slice::<TableProgress>(&text).ok());
            let _ = std::fs::remove_file(&file);
            let Some(request) = request else {
                tracing::warn!(file = %file.display(), "ignoring an unreadable snapshot request");
                continue;
            };
            let known = request.table.split_once('.').is_some_and(|(db, t)| {
                filter.matches(db, t) && decoder.history().schema().table(db, t).is_some()
            });
            if known {
                let (sinks, reindex) = (request.sinks, request.reindex);
                let table = TableProgress::new(request.table, request.condition);
                self.request([TableProgress {
                    sinks,
                    reindex,
                    ..table
                }]);
            } else {
                tracing::warn!(table = %request.table, "ignoring a snapshot request for a table the source does not include or know");
            }
        }
    }

    async fn connection(&mut self, config: &MysqlSourceConfig) -> Result<&mut Conn, SourceError> {
        open(&mut self.conn, config).await
    }

    /// Reads the next chunk, and emits it into `out` at once if the stream already stands at its
    /// high watermark.
    pub async fn read_next(
        &mut self,
        config: &MysqlSourceConfig,
        decoder: &Decoder,
        out: &mut Vec<SourceRecord>,
    ) -> Result<(), SourceError> {
        let outcome = self.try_read(config, decoder).await;
        if outcome.is_err() {
            self.close_connections();
            self.ahead.clear();
        }
        let Some(outcome) = outcome? else {
            return Ok(());
        };
        let stream_at = At::from(decoder.last_boundary());
        let plan = self.plan.as_ref().expect("planned by try_read");
        if let Outcome::Read(read) = &outcome {
            tracing::debug!(table = %plan.table, rows = read.rows.len(), low = ?read.low, high = ?read.high, stream = ?stream_at, tracked_since = ?self.tracked_since, "snapshot chunk read");
        }
        match outcome {
            Outcome::Changed { why, high } if stream_at >= high && self.changed_in_a_row >= 3 => {
                Err(SourceError::halt(format!(
                    "snapshot of {}.{}: the table is not as the schema history has it ({why}), \
                     also with the stream past the read; delete the schema history file to read \
                     the schema again",
                    plan.db, plan.table
                )))
            }
            Outcome::Changed { why, high } => {
                tracing::info!(table = %plan.table, why, "the table changed since the stream's position; reading it again when the stream reaches the change");
                self.changed_in_a_row += 1;
                self.plan = None;
                self.ahead.clear();
                self.wait_for = Some(high);
                Ok(())
            }
            // A request's own condition is wrong: that request ends, the stream goes on.
            Outcome::Refused(error) if self.current_condition().is_some() => {
                tracing::error!(table = %plan.table, condition = ?self.current_condition(), "{error}; this snapshot request is dropped");
                self.finish_table();
                Ok(())
            }
            Outcome::Refused(error) => Err(error),
            // The read saw the server before changes the stream delivered since a point not
            // tracked: read again at the next boundary.
            Outcome::Read(read) if self.tracked_since.as_ref().is_none_or(|t| read.low < *t) => {
                Ok(())
            }
            Outcome::Read(read) => {
                self.changed_in_a_row = 0;
                let first = read.rows.first().zip(plan.key.first());
                let first = first.and_then(|(row, &k)| ranges::int_value(&row.values[k]));
                self.learn(&read, first);
                let plan = self.plan.as_ref().expect("planned by try_read");
                let chunk = Chunk::new(
                    plan.key.clone(),
                    read.rows,
                    read.low,
                    read.high,
                    read.last_key,
                    read.end_of_table,
                );
                if chunk.is_due(&stream_at) {
                    self.emit(chunk, decoder.last_boundary(), out);
                    self.read_ahead(config, decoder);
                } else {
                    self.pending = Some(chunk);
                }
                Ok(())
            }
        }
    }

    /// Plans the table in progress if needed and reads its next chunk; `None` when the table is gone.
    async fn try_read(
        &mut self,
        config: &MysqlSourceConfig,
        decoder: &Decoder,
    ) -> Result<Option<Outcome>, SourceError> {
        let Some(table) = self
            .progress
            .as_ref()
            .and_then(|p| p.tables.first())
            .cloned()
        else {
            return Ok(None);
        };
        if self.plan.is_none() {
            let (db, name) = table.table.split_once('.').unwrap_or(("", &table.table));
            let Some(known) = decoder.history().schema().table(db, name).cloned() else {
                tracing::warn!(table = %table.table, "the table no longer exists; its snapshot ends");
                self.finish_table();
                return Ok(None);
            };
            let conn = self.connection(config).await?;
            let plan = TablePlan::new(conn, config, db, name, &known).await?;
            if plan.key.is_empty() {
                tracing::warn!(table = %table.table, "no primary key and no unique NOT NULL key: the table is read in one pass and held in memory until the stream reaches it");
            }
            self.reporter = Some(Reporter::start(
                &table.table,
                plan.estimated_rows,
                table.rows,
            ));
            self.ranges = plan
                .max_key
                .map(|max| Ranges::new(max, config.snapshot_chunk_rows));
            self.exact_positions = false;
            self.plan = Some(Arc::new(plan));
            self.reindex_begin_due = true;
            self.recent.clear();
            self.tracked_since = Some(At::from(decoder.last_boundary()));
        }
        self.wait_for = None;
        if let Some(outcome) = self.take_read_ahead(&table).await {
            return outcome.map(Some);
        }
        let read = ChunkRead {
            plan: self.plan.clone().expect("planned above"),
            config: config.clone(),
            upto: self.range_end(&table),
            table,
            low: self.low_watermark(decoder),
        };
        let (conn, outcome) = read.run(self.idle_connection()).await;
        if let Some(conn) = conn {
            self.keep(conn);
        }
        outcome.map(Some)
    }

    /// The outcome of the read ahead for `table`'s next chunk, if there is one; the reads queued
    /// after one that read another point of the table, or failed, go with it.
    async fn take_read_ahead(
        &mut self,
        table: &TableProgress,
    ) -> Option<Result<Outcome, SourceError>> {
        let ahead = self.ahead.pop_front()?;
        match ahead.result_for(table).await {
            Some((conn, outcome)) => {
                self.keep(conn);
                Some(outcome)
            }
            None => {
                self.ahead.clear();
                None
            }
        }
    }

    /// A connection back from a read ahead.
    fn keep(&mut self, conn: Conn) {
        match self.conn {
            None => self.conn = Some(conn),
            Some(_) => self.spare = Some(conn),
        }
    }

    /// Where the read of the chunk after `table.after` ends, when the table is read in ranges
    /// (only where reads have exact positions: elsewhere each read waits for the stream, and
    /// smaller chunks would only mean more waits).
    fn range_end(&self, table: &TableProgress) -> Option<KeyPart> {
        self.ranged()?.end_after(table.after.as_deref())
    }

    /// The table's ranges, where they are used: on a server whose reads have exact positions.
    fn ranged(&self) -> Option<&Ranges> {
        self.ranges.as_ref().filter(|_| self.exact_positions)
    }

    /// What a read teaches about the table: its key density (`first`: its first row's key, for
    /// an integer key), and whether the server gives exact positions.
    fn learn(&mut self, read: &read::Read, first: Option<i128>) {
        if read.exact && !self.exact_positions && self.ranges.is_some() {
            if let Some(plan) = &self.plan {
                tracing::info!(table = %format_args!("{}.{}", plan.db, plan.table), "reading in key ranges, two chunks at once");
            }
        }
        self.exact_positions = read.exact;
        let (Some(ranges), Some(table)) = (
            &mut self.ranges,
            self.progress.as_ref().and_then(|p| p.tables.first()),
        ) else {
            return;
        };
        ranges.observe(
            table.after.as_deref(),
            first,
            read.last_key.as_deref(),
            read.rows.len(),
        );
    }

    /// Without an exact snapshot position the low watermark is where `recent` starts.
    fn low_watermark(&self, decoder: &Decoder) -> At {
        let stream_at = At::from(decoder.last_boundary());
        self.tracked_since.clone().unwrap_or(stream_at)
    }

    /// Starts reading the chunks after the one just emitted, so that the server and the row
    /// conversion work while the source sends that one on: the next one on the snapshot's
    /// connection, and, for a table read in ranges on a server with exact positions, the one
    /// after it on a second connection. A read is the one `try_read` would make at its point of
    /// the table; one whose point the table is not at when it is wanted is dropped, and a read
    /// that saw the server before `tracked_since` is made again (`read_next`).
    fn read_ahead(&mut self, config: &MysqlSourceConfig, decoder: &Decoder) {
        let Some(plan) = self.plan.clone() else {
            return;
        };
        let depth = if self.ranged().is_some() { 2 } else { 1 };
        // A range that reached the row limit ended short of where the next read starts.
        let current = self.progress.as_ref().and_then(|p| p.tables.first());
        if self
            .ahead
            .front()
            .zip(current)
            .is_some_and(|(a, t)| !a.starts_at(t))
        {
            self.ahead.clear();
        }
        let low = self.low_watermark(decoder);
        // An exact read sees the server at the stream's position now, or rarely just before it
        // (engine commits trail the binlog): such a read is made again (`read_next`).
        let launched_at = match self.exact_positions {
            true => At::from(decoder.last_boundary()),
            false => low.clone(),
        };
        while self.ahead.len() < depth {
            let Some(table) = self.next_to_read_ahead() else {
                return;
            };
            let upto = self.range_end(&table);
            let conn = self.idle_connection();
            let read = ChunkRead {
                plan: plan.clone(),
                config: config.clone(),
                table: table.clone(),
                upto: upto.clone(),
                low: low.clone(),
            };
            self.ahead.push_back(ReadAhead {
                start: table,
                upto,
                launched_at: launched_at.clone(),
                task: tokio::spawn(read.run(conn)),
            });
        }
    }

    /// Where the next read ahead starts: after the emitted chunk, or after the range of the last
    /// read ahead (`None` if that one is open-ended).
    fn next_to_read_ahead(&self) -> Option<TableProgress> {
        match self.ahead.back() {
            None => self.progress.as_ref()?.tables.first().cloned(),
            Some(last) => Some(TableProgress {
                after: Some(vec![last.upto.clone()?]),
                ..last.start.clone()
            }),
        }
    }

    /// Passes the decoder's records through: the pending chunk notes the changes, boundaries carry
    /// the progress, and a due chunk goes out right after its boundary.
    pub fn process(&mut self, records: &mut Vec<SourceRecord>) {
        if self.shared.is_none() && self.pending.is_none() {
            return;
        }
        // In place: the records are only added to when a chunk goes out.
        let mut i = 0;
        while i < records.len() {
            let mut due_at = None;
            match &mut records[i] {
                SourceRecord::Change(event)
                    if event.op.is_schema_change()
                        && self.plan.as_ref().is_some_and(|p| p.is_table_of(event)) =>
                {
                    // A DDL or TRUNCATE of the table being read: what was read before it is void.
                    self.void_reads();
                }
                SourceRecord::Change(event) => {
                    if let Some(plan) = &self.plan {
                        self.recent
                            .note(event, &plan.db, &plan.table, &plan.key_names);
                    }
                }
                // Runs are gathered as records are sent on, after this; should one come, its
                // changes are noted all the same.
                SourceRecord::Run(events) => {
                    if let Some(plan) = &self.plan {
                        for event in events.iter() {
                            self.recent
                                .note(event, &plan.db, &plan.table, &plan.key_names);
                        }
                    }
                }
                SourceRecord::Boundary(position) => {
                    position.snapshot = self.shared.clone();
                    let due = self
                        .pending
                        .as_ref()
                        .is_some_and(|c| c.is_due(&At::from(&*position)));
                    due_at = due.then(|| position.clone());
                }
            }
            i += 1;
            // `due_at` is set only while a chunk is pending.
            if let Some((position, chunk)) = due_at.and_then(|p| Some((p, self.pending.take()?))) {
                let mut emitted = Vec::new();
                self.emit(chunk, &position, &mut emitted);
                let count = emitted.len();
                records.splice(i..i, emitted);
                i += count;
            }
        }
    }

    /// The chunk's rows as `op = "r"` events at `position`, then a boundary with the new progress.
    fn emit(&mut self, chunk: Chunk, position: &Position, out: &mut Vec<SourceRecord>) {
        let reindex = self.reindex_id();
        let begin_due = std::mem::take(&mut self.reindex_begin_due);
        let Some(plan) = &self.plan else {
            return;
        };
        let (last_key, end_of_table) = (chunk.last_key.clone(), chunk.end_of_table);
        let rows = chunk.into_rows(&self.recent);
        // From here `recent` needs only what the reads still to come may have missed: the changes
        // since this point, or since the earliest read ahead was started.
        if self.tracked_since.is_some() {
            let here = At::from(position);
            let earliest = self.ahead.iter().map(|a| &a.launched_at).min();
            let since = earliest.filter(|at| **at < here).cloned().unwrap_or(here);
            self.recent.forget_before(&since);
            self.tracked_since = Some(since);
        }
        let now = now_ms();
        let source = Arc::new(SourceEvent {
            name: self.name.clone(),
            server_id: 0,
            file: Arc::from(position.file.as_str()),
            pos: position.pos,
            gtid: None,
            txn: Arc::from("snapshot"),
            ts_ms: now,
            snapshot: true,
            sinks: self.asked_sinks(),
        });
        let emitted = rows.len() as u64;
        if let Some(id) = reindex.as_ref().filter(|_| begin_due) {
            out.push(marker(Op::ReindexBegin, plan, id, &source));
        }
        for (i, row) in rows.into_iter().enumerate() {
            let key = Row {
                columns: plan.primary_key_names.clone(),
                values: plan
                    .primary_key
                    .iter()
                    .map(|&k| row.values[k].clone())
                    .collect(),
            };
            out.push(SourceRecord::Change(Arc::new(ChangeEvent {
                partition_key: None,
                origin: None,
                op: Op::Read,
                db: plan.db.clone(),
                table: plan.table.clone(),
                key,
                before: None,
                after: Some(row),
                source: SourceInfo {
                    event: source.clone(),
                    row: i as u32,
                },
                read_ts_ms: now,
                ddl: None,
            })));
        }
        if let Some(table) = self.progress.as_mut().and_then(|p| p.tables.first_mut()) {
            table.rows += emitted;
            table.after = last_key;
            let rows = table.rows;
            if let Some(reporter) = &mut self.reporter {
                reporter.update(rows);
            }
        }
        if end_of_table {
            if let (Some(id), Some(plan)) = (&reindex, &self.plan) {
                out.push(marker(Op::ReindexEnd, plan, id, &source));
            }
            self.finish_table();
        } else {
            self.share();
        }
        let mut boundary = position.clone();
        boundary.snapshot = self.shared.clone();
        out.push(SourceRecord::Boundary(boundary));
    }

    /// The rebuild the table being read is for, if any.
    fn reindex_id(&self) -> Option<String> {
        self.progress.as_ref()?.tables.first()?.reindex.clone()
    }

    /// The sinks the table being read was asked for, when not every sink.
    fn asked_sinks(&self) -> Option<Arc<[String]>> {
        let table = self.progress.as_ref()?.tables.first()?;
        (!table.sinks.is_empty()).then(|| table.sinks.as_slice().into())
    }

    /// The table in progress is done (or gone).
    fn finish_table(&mut self) {
        if let Some(progress) = &mut self.progress {
            if !progress.tables.is_empty() {
                let done = progress.tables.remove(0);
                if let Some(reporter) = self.reporter.take() {
                    reporter.finish(done.rows);
                }
            }
        }
        self.plan = None;
        self.ahead.clear();
        self.recent.clear();
        self.share();
    }
}

/// One chunk's read, as a task of its own.
struct ChunkRead {
    plan: Arc<TablePlan>,
    config: MysqlSourceConfig,
    table: TableProgress,
    upto: Option<KeyPart>,
    low: At,
}

impl ChunkRead {
    /// Reads on `conn`, or on a new connection; gives the connection back.
    async fn run(self, conn: Option<Conn>) -> (Option<Conn>, Result<Outcome, SourceError>) {
        let mut slot = conn;
        let outcome = match open(&mut slot, &self.config).await {
            Ok(conn) => {
                let limit = self.config.snapshot_chunk_rows;
                let upto = self.upto.as_ref();
                (self.plan)
                    .read(conn, &self.config, &self.table, upto, limit, &self.low)
                    .await
            }
            Err(e) => Err(e),
        };
        (slot, outcome)
    }
}

/// A chunk being read ahead, for the point of the table it starts at.
struct ReadAhead {
    /// The table's progress it reads after (its `rows` aside).
    start: TableProgress,
    /// The key its range ends at, when read in ranges.
    upto: Option<KeyPart>,
    /// A position at or before the one the read sees the server at.
    launched_at: At,
    task: tokio::task::JoinHandle<(Option<Conn>, Result<Outcome, SourceError>)>,
}

impl ReadAhead {
    /// Whether it reads the chunk after the point `table` stands at.
    fn starts_at(&self, table: &TableProgress) -> bool {
        TableProgress {
            rows: table.rows,
            ..self.start.clone()
        } == *table
    }

    /// Its connection and outcome, if it read the chunk `table` asks for next and could run.
    async fn result_for(
        mut self,
        table: &TableProgress,
    ) -> Option<(Conn, Result<Outcome, SourceError>)> {
        if !self.starts_at(table) {
            return None;
        }
        match (&mut self.task).await {
            Ok((Some(conn), outcome)) => Some((conn, outcome)),
            Ok((None, outcome)) => {
                let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(%error, "a snapshot read ahead could not connect; reading again");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "a snapshot read ahead ended; reading again");
                None
            }
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // A read no longer wanted ends with its connection.
        self.task.abort();
    }
}

/// A rebuild's begin or end marker for the table of `plan`, its id as the key.
fn marker(op: Op, plan: &TablePlan, id: &str, source: &Arc<SourceEvent>) -> SourceRecord {
    SourceRecord::Change(Arc::new(ChangeEvent {
        partition_key: None,
        origin: None,
        op,
        db: plan.db.clone(),
        table: plan.table.clone(),
        key: Row {
            columns: vec![Arc::from("rebuild")].into(),
            values: vec![id.into()],
        },
        before: None,
        after: None,
        source: SourceInfo {
            event: source.clone(),
            row: 0,
        },
        read_ts_ms: source.ts_ms,
        ddl: None,
    }))
}

/// The snapshot's connection, opened (with UTC timestamps) if needed.
async fn open<'a>(
    slot: &'a mut Option<Conn>,
    config: &MysqlSourceConfig,
) -> Result<&'a mut Conn, SourceError> {
    if slot.is_none() {
        let mut conn = connect(config).await?;
        for sql in [
            "SET time_zone = '+00:00'",
            "SET NAMES utf8mb4",
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        ] {
            conn.query_drop(sql).await.map_err(|e| {
                SourceError::from_mysql(
                    e,
                    &config.addr(),
                    &config.user,
                    "preparing the snapshot connection",
                )
            })?;
        }
        *slot = Some(conn);
    }
    Ok(slot.as_mut().expect("connection opened above"))
}
