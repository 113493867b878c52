//! The change event model: one `ChangeEvent` per row change, with the row images as ordered
//! column/value pairs in DESIGN.md's native JSON encoding, and where it came from (`SourceInfo`).
//! Also `SourceRecord`, what a source hands to the pipeline: changes (one by one or in runs) and
//! transaction boundaries.

use crate::position::Position;
use crate::value::Value;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What happened to the row: `c` insert, `u` update, `d` delete, `r` snapshot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "c")]
    Insert,
    #[serde(rename = "u")]
    Update,
    #[serde(rename = "d")]
    Delete,
    #[serde(rename = "r")]
    Read,
    /// A schema change (`ddl` says which); only for sinks that ask for them.
    #[serde(rename = "ddl")]
    Ddl,
    /// TRUNCATE TABLE; only for sinks that ask for schema changes.
    #[serde(rename = "t")]
    Truncate,
    /// A rebuild of the table's search index begins (`rowbus snapshot --reindex`): the snapshot's
    /// rows follow. `key` holds the rebuild's id (column `rebuild`). Only for the search sinks the
    /// snapshot was asked for.
    #[serde(rename = "reindex_begin")]
    ReindexBegin,
    /// The rebuild's snapshot has delivered every row: the new index can take the alias.
    #[serde(rename = "reindex_end")]
    ReindexEnd,
}

impl Op {
    /// The name events carry: `c`, `u`, `d`, `r`, `ddl` or `t`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Ddl => "ddl",
            Op::Truncate => "t",
            Op::ReindexBegin => "reindex_begin",
            Op::ReindexEnd => "reindex_end",
        }
    }

    /// The op of a name `as_str` gives; the error lists the names.
    pub fn parse(name: &str) -> Result<Op, String> {
        [
            Op::Insert,
            Op::Update,
            Op::Delete,
            Op::Read,
            Op::Ddl,
            Op::Truncate,
            Op::ReindexBegin,
            Op::ReindexEnd,
        ]
        .into_iter()
        .find(|op| op.as_str() == name)
        .ok_or_else(|| {
            format!("unknown op `{name}` (c, u, d, r, ddl, t, reindex_begin or reindex_end)")
        })
    }

    /// Inserts, updates, deletes and snapshot reads: what row steps of transforms act on.
    pub fn is_row_change(self) -> bool {
        matches!(self, Op::Insert | Op::Update | Op::Delete | Op::Read)
    }

    /// Schema changes and truncations, which only sinks with `schema_changes = true` receive.
    pub fn is_schema_change(self) -> bool {
        matches!(self, Op::Ddl | Op::Truncate)
    }
}

/// A column as a schema change lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub sql_type: String,
}

/// What a DDL statement did to one table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaChange {
    /// `create`, `alter`, `rename`, `drop`, `truncate`, `create_database`, `drop_database`.
    pub kind: String,
    /// The statement as the server logged it.
    pub sql: String,
    /// The table's columns after the statement (empty when dropped).
    pub columns: Vec<ColumnSpec>,
    pub primary_key: Vec<String>,
    /// The session's default database when the statement ran (unqualified names are in it).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub database: String,
}

/// A row image: column names (shared between rows of one table map) and their JSON values, in table
/// order. Serialized as a JSON object that keeps that order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub columns: Arc<[Arc<str>]>,
    pub values: Vec<Value>,
}

impl Row {
    /// The value of the named column, if the row has it.
    pub fn get(&self, column: &str) -> Option<&Value> {
        let index = self.columns.iter().position(|c| &**c == column)?;
        self.values.get(index)
    }

    /// A rough count of the bytes this row holds in memory, for byte-bounded queues.
    pub fn approx_size(&self) -> usize {
        self.values.iter().map(Value::approx_size).sum::<usize>() + 16
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.values.len()))?;
        for (name, value) in self.columns.iter().zip(&self.values) {
            map.serialize_entry(&**name, value)?;
        }
        map.end()
    }
}

/// Where a change was read: enough to find it again in the binlog and to order it. The part shared
/// by every row of one rows event is shared (`event`); fields read through it as `source.file`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub event: Arc<SourceEvent>,
    /// The row's index within its rows event.
    pub row: u32,
}

impl std::ops::Deref for SourceInfo {
    type Target = SourceEvent;

    fn deref(&self) -> &SourceEvent {
        &self.event
    }
}

