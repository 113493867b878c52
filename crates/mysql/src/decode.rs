//! The decoder: turns binlog events, in stream order, into `SourceRecord`s: one `ChangeEvent` per
//! row of an included table, and a `Boundary` after every transaction (XID, COMMIT, a standalone
//! statement such as DDL), every rotation to a new file, and every idle heartbeat.
//!
//! It tracks the binlog file, the open transaction and the GTID state, so each boundary carries a
//! position a reader can resume at. After a reconnect in the middle of a transaction the stream is
//! re-read from the last boundary, and the decoder skips the rows events it already emitted, so a
//! reconnect neither loses nor repeats a change.

use crate::config::OnUnknownDdl;
use crate::error::SourceError;
use crate::mariadb::{self, GtidState};
use crate::mysql_gtid::{self, uuid_text, GtidSet};
use crate::rows::{decode_image, Cursor, Image};
use crate::schema::apply::Applied;
use crate::schema::ddl::{self, Parsed, TableName};
use crate::schema::history::{At, History};
use crate::schema::Schema;
use crate::table::TableInfo;
use mysql_async::binlog::events::{Event, EventData, RowsEventData};
use mysql_async::binlog::{BinlogChecksumAlg, EventType};
use rowbus_core::event::{
    now_ms, ChangeEvent, ColumnSpec, Op, Row, SchemaChange, SourceEvent, SourceInfo, SourceRecord,
};
use rowbus_core::table_filter::TableFilter;
use rowbus_core::Position;
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The transaction being read.
#[derive(Debug)]
struct Txn {
    gtid: Option<Arc<str>>,
    mariadb_gtid: Option<mariadb::Gtid>,
    /// Its identity: the GTID, or `file:pos` of its BEGIN without GTIDs.
    id: Arc<str>,
    /// A statement without BEGIN/COMMIT (DDL): it ends with its one statement.
    standalone: bool,
    /// Inside BEGIN..COMMIT: statements (SAVEPOINT, ...) do not end it.
    begun: bool,
    /// Rows events of included tables read so far, for skipping them after a reconnect.
    rows_events: u64,
    /// A MySQL (untagged) GTID: source UUID and transaction number.
    mysql_gtid: Option<(String, u64)>,
}

impl Txn {
    fn new(
        gtid: Option<Arc<str>>,
        mariadb_gtid: Option<mariadb::Gtid>,
        id: Arc<str>,
        standalone: bool,
        begun: bool,
    ) -> Self {
        Txn {
            gtid,
            mariadb_gtid,
            id,
            standalone,
            begun,
            rows_events: 0,
            mysql_gtid: None,
        }
    }
}

pub struct Decoder {
    source: Arc<str>,
    filter: TableFilter,
    tables: HashMap<u64, Arc<TableInfo>>,
    file: Arc<str>,
    gtid_state: GtidState,
    /// The MySQL GTID set, and whether it is complete (from the start position or a file's
    /// PREVIOUS_GTIDS event): only a complete set may go into a checkpoint.
    mysql_gtids: GtidSet,
    mysql_gtids_complete: bool,
    txn: Option<Txn>,
    last_boundary: Position,
    /// After a reconnect in the middle of a transaction: that transaction (by identity) and how
    /// many of its rows events were emitted already and must be skipped when it is read again.
    resume_skip: Option<(Arc<str>, u64)>,
    /// Whether this session's events carry a CRC32 checksum. The fake ROTATE that opens a session
    /// arrives before the FORMAT_DESCRIPTION that tells the parser so, and keeps its 4 checksum
    /// bytes at the end of the file name.
    fake_rotate_has_checksum: bool,
    /// Whether the binlog was written by MariaDB, from its FORMAT_DESCRIPTION event.
    mariadb: bool,
    verify_checksums: bool,
    /// The schema at the position being read, and its record on disk.
    history: History,
    /// Whether the history came from the server (else table maps without names are expected).
    has_history: bool,
    on_unknown_ddl: OnUnknownDdl,
    /// Tables to re-read from information_schema before the next event (`on_unknown_ddl = "refresh"`).
    refresh: Option<Refresh>,
    /// History disagreements already logged, so each is logged once.
    warned: HashSet<String>,
}

