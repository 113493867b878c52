//! The schema history on disk: one JSON-lines file per source. Its first line is a whole schema and
//! the position it is valid at; each later line is one table (or database) as a DDL statement left
//! it, with the statement's position. Lines are appended and fsynced before the rows after the
//! statement can be acknowledged; a torn last line (a crash mid-write) is cut off on open.
//!
//! The schema valid at position P is the base plus every line at or before P. On start the lines
//! after the start position are dropped (the stream reads those statements again), and lines older
//! than the oldest binlog the server still has are folded into the base: no start position can
//! need them any more, so the file does not grow without bound.

use super::apply::Applied;
use super::{Schema, Table};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A binlog position as the history orders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct At {
    pub file: String,
    pub pos: u64,
}

impl At {
    pub fn new(file: &str, pos: u64) -> At {
        At {
            file: file.to_string(),
            pos,
        }
    }
}

impl From<&rowbus_core::Position> for At {
    fn from(position: &rowbus_core::Position) -> At {
        At::new(&position.file, position.pos)
    }
}

impl PartialOrd for At {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for At {
    /// Binlog files are numbered (`mysql-bin.000009` < `mysql-bin.000010`, also past 999999).
    fn cmp(&self, other: &Self) -> Ordering {
        let number = |f: &str| f.rsplit_once('.').and_then(|(_, n)| n.parse::<u64>().ok());
        match (number(&self.file), number(&other.file)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.file.cmp(&other.file),
        }
        .then(self.pos.cmp(&other.pos))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    at: At,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<Schema>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    db: Option<String>,
    /// With `db`: the table, and `def` its definition (absent when dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    def: Option<Arc<Table>>,
    /// With `db` and no table: the database's charset, or `dropped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    charset: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    dropped: bool,
}

impl Line {
    fn apply(&self, schema: &mut Schema) {
        let Some(db) = &self.db else { return };
        match (&self.table, &self.def) {
            (Some(table), Some(def)) => {
                let database = schema.databases.entry(db.clone()).or_default();
                database.tables.insert(table.clone(), def.clone());
            }
            (Some(table), None) => {
                if let Some(d) = schema.databases.get_mut(db) {
                    d.tables.remove(table);
                }
            }
            (None, _) if self.dropped => {
                schema.databases.remove(db);
            }
            (None, _) => {
                schema.databases.entry(db.clone()).or_default().charset = self.charset.clone()
            }
        }
    }
}

/// The history file of one source, and the schema at the end of what was read.
#[derive(Debug)]
pub struct History {
    path: Option<PathBuf>,
    base_at: At,
    base: Schema,
    lines: Vec<Line>,
    current: Schema,
}

impl History {
    /// A history kept in memory only (offline reading, tests).
    pub fn in_memory(at: At, schema: Schema) -> History {
        History {
            path: None,
            base_at: at,
            current: schema.clone(),
            base: schema,
            lines: Vec::new(),
        }
    }

    /// Starts a new history file with `schema` valid at `at`.
    pub fn create(path: &Path, at: At, schema: Schema) -> io::Result<History> {
        let mut history = History::in_memory(at, schema);
        history.path = Some(path.to_path_buf());
        history.rewrite()?;
        Ok(history)
    }