/// What the rows of one rows event share.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceEvent {
    /// The name of the configured source (`[sources.NAME]`).
    pub name: Arc<str>,
    /// The `server_id` of the server that wrote the event.
    pub server_id: u32,
    /// The binlog file and the offset where the rows event starts.
    pub file: Arc<str>,
    pub pos: u64,
    /// The transaction's GTID (MySQL `uuid:n`, MariaDB `domain-server-seq`), when the server has them.
    pub gtid: Option<Arc<str>>,
    /// The transaction: its GTID, or `file:pos` of its first event when there is none.
    pub txn: Arc<str>,
    /// When the server wrote the event, in ms since the epoch (second precision in the binlog).
    pub ts_ms: u64,
    pub snapshot: bool,
    /// A snapshot's rows asked for some sinks only (`rowbus snapshot --sink`): their names.
    pub sinks: Option<Arc<[String]>>,
}

impl Serialize for SourceInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = &self.event;
        let mut map = serializer.serialize_map(Some(9))?;
        map.serialize_entry("name", &*e.name)?;
        map.serialize_entry("server_id", &e.server_id)?;
        map.serialize_entry("file", &*e.file)?;
        map.serialize_entry("pos", &e.pos)?;
        map.serialize_entry("gtid", &e.gtid.as_deref())?;
        map.serialize_entry("txn", &*e.txn)?;
        map.serialize_entry("ts_ms", &e.ts_ms)?;
        map.serialize_entry("row", &self.row)?;
        map.serialize_entry("snapshot", &e.snapshot)?;
        map.end()
    }
}

/// One row change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEvent {
    pub op: Op,
    pub db: Arc<str>,
    pub table: Arc<str>,
    /// Primary-key columns and their values (empty when the table has no primary key or the
    /// binlog does not say which columns form it).
    pub key: Row,
    pub before: Option<Row>,
    pub after: Option<Row>,
    pub source: SourceInfo,
    /// When rowbus read the event, in ms since the epoch.
    pub read_ts_ms: u64,
    /// For `op = "ddl"` and `"t"`: the statement and the table after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ddl: Option<Arc<SchemaChange>>,
    /// Set when a transform gave the event another key: the source row's key (or the columns a
    /// `partition` step chose), which sinks partition by and the failure log parks by, so that
    /// one row's changes stay in order whatever key they are delivered under.
    #[serde(skip)]
    pub partition_key: Option<Row>,
    /// Set when a transform changed the event: its identity as it came from the source, which the
    /// failure log parks it by, so that a change logged as it came (a transform failed on it) and
    /// the later, transformed changes of the same row park together.
    #[serde(skip)]
    pub origin: Option<Arc<Origin>>,
}

/// A change's table and key (and its row's key before an update changed it) as the source gave
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub db: Arc<str>,
    pub table: Arc<str>,
    pub key: Row,
    pub old_key: Option<Row>,
}

impl ChangeEvent {
    /// A rough count of the bytes this event holds in memory, for byte-bounded queues.
    pub fn approx_size(&self) -> usize {
        let image = |r: &Option<Row>| r.as_ref().map_or(0, Row::approx_size);
        256 + self.key.approx_size() + image(&self.before) + image(&self.after)
    }

    /// Its origin: the one a transform recorded, or its own table and key.
    pub fn origin(&self) -> Origin {
        if let Some(origin) = &self.origin {
            return (**origin).clone();
        }
        let old_key = self
            .before
            .as_ref()
            .filter(|_| self.after.is_some())
            .and_then(|before| {
                let values = self.key.columns.iter().map(|c| before.get(c).cloned());
                Some(Row {
                    columns: self.key.columns.clone(),
                    values: values.collect::<Option<Vec<_>>>()?,
                })
            });
        Origin {
            db: self.db.clone(),
            table: self.table.clone(),
            key: self.key.clone(),
            old_key,
        }
    }

    /// The columns that keep one source row's changes together: `partition_key`, else the key.
    pub fn partition(&self) -> &Row {
        self.partition_key.as_ref().unwrap_or(&self.key)
    }

    /// `db.table`, as table filters and sinks name tables.
    pub fn qualified_table(&self) -> String {
        format!("{}.{}", self.db, self.table)
    }
}

/// What a source hands to the pipeline, in binlog order.
#[derive(Debug, Clone)]
pub enum SourceRecord {
    /// A row change inside a transaction.
    Change(Arc<ChangeEvent>),
    /// Consecutive row changes of one rows event or snapshot chunk (one table, one op), in order:
    /// queued, registered and acknowledged as one record (see `runs`).
    Run(Arc<[Arc<ChangeEvent>]>),
    /// A transaction boundary or an idle heartbeat: everything before it is complete, and a reader
    /// restarted at `Position` neither misses nor repeats anything.
    Boundary(Position),
}

impl SourceRecord {
    pub fn approx_size(&self) -> usize {
        match self {
            SourceRecord::Change(event) => event.approx_size(),
            SourceRecord::Run(events) => events.iter().map(|e| e.approx_size()).sum(),
            SourceRecord::Boundary(_) => 64,
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