/// Tables whose definition must be re-read from the server, and the statement's position.
#[derive(Debug, Clone, PartialEq)]
pub struct Refresh {
    pub db: String,
    /// Empty: every table of `db`.
    pub tables: Vec<String>,
    pub at: At,
}

impl Decoder {
    /// A decoder that starts reading at `start`.
    pub fn new(source: &str, filter: TableFilter, start: Position) -> Self {
        let text = start.gtid.as_deref().unwrap_or_default();
        let gtid_state = GtidState::parse(text).unwrap_or_default();
        let mysql_gtids = GtidSet::parse(text).filter(|s| !s.is_empty());
        Decoder {
            source: Arc::from(source),
            filter,
            tables: HashMap::new(),
            file: Arc::from(start.file.as_str()),
            gtid_state,
            mysql_gtids_complete: mysql_gtids.is_some(),
            mysql_gtids: mysql_gtids.unwrap_or_default(),
            txn: None,
            last_boundary: start,
            resume_skip: None,
            fake_rotate_has_checksum: false,
            mariadb: false,
            verify_checksums: true,
            history: History::in_memory(At::new("", 0), Schema::default()),
            has_history: false,
            on_unknown_ddl: OnUnknownDdl::Stop,
            refresh: None,
            warned: HashSet::new(),
        }
    }