    /// Opens an existing history file; `None` when there is none yet.
    pub fn open(path: &Path) -> io::Result<Option<History>> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut lines = Vec::new();
        let mut whole = 0;
        for raw in bytes.split_inclusive(|&b| b == b'\n') {
            let Ok(line) = serde_json::from_slice::<Line>(raw) else {
                break;
            };
            if !raw.ends_with(b"\n") {
                break;
            }
            whole += raw.len();
            lines.push(line);
        }
        if whole < bytes.len() {
            tracing::warn!(path = %path.display(), cut = bytes.len() - whole, "schema history ends in a torn line; cutting it off");
        }
        let mut lines = lines.into_iter();
        let Some(Line {
            at: base_at,
            base: Some(base),
            ..
        }) = lines.next()
        else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not start with a schema", path.display()),
            ));
        };
        let mut history = History::in_memory(base_at, base);
        history.path = Some(path.to_path_buf());
        for line in lines {
            line.apply(&mut history.current);
            history.lines.push(line);
        }
        if whole < bytes.len() {
            history.rewrite()?;
        }
        Ok(Some(history))
    }

    /// The schema after everything read so far.
    pub fn schema(&self) -> &Schema {
        &self.current
    }

    /// The position the history is valid up to: statements at or before it are in it already.
    pub fn last_at(&self) -> &At {
        self.lines.last().map_or(&self.base_at, |l| &l.at)
    }

    /// The server whose positions these are (`None` for histories from before it was recorded).
    pub fn server(&self) -> Option<&str> {
        self.base.server.as_deref()
    }

    pub fn base_at(&self) -> &At {
        &self.base_at
    }

    /// Forgets what came after `start`, which the stream will read again.
    pub fn rewind(&mut self, start: &At) -> io::Result<()> {
        let keep = self.lines.iter().take_while(|l| l.at <= *start).count();
        if keep == self.lines.len() {
            return Ok(());
        }
        self.lines.truncate(keep);
        self.current = self.base.clone();
        for line in &self.lines {
            line.apply(&mut self.current);
        }
        self.rewrite()
    }

    /// Folds the lines before `oldest` (the start of the oldest binlog the server has) into the
    /// base. Returns how many lines were folded.
    pub fn compact(&mut self, oldest: &At) -> io::Result<usize> {
        let fold = self.lines.iter().take_while(|l| l.at < *oldest).count();
        if fold == 0 {
            return Ok(0);
        }
        for line in self.lines.drain(..fold) {
            line.apply(&mut self.base);
            self.base_at = line.at;
        }
        self.rewrite()?;
        Ok(fold)
    }

    /// Records durably what a statement at `at` did (already applied to `schema_mut()`).
    pub fn record(&mut self, at: &At, applied: &[Applied]) -> io::Result<()> {
        let mut text = Vec::new();
        for a in applied {
            let line = if a.table.is_empty() {
                let dropped = a.kind == "drop_database";
                Line {
                    at: at.clone(),
                    base: None,
                    db: Some(a.db.clone()),
                    table: None,
                    def: None,
                    charset: (!dropped)
                        .then(|| {
                            self.current
                                .databases
                                .get(&a.db)
                                .and_then(|d| d.charset.clone())
                        })
                        .flatten(),
                    dropped,
                }
            } else {
                Line {
                    at: at.clone(),
                    base: None,
                    db: Some(a.db.clone()),
                    table: Some(a.table.clone()),
                    def: a.after.clone(),
                    charset: None,
                    dropped: false,
                }
            };
            if a.kind == "truncate" {
                continue;
            }
            serde_json::to_writer(&mut text, &line).map_err(io::Error::other)?;
            text.push(b'\n');
            self.lines.push(line);
        }
        if let (Some(path), false) = (&self.path, text.is_empty()) {
            let mut file = OpenOptions::new().append(true).open(path)?;
            file.write_all(&text)?;
            file.sync_data()?;
        }
        Ok(())
    }

    /// Replaces the current schema (after re-reading information_schema) and records each table.
    pub fn replace_tables(
        &mut self,
        at: &At,
        schema: &Schema,
        db: &str,
        tables: &[String],
    ) -> io::Result<()> {
        let applied: Vec<Applied> = tables
            .iter()
            .map(|t| Applied {
                db: db.to_string(),
                table: t.clone(),
                kind: "alter",
                after: schema.table(db, t).cloned(),
            })
            .collect();
        let recorded = self.lines.len();
        self.record(at, &applied)?;
        for line in &self.lines[recorded..] {
            line.apply(&mut self.current);
        }
        Ok(())
    }

    /// The current schema, for applying a statement; call `record` with what it did.
    pub fn schema_mut(&mut self) -> &mut Schema {
        &mut self.current
    }

    fn rewrite(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        let mut out = Vec::new();
        let head = Line {
            at: self.base_at.clone(),
            base: Some(self.base.clone()),
            db: None,
            table: None,
            def: None,
            charset: None,
            dropped: false,
        };
        for line in std::iter::once(&head).chain(&self.lines) {
            serde_json::to_writer(&mut out, line).map_err(io::Error::other)?;
            out.push(b'\n');
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut file = File::create(&tmp)?;
        file.write_all(&out)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