    /// Reads column names and types from `history` where the binlog lacks them, and follows DDL.
    pub fn with_history(mut self, history: History, on_unknown_ddl: OnUnknownDdl) -> Self {
        self.history = history;
        self.has_history = true;
        self.on_unknown_ddl = on_unknown_ddl;
        self
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn history_mut(&mut self) -> &mut History {
        &mut self.history
    }

    /// Tables to re-read from the server now, before the next event is decoded.
    pub fn take_refresh(&mut self) -> Option<Refresh> {
        self.refresh.take()
    }

    /// Asks again for a refresh that could not be done.
    pub fn request_refresh(&mut self, refresh: Refresh) {
        self.refresh = Some(refresh);
    }

    /// Installs re-read table definitions (`fresh` holds `refresh.db` as the server has it now).
    pub fn apply_refresh(&mut self, refresh: &Refresh, fresh: &Schema) -> std::io::Result<()> {
        let tables: Vec<String> = if refresh.tables.is_empty() {
            let known = self.history.schema().databases.get(&refresh.db);
            let fresh = fresh.databases.get(&refresh.db);
            known
                .into_iter()
                .chain(fresh)
                .flat_map(|d| d.tables.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        } else {
            refresh.tables.clone()
        };
        self.history
            .replace_tables(&refresh.at, fresh, &refresh.db, &tables)
    }

    /// Stops verifying event checksums (for reading damaged files, and for fuzzing the decoder).
    pub fn skip_checksums(&mut self) {
        self.verify_checksums = false;
    }

    /// Call when a new binlog session (connection) begins.
    pub fn begin_session(&mut self, checksum: bool) {
        self.fake_rotate_has_checksum = checksum;
    }

    /// Where a new connection must resume: the last transaction boundary. Call before reconnecting;
    /// rows already emitted from the open transaction will be skipped when they come again.
    pub fn prepare_resume(&mut self) -> Position {
        if let Some(txn) = self.txn.take() {
            if txn.rows_events > 0 {
                self.resume_skip = Some((txn.id, txn.rows_events));
            }
        }
        self.last_boundary.clone()
    }

    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    pub fn last_boundary(&self) -> &Position {
        &self.last_boundary
    }

    /// Decodes one event, appending what it yields to `out`.
    pub fn decode(
        &mut self,
        event: &Event,
        out: &mut Vec<SourceRecord>,
    ) -> Result<(), SourceError> {
        let header = event.header();
        let end = header.log_pos() as u64;
        if self.verify_checksums {
            verify_checksum(event).map_err(|e| self.corrupt(end, &e))?;
        }
        match header.event_type_raw() {
            mariadb::GTID_EVENT => {
                let gtid = mariadb::parse_gtid_event(event.data(), header.server_id())
                    .ok_or_else(|| self.corrupt(end, "truncated MariaDB GTID event"))?;
                let text: Arc<str> = Arc::from(gtid.gtid.to_string());
                // MariaDB's GTID event stands in for BEGIN.
                self.txn = Some(Txn::new(
                    Some(text.clone()),
                    Some(gtid.gtid),
                    text,
                    gtid.standalone,
                    !gtid.standalone,
                ));
                return Ok(());
            }
            t if t == EventType::ANONYMOUS_GTID_EVENT as u8 => {
                // A transaction without a GTID: the set no longer describes the position.
                self.mysql_gtids_complete = false;
                return Ok(());
            }
            t if t == EventType::PREVIOUS_GTIDS_EVENT as u8 => {
                // Everything before this file; a tagged or malformed list leaves the set incomplete.
                match mysql_gtid::parse_previous_gtids(event.data()) {
                    Some(previous) => {
                        self.mysql_gtids.union(&previous);
                        self.mysql_gtids_complete = true;
                    }
                    None => {
                        tracing::warn!(file = %self.file, "unreadable or tagged PREVIOUS_GTIDS event; GTIDs left out of checkpoints until the next file");
                        self.mysql_gtids_complete = false;
                    }
                }
                return Ok(());
            }
            mariadb::GTID_LIST_EVENT => {
                let list = mariadb::parse_gtid_list(event.data())
                    .ok_or_else(|| self.corrupt(end, "truncated MariaDB GTID list event"))?;
                self.gtid_state.merge(&list);
                return Ok(());
            }
            t if (mariadb::FIRST_COMPRESSED_EVENT..=mariadb::LAST_COMPRESSED_EVENT)
                .contains(&t) =>
            {
                return Err(SourceError::halt(format!(
                    "compressed binlog event (type {t}) at {}:{end}: rowbus does not read \
                     log_bin_compress=ON binlogs yet; turn log_bin_compress off on the server",
                    self.file
                )));
            }
            // A commit; its xid is not needed (and some 5.1 servers wrote it with extra bytes).
            // MySQL's XA PREPARE ends the transaction's binlog group the same way.
            t if t == EventType::XID_EVENT as u8 || t == EventType::XA_PREPARE_LOG_EVENT as u8 => {
                self.commit(end, out);
                return Ok(());
            }
            t if t == EventType::HEARTBEAT_EVENT as u8 => {
                self.heartbeat(event, end, out);
                return Ok(());
            }
            _ => {}
        }
        if !needs_parsing(header.event_type_raw()) {
            return Ok(());
        }
        // mysql_common's parsers run inside a guard: corrupt bytes must be an error, not a panic.
        let data = catch_unwind(AssertUnwindSafe(|| event.read_data()))
            .map_err(|_| self.corrupt(end, "malformed event"))?
            .map_err(|e| self.corrupt(end, &format!("undecodable event: {e}")))?;
        match data {
            Some(EventData::RotateEvent(rotate)) => {
                let mut name = rotate.name_raw();
                if end == 0 && self.fake_rotate_has_checksum {
                    name = &name[..name.len().saturating_sub(4)];
                }
                self.file = Arc::from(String::from_utf8_lossy(name).as_ref());
                if self.txn.is_none() && end != 0 {
                    self.boundary(rotate.position(), out);
                }
            }
            Some(EventData::QueryEvent(query)) => {
                self.query(&query.query(), &query.schema(), event, out)?
            }
            Some(EventData::GtidEvent(gtid)) => {
                let uuid = uuid_text(&gtid.sid());
                let (text, tracked) = match gtid.tag() {
                    Some(tag) => (
                        format!(
                            "{uuid}:{}:{}",
                            String::from_utf8_lossy(tag.as_ref()),
                            gtid.gno()
                        ),
                        None,
                    ),
                    None => (format!("{uuid}:{}", gtid.gno()), Some((uuid, gtid.gno()))),
                };
                let text: Arc<str> = Arc::from(text);
                let mut txn = Txn::new(Some(text.clone()), None, text, false, false);
                if tracked.is_none() {
                    // Tagged GTIDs are not tracked in the set yet: keep it out of checkpoints.
                    self.mysql_gtids_complete = false;
                }
                txn.mysql_gtid = tracked;
                self.txn = Some(txn);
            }
            Some(EventData::TableMapEvent(map)) => {
                let (db, name) = (map.database_name(), map.table_name());
                let included = self.filter.matches(&db, &name);
                let known = self.history.schema().table(&db, &name).cloned();
                let table_id = map.table_id();
                let mariadb = self.mariadb;
                let info = catch_unwind(AssertUnwindSafe(|| {
                    TableInfo::from_map(map.into_owned(), included, mariadb, known.as_deref())
                }))
                .map_err(|_| self.corrupt(end, "malformed table map"))?
                .map_err(|e| self.corrupt(end, &format!("bad table map: {e}")))?;
                self.warn_mismatch(&info);
                self.tables.insert(table_id, Arc::new(info));
            }
            Some(EventData::RowsEvent(rows)) => self.rows(event, &rows, out)?,
            Some(EventData::FormatDescriptionEvent(fde)) => {
                self.mariadb = fde.server_version().contains("MariaDB");
            }
            _ => {}
        }
        Ok(())
    }

    fn corrupt(&self, end: u64, what: &str) -> SourceError {
        SourceError::halt(format!(
            "{what} in binlog {} (event ending at {end}); the binlog may be corrupt",
            self.file
        ))
    }

    fn heartbeat(&mut self, event: &Event, end: u64, out: &mut Vec<SourceRecord>) {
        if let Ok(name) = std::str::from_utf8(event.data()) {
            let name = name.trim_end_matches('\0');
            if !name.is_empty() && *name != *self.file {
                self.file = Arc::from(name);
            }
        }
        if self.txn.is_none() && end != 0 {
            // Idle: the source is alive and at this position.
            self.boundary(end, out);
        }
    }

    /// Logs, once each, where the schema history and an included table's map disagree.
    fn warn_mismatch(&mut self, info: &TableInfo) {
        let Some(mismatch) = &info.mismatch else {
            return;
        };
        if !info.included || !self.has_history {
            return;
        }
        let key = format!("{}.{}: {mismatch}", info.db, info.table);
        if self.warned.insert(key) {
            tracing::warn!(source = %self.source, table = %format!("{}.{}", info.db, info.table), "{mismatch}; if the table is not in the history, grant SELECT on it to the replication user so rowbus can read its columns");
        }
    }

    fn query(
        &mut self,
        sql: &str,
        default_db: &str,
        event: &Event,
        out: &mut Vec<SourceRecord>,
    ) -> Result<(), SourceError> {
        let end = event.header().log_pos();
        let statement = sql.trim_start();
        let starts = |word: &str| {
            statement.len() >= word.len()
                && statement.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
        };
        let whole = |word: &str| {
            statement
                .trim_end()
                .trim_end_matches(';')
                .eq_ignore_ascii_case(word)
        };
        if whole("BEGIN") || whole("START TRANSACTION") || starts("XA START") || starts("XA BEGIN")
        {
            let file = &self.file;
            let txn = self.txn.get_or_insert_with(|| {
                Txn::new(None, None, Arc::from(format!("{file}:{end}")), false, true)
            });
            txn.begun = true;
        } else if whole("COMMIT")
            || whole("ROLLBACK")
            || starts("XA PREPARE")
            || starts("XA COMMIT")
            || starts("XA ROLLBACK")
        {
            self.commit(end as u64, out);
        } else {
            // A statement outside BEGIN..COMMIT (DDL, a standalone GTID transaction) ends here;
            // one inside it (SAVEPOINT, ROLLBACK TO SAVEPOINT, XA END, ...) does not.
            // DDL is followed inside a transaction too: CREATE TABLE ... SELECT is logged as
            // BEGIN, CREATE TABLE, its rows, COMMIT.
            self.schema_statement(sql, default_db, event, out)?;
            let inside = self.txn.as_ref().is_some_and(|t| t.begun && !t.standalone);
            if !inside {
                self.commit(end as u64, out);
            }
        }
        Ok(())
    }

    /// Follows a DDL statement: applies it to the schema history, records it, and emits a
    /// schema-change event per included table it touched.
    fn schema_statement(
        &mut self,
        sql: &str,
        default_db: &str,
        event: &Event,
        out: &mut Vec<SourceRecord>,
    ) -> Result<(), SourceError> {
        if !self.has_history {
            // Offline reading: no schema to follow.
            return Ok(());
        }
        let end = event.header().log_pos() as u64;
        let at = At::new(&self.file, end);
        if at <= *self.history.last_at() {
            // Read before (the history is ahead of this replay): already applied.
            return Ok(());
        }
        let ddl = match ddl::parse(sql) {
            Parsed::Other => return Ok(()),
            Parsed::Ddl(ddl) => ddl,
            Parsed::Unreadable(u) => {
                let tables: Vec<&TableName> = u.tables.iter().collect();
                return self.unknown_ddl(sql, default_db, &tables, &u.reason, end);
            }
        };
        let mut next = self.history.schema().clone();
        let applied = match next.apply(&ddl, default_db) {
            Ok(applied) => applied,
            Err(reason) => return self.unknown_ddl(sql, default_db, &ddl.tables(), &reason, end),
        };
        *self.history.schema_mut() = next;
        self.history
            .record(&at, &applied)
            .map_err(|e| SourceError::halt(format!("cannot write the schema history: {e}")))?;
        let header = event.header();
        let start = end.saturating_sub(header.event_size() as u64);
        for a in applied {
            if a.table.is_empty() || !self.filter.matches(&a.db, &a.table) {
                continue;
            }
            let (columns, primary_key) = match &a.after {
                Some(t) if a.kind != "drop" => (
                    t.columns
                        .iter()
                        .map(|c| ColumnSpec {
                            name: c.name.clone(),
                            sql_type: c.sql_type.clone(),
                        })
                        .collect(),
                    t.primary_key.clone(),
                ),
                _ => (Vec::new(), Vec::new()),
            };
            let txn: Arc<str> = match &self.txn {
                Some(t) => t.id.clone(),
                None => Arc::from(format!("{}:{start}", self.file)),
            };
            out.push(SourceRecord::Change(Arc::new(ChangeEvent {
                partition_key: None,
                origin: None,
                op: if a.kind == "truncate" {
                    Op::Truncate
                } else {
                    Op::Ddl
                },
                db: Arc::from(a.db.as_str()),
                table: Arc::from(a.table.as_str()),
                key: Row::default(),
                before: None,
                after: None,
                source: SourceInfo {
                    event: Arc::new(SourceEvent {
                        name: self.source.clone(),
                        server_id: header.server_id(),
                        file: self.file.clone(),
                        pos: start,
                        gtid: self.txn.as_ref().and_then(|t| t.gtid.clone()),
                        txn,
                        ts_ms: header.timestamp() as u64 * 1000,
                        snapshot: false,
                        sinks: None,
                    }),
                    row: 0,
                },
                read_ts_ms: now_ms(),
                ddl: Some(Arc::new(SchemaChange {
                    kind: a.kind.to_string(),
                    sql: sql.to_string(),
                    columns,
                    primary_key,
                    database: default_db.to_string(),
                })),
            })));
        }
        Ok(())
    }

    /// Drops tables from the history (durably).
    fn forget(&mut self, tables: &[(String, String)], end: u64) -> Result<(), SourceError> {
        let mut applied = Vec::new();
        for (db, table) in tables {
            let known = self.history.schema().table(db, table).is_some();
            if let (true, Some(d)) = (known, self.history.schema_mut().databases.get_mut(db)) {
                d.tables.remove(table);
                applied.push(Applied {
                    db: db.clone(),
                    table: table.clone(),
                    kind: "drop",
                    after: None,
                });
            }
        }
        self.history
            .record(&At::new(&self.file, end), &applied)
            .map_err(|e| SourceError::halt(format!("cannot write the schema history: {e}")))
    }

    /// A DDL statement the history cannot follow: ignored on excluded tables; on included ones,
    /// a stop or a refresh from information_schema, as configured.
    fn unknown_ddl(
        &mut self,
        sql: &str,
        default_db: &str,
        tables: &[&TableName],
        reason: &str,
        end: u64,
    ) -> Result<(), SourceError> {
        let qualified: Vec<(String, String)> = tables
            .iter()
            .map(|t| {
                (
                    t.db.clone().unwrap_or_else(|| default_db.to_string()),
                    t.name.clone(),
                )
            })
            .collect();
        let included =
            qualified.is_empty() || qualified.iter().any(|(db, t)| self.filter.matches(db, t));
        let names = qualified
            .iter()
            .map(|(db, t)| format!("{db}.{t}"))
            .collect::<Vec<_>>()
            .join(", ");
        if !included {
            tracing::warn!(source = %self.source, tables = %names, position = %format!("{}:{end}", self.file), "ignoring a DDL statement on excluded tables: {reason}; they leave the schema history");
            // Their definition is no longer known: forgotten, so that a later RENAME of one of
            // them onto an included name is an unknown table, not a stale definition.
            return self.forget(&qualified, end);
        }
        match self.on_unknown_ddl {
            OnUnknownDdl::Stop => Err(SourceError::halt(format!(
                "cannot follow the DDL statement at {}:{end} on {}: {reason}: `{sql}`;                  set on_unknown_ddl = \"refresh\" to re-read the table from information_schema \
                 instead",
                self.file,
                if names.is_empty() { "an unknown table".to_string() } else { names },
            ))),
            OnUnknownDdl::Refresh => {
                tracing::warn!(source = %self.source, tables = %names, position = %format!("{}:{end}", self.file), "re-reading from information_schema after a DDL statement rowbus cannot follow: {reason}");
                let db = qualified.first().map_or(default_db.to_string(), |q| q.0.clone());
                self.refresh = Some(Refresh {
                    tables: qualified
                        .iter()
                        .filter(|(d, _)| *d == db)
                        .map(|(_, t)| t.clone())
                        .collect(),
                    db,
                    at: At::new(&self.file, end),
                });
                Ok(())
            }
        }
    }

    fn commit(&mut self, end: u64, out: &mut Vec<SourceRecord>) {
        if let Some(txn) = self.txn.take() {
            if let Some(gtid) = txn.mariadb_gtid {
                self.gtid_state.apply(gtid);
            }
            if let Some((uuid, gno)) = &txn.mysql_gtid {
                self.mysql_gtids.add(uuid, *gno);
            }
        }
        self.resume_skip = None;
        // Table ids are valid within a transaction; the next one maps its tables again.
        self.tables.clear();
        self.boundary(end, out);
    }

    fn boundary(&mut self, pos: u64, out: &mut Vec<SourceRecord>) {
        let gtid = if !self.gtid_state.is_empty() {
            Some(self.gtid_state.to_string())
        } else if self.mysql_gtids_complete && !self.mysql_gtids.is_empty() {
            Some(self.mysql_gtids.to_string())
        } else {
            None
        };
        let position = Position {
            file: self.file.to_string(),
            pos,
            gtid,
            snapshot: None,
        };
        self.last_boundary = position.clone();
        out.push(SourceRecord::Boundary(position));
    }

    fn rows(
        &mut self,
        event: &Event,
        rows: &RowsEventData<'_>,
        out: &mut Vec<SourceRecord>,
    ) -> Result<(), SourceError> {
        let header = event.header();
        let end = header.log_pos() as u64;
        let Some(table) = self.tables.get(&rows.table_id()).cloned() else {
            return Err(self.corrupt(
                end,
                &format!("rows event for unknown table id {}", rows.table_id()),
            ));
        };
        if !table.included || self.already_emitted() {
            return Ok(());
        }
        let op = match rows {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Op::Insert,
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Op::Delete,
            _ => Op::Update,
        };
        let start = end.saturating_sub(header.event_size() as u64);
        let (gtid, txn) = match &self.txn {
            Some(t) => (t.gtid.clone(), t.id.clone()),
            None => (None, Arc::from(format!("{}:{start}", self.file))),
        };
        let read_ts_ms = now_ms();
        let shared = Arc::new(SourceEvent {
            name: self.source.clone(),
            server_id: header.server_id(),
            file: self.file.clone(),
            pos: start,
            gtid,
            txn,
            ts_ms: header.timestamp() as u64 * 1000,
            snapshot: false,
            sinks: None,
        });
        let fail = |e: String| {
            SourceError::halt(format!(
                "cannot decode the rows event at {}:{start} for {}.{}: {e}",
                self.file, table.db, table.table
            ))
        };
        let images = decode_rows(rows, &table).map_err(fail)?;
        for (index, (before, after)) in images.into_iter().enumerate() {
            let before = before.map(|image| to_row(image, &table));
            let after = after.map(|image| to_row(image, &table));
            let key_source = if op == Op::Delete { &before } else { &after };
            let key = key_of(key_source.as_ref(), &table);
            out.push(SourceRecord::Change(Arc::new(ChangeEvent {
                partition_key: None,
                origin: None,
                op,
                db: table.db.clone(),
                table: table.table.clone(),
                key,
                before,
                after,
                source: SourceInfo {
                    event: shared.clone(),
                    row: index as u32,
                },
                read_ts_ms,
                ddl: None,
            })));
        }
        Ok(())
    }

    /// Counts an included rows event of the open transaction; true when it was emitted before a
    /// reconnect and must be skipped now.
    fn already_emitted(&mut self) -> bool {
        let Some(txn) = self.txn.as_mut() else {
            return false;
        };
        txn.rows_events += 1;
        match &mut self.resume_skip {
            Some((id, remaining)) if *id == txn.id && *remaining > 0 => {
                *remaining -= 1;
                true
            }
            Some(_) => {
                self.resume_skip = None;
                false
            }
            None => false,
        }
    }
}

/// The events the decoder reads beyond their header; the rest (statement-based LOAD DATA, user
/// variables, incidents, ...) carry no row change in a ROW-format binlog and are passed over.
pub(crate) fn needs_parsing(raw: u8) -> bool {
    use EventType::*;
    [
        FORMAT_DESCRIPTION_EVENT,
        ROTATE_EVENT,
        QUERY_EVENT,
        GTID_EVENT,
        GTID_TAGGED_LOG_EVENT,
        TABLE_MAP_EVENT,
        WRITE_ROWS_EVENT_V1,
        UPDATE_ROWS_EVENT_V1,
        DELETE_ROWS_EVENT_V1,
        WRITE_ROWS_EVENT,
        UPDATE_ROWS_EVENT,
        DELETE_ROWS_EVENT,
        PARTIAL_UPDATE_ROWS_EVENT,
    ]
    .iter()
    .any(|t| *t as u8 == raw)
}

/// Checks an event's CRC32 checksum, when it has one.
fn verify_checksum(event: &Event) -> Result<(), String> {
    let footer = event.footer();
    let (Some(stored), Ok(Some(alg))) = (event.checksum(), footer.get_checksum_alg()) else {
        return Ok(());
    };
    // Events inside a compressed transaction payload carry no checksum.
    if !footer.get_checksum_enabled() {
        return Ok(());
    }
    if alg != BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32 {
        return Ok(());
    }
    let computed = event.calc_checksum(alg);
    let stored = u32::from_le_bytes(stored);
    if computed != stored {
        return Err(format!(
            "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    Ok(())
}

/// The before and after images of one row of a rows event.
pub type RowImages = (Option<Image>, Option<Image>);

/// Decodes every row of a rows event into (before, after) images.
pub fn decode_rows(rows: &RowsEventData<'_>, table: &TableInfo) -> Result<Vec<RowImages>, String> {
    let plan = table.plan.as_ref().map_err(|e| e.to_string())?;
    let bits = |b: &mysql_async::binlog::events::RowsEventData<'_>, after: bool| {
        let slice = if after {
            b.columns_after_image()
        } else {
            b.columns_before_image()
        };
        slice.map(|s| s.iter().by_vals().collect::<Vec<bool>>())
    };
    let before_cols = bits(rows, false);
    let after_cols = bits(rows, true);
    let partial = matches!(rows, RowsEventData::PartialUpdateRowsEvent(_));
    let mut cursor = Cursor::new(rows.rows_data());
    let mut images = Vec::new();
    while !cursor.is_empty() {
        let row_start = cursor.position();
        let before = match &before_cols {
            Some(cols) => {
                Some(decode_image(&mut cursor, plan, cols, None, None).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let after = match &after_cols {
            Some(cols) => {
                let partial_json = if partial {
                    partial_json_columns(&mut cursor, table.json_columns)?
                } else {
                    None
                };
                Some(
                    decode_image(
                        &mut cursor,
                        plan,
                        cols,
                        partial_json.as_deref(),
                        before.as_ref(),
                    )
                    .map_err(|e| e.to_string())?,
                )
            }
            None => None,
        };
        if cursor.position() == row_start {
            return Err("a row image without bytes (corrupt rows event)".into());
        }
        images.push((before, after));
    }
    Ok(images)
}

/// The shared-image header of a partial update's after image: which JSON columns hold diffs.
fn partial_json_columns(
    cursor: &mut Cursor<'_>,
    json_columns: usize,
) -> Result<Option<Vec<bool>>, String> {
    let options = cursor.lenenc().map_err(|e| e.to_string())?;
    if options & 1 == 0 {
        return Ok(None);
    }
    let bytes = cursor
        .take(json_columns.div_ceil(8))
        .map_err(|e| e.to_string())?;
    Ok(Some(
        (0..json_columns)
            .map(|i| bytes[i / 8] & (1 << (i % 8)) != 0)
            .collect(),
    ))
}

/// A row image as an event row: all columns when the image is full, else the ones it has.
fn to_row(image: Image, table: &TableInfo) -> Row {
    let image = match image {
        Image::Full(values) => {
            return Row {
                columns: table.names.clone(),
                values,
            }
        }
        Image::Partial(image) => image,
    };
    let (columns, values): (Vec<Arc<str>>, Vec<rowbus_core::Value>) = table
        .names
        .iter()
        .zip(image)
        .filter_map(|(name, value)| value.map(|v| (name.clone(), v)))
        .unzip();
    Row {
        columns: columns.into(),
        values,
    }
}

fn key_of(image: Option<&Row>, table: &TableInfo) -> Row {
    let values = match image {
        // A partial image (not binlog_row_image=FULL) may lack key columns: no key then.
        Some(row) if row.values.len() == table.names.len() => table
            .primary_key
            .iter()
            .filter_map(|&i| row.values.get(i).cloned())
            .collect(),
        _ => return Row::default(),
    };
    Row {
        columns: table.key_names.clone(),
        values,
    }
}
