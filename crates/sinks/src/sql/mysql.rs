//! The MySQL/MariaDB target: one connection per worker (mysql_async), a transaction per batch,
//! multi-row `INSERT ... ON DUPLICATE KEY UPDATE` and `DELETE ... WHERE (key) IN (...)` with bound
//! parameters, in a session whose time zone is UTC. Rows the target most likely lacks go by `LOAD
//! DATA LOCAL INFILE` from memory (`bulk`), into tables without BIT or spatial columns (whose text
//! form `LOAD DATA` does not read back); if it skipped a row (one there already) or warned, the
//! rows are upserted after it, which writes each of them whole.

use super::bulk::{self, Pauses};
use super::params::{mysql_value, write_mysql_text};
use super::plan::{DdlRun, Expect, TablePlan};
use super::{of_the_sink, Marker, SqlSinkConfig, Target};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, TxOpts};
use rowbus_core::sink::{BoxFuture, SinkError};
use rowbus_core::Row;
use std::collections::HashMap;
use std::sync::Arc;

/// A statement carries at most this many rows (and MySQL's 65535 placeholders).
const MAX_ROWS: usize = 1000;

pub struct MyTarget {
    config: SqlSinkConfig,
    worker: usize,
    conn: Option<Conn>,
    columns: HashMap<(String, String), Arc<Columns>>,
    /// The rows of each `LOAD DATA` statement, by the file name it gives, until the server asks.
    infiles: Infiles,
    /// Tables upserted without trying `LOAD DATA` for a while.
    load_paused: Pauses,
}

/// A target table's columns.
#[derive(Default)]
struct Columns {
    /// By lower-cased name, with their real spelling.
    names: HashMap<String, String>,
    /// Whether `LOAD DATA` reads every column's values back from their text (no BIT or spatial
    /// columns).
    loadable: bool,
}

type Infiles = Arc<std::sync::Mutex<HashMap<Vec<u8>, bytes::Bytes>>>;

/// Serves `LOAD DATA LOCAL INFILE` from `infiles`: any other file name is refused.
fn infile_handler(infiles: Infiles) -> impl mysql_async::prelude::GlobalHandler {
    move |name: &[u8]| {
        let data = infiles.lock().expect("not poisoned").remove(name);
        let name = String::from_utf8_lossy(name).into_owned();
        let served: futures_util::future::BoxFuture<'static, _> = Box::pin(async move {
            use futures_util::StreamExt;
            match data {
                Some(bytes) => Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed()),
                None => Err(mysql_async::LocalInfileError::PathIsNotInTheWhiteList(name)),
            }
        });
        served
    }
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

enum Failed {
    Db(&'static str, mysql_async::Error),
    Permanent(String),
}

fn db(doing: &'static str) -> impl FnOnce(mysql_async::Error) -> Failed {
    move |e| Failed::Db(doing, e)
}

impl MyTarget {
    pub fn new(config: SqlSinkConfig, worker: usize) -> Self {
        MyTarget {
            config,
            worker,
            conn: None,
            columns: HashMap::new(),
            infiles: Infiles::default(),
            load_paused: Pauses::default(),
        }
    }

    fn classify(&mut self, e: mysql_async::Error, doing: &str) -> SinkError {
        let message = format!("MySQL at {}, {doing}: {e}", self.config.addr());
        let retriable = match &e {
            // Deadlock, lock wait timeout, too many connections, server shutting down, read-only
            // (a failover in progress), idle or statement timeouts, a full disk.
            mysql_async::Error::Server(s) => matches!(
                s.code,
                1213 | 1205 | 1040 | 1053 | 1290 | 1836 | 4031 | 3024 | 1969 | 1021 | 1114
            ),
            // A statement rowbus built wrongly for the row (parameters): the row goes to the
            // failure log; lost connections and I/O are retried.
            mysql_async::Error::Driver(_) => false,
            _ => true,
        };
        if retriable {
            self.conn = None;
            SinkError::retriable(message)
        } else {
            self.columns.clear();
            SinkError::permanent(message)
        }
    }

    async fn connect(&mut self) -> Result<(), SinkError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let opts = OptsBuilder::default()
            .ip_or_hostname(self.config.host.clone())
            .tcp_port(self.config.port)
            .user(Some(self.config.user.clone()))
            .pass(
                self.config
                    .password
                    .as_ref()
                    .map(|p| p.expose().to_string()),
            )
            .init(vec!["SET time_zone = '+00:00'"])
            .local_infile_handler(Some(infile_handler(self.infiles.clone())));
        // Connecting is retried whatever the error: it concerns the sink, not a row.
        let mut conn = match Conn::new(opts).await {
            Ok(conn) => conn,
            Err(e) => return Err(of_the_sink(self.classify(e, "connecting"))),
        };
        if self.config.effectively_once {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {}.rowbus_applied (sink VARCHAR(200), worker INT, \
                 file_no BIGINT, pos BIGINT, row_no BIGINT, applied_at TIMESTAMP(6) DEFAULT \
                 CURRENT_TIMESTAMP(6), PRIMARY KEY (sink, worker))",
                quote(&self.config.database)
            );
            if let Err(e) = conn.query_drop(sql).await {
                return Err(of_the_sink(self.classify(e, "creating rowbus_applied")));
            }
        }
        self.conn = Some(conn);
        Ok(())
    }

    async fn columns(
        &mut self,
        (db, source_table): (&str, &str),
        schema: &str,
        table: &str,
    ) -> Result<Arc<Columns>, SinkError> {
        let key = (schema.to_string(), table.to_string());
        if let Some(c) = self.columns.get(&key) {
            return Ok(c.clone());
        }
        if let Some(columns) = self.read_columns(schema, table).await? {
            return Ok(columns);
        }
        if !self.config.create_tables {
            return Err(SinkError::permanent(format!(
                "table {}.{} does not exist in MySQL at {}: create it, or set create_tables = true",
                quote(schema),
                quote(table),
                self.config.addr()
            )));
        }
        let source = self.config.source.clone().ok_or_else(|| {
            SinkError::permanent("create_tables needs the source server, which is not set")
        })?;
        let statements = super::create::create_statements(
            &self.config,
            &source,
            db,
            source_table,
            schema,
            table,
        )
        .await?;
        for sql in statements {
            let conn = self.conn.as_mut().expect("connected");
            if let Err(e) = conn.query_drop(sql).await {
                let e = self.classify(e, "creating the target table");
                // Another worker may have created it at the same moment.
                if self.conn.is_some() {
                    if let Some(columns) = self.read_columns(schema, table).await? {
                        return Ok(columns);
                    }
                }
                return Err(e);
            }
        }
        tracing::info!(table = %format!("{schema}.{table}"), "created the target table from {db}.{source_table}");
        self.read_columns(schema, table).await?.ok_or_else(|| {
            SinkError::permanent(format!("created {schema}.{table}, but cannot see it"))
        })
    }

    async fn read_columns(
        &mut self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Arc<Columns>>, SinkError> {
        let key = (schema.to_string(), table.to_string());
        let conn = self.conn.as_mut().expect("connected");
        let rows: Result<Vec<(String, String)>, _> = conn
            .exec(
                "SELECT COLUMN_NAME, LOWER(DATA_TYPE) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (schema, table),
            )
            .await;
        let rows = match rows {
            Ok(n) => n,
            Err(e) => return Err(self.classify(e, "reading the target's columns")),
        };
        if rows.is_empty() {
            return Ok(None);
        }
        const UNLOADABLE: [&str; 9] = [
            "bit",
            "geometry",
            "point",
            "linestring",
            "polygon",
            "multipoint",
            "multilinestring",
            "multipolygon",
            "geometrycollection",
        ];
        let loadable = rows
            .iter()
            .all(|(_, ty)| !UNLOADABLE.contains(&ty.as_str()));
        let names = rows
            .into_iter()
            .map(|(n, _)| (n.to_lowercase(), n))
            .collect();
        let columns = Arc::new(Columns { names, loadable });
        self.columns.insert(key, Arc::clone(&columns));
        Ok(Some(columns))
    }

    async fn apply_all(
        &mut self,
        plans: &[TablePlan],
        marker: Option<Marker>,
    ) -> Result<(), SinkError> {
        self.connect().await?;
        let mut targets = Vec::new();
        for p in plans {
            let (schema, table) = self.config.target_of(&p.db, &p.table);
            let columns = match p.rows.is_empty() {
                true => Arc::default(), // a truncation needs no columns
                false => self.columns((&p.db, &p.table), &schema, &table).await?,
            };
            targets.push((format!("{}.{}", quote(&schema), quote(&table)), columns));
        }
        for p in plans {
            if let Some(ddl) = &p.ddl {
                self.run_ddl(ddl).await?;
            }
        }
        let mut conn = self.conn.take().expect("connected");
        let (name, worker, marker_db) = (
            self.config.marker_key.clone(),
            self.worker,
            quote(&self.config.database),
        );
        let load: Vec<bool> = targets
            .iter()
            .map(|(target, columns)| columns.loadable && self.load_paused.allowed(target))
            .collect();
        let mut skipped = Vec::new();
        let result = async {
            let mut tx = conn
                .start_transaction(TxOpts::default())
                .await
                .map_err(db("starting a transaction"))?;
            for (i, (p, (target, columns))) in plans.iter().zip(&targets).enumerate() {
                if p.truncate {
                    // TRUNCATE would commit at once; DELETE stays in the transaction with the
                    // marker. A table the target does not have yet is empty already.
                    let sql = format!("DELETE FROM {target}");
                    match tx.query_drop(sql).await {
                        Err(mysql_async::Error::Server(s)) if s.code == 1146 => {}
                        emptied => emptied.map_err(db("emptying the table (a TRUNCATE)"))?,
                    }
                }
                let infiles = load[i].then_some(&self.infiles);
                if !apply_table(&mut tx, p, target, columns, infiles).await? {
                    skipped.push(target.clone());
                }
            }
            if let Some((file, pos, row)) = marker {
                let sql = format!(
                    "INSERT INTO {marker_db}.rowbus_applied (sink, worker, file_no, pos, row_no) VALUES (?, ?, ?, ?, ?) \
                     ON DUPLICATE KEY UPDATE file_no = VALUES(file_no), pos = VALUES(pos), \
                     row_no = VALUES(row_no), applied_at = CURRENT_TIMESTAMP(6)"
                );
                tx.exec_drop(sql, (name, worker as i64, file, pos, row as u64))
                    .await
                    .map_err(db("recording the applied position"))?;
            }
            tx.commit().await.map_err(db("committing"))
        }
        .await;
        // After an error the connection is dropped, so the server rolls the transaction back at
        // once rather than holding its locks until the connection's next command.
        if result.is_ok() {
            self.conn = Some(conn);
        }
        for target in skipped {
            self.load_paused.pause(target);
        }
        result.map_err(|f| match f {
            Failed::Db(doing, e) => self.classify(e, doing),
            Failed::Permanent(message) => {
                self.columns.clear();
                SinkError::permanent(message)
            }
        })
    }
}

/// A target column's quoted name, or why the source column has none.
fn target_column(
    columns: &Columns,
    p: &TablePlan,
    target: &str,
    c: &str,
) -> Result<String, Failed> {
    columns
        .names
        .get(&c.to_lowercase())
        .map(|n| quote(n))
        .ok_or_else(|| {
            Failed::Permanent(format!(
                "column `{c}` of {}.{} has no column in {target}",
                p.db, p.table
            ))
        })
}

/// `(?, ?, ...), (?, ?, ...)`: `rows` tuples of `width` placeholders.
fn placeholders(rows: usize, width: usize) -> String {
    let tuple = format!("({})", vec!["?"; width].join(", "));
    vec![tuple; rows].join(", ")
}

/// One table's deletes, then its upserts (one statement per column list), in the transaction;
/// with `infiles`, the rows likely new by `LOAD DATA` first. False when `LOAD DATA` left rows to
/// upsert after it.
async fn apply_table(
    tx: &mut mysql_async::Transaction<'_>,
    p: &TablePlan,
    target: &str,
    columns: &Columns,
    infiles: Option<&Infiles>,
) -> Result<bool, Failed> {
    let keys: Vec<String> = p
        .key_columns
        .iter()
        .map(|k| target_column(columns, p, target, k))
        .collect::<Result<_, _>>()?;
    let deletes: Vec<&Row> = p.deletes().collect();
    for chunk in deletes.chunks(MAX_ROWS) {
        let sql = format!(
            "DELETE FROM {target} WHERE ({}) IN ({})",
            keys.join(", "),
            placeholders(chunk.len(), keys.len())
        );
        let params: Vec<mysql_async::Value> = chunk
            .iter()
            .flat_map(|k| k.values.iter().map(mysql_value))
            .collect();
        tx.exec_drop(sql, params).await.map_err(db("deleting"))?;
    }
    let mut loaded_all = true;
    for upserts in p.upsert_groups().map_err(Failed::Permanent)? {
        let cols: Vec<String> = upserts
            .columns
            .iter()
            .map(|c| target_column(columns, p, target, c))
            .collect::<Result<_, _>>()?;
        let (new, old) = match infiles {
            Some(_) => upserts.by_newness(),
            None => (Vec::new(), upserts.rows.clone()),
        };
        let mut rows = old;
        if let (Some(infiles), false) = (infiles, new.is_empty()) {
            if !load_rows(tx, infiles, target, &cols, &new).await? {
                loaded_all = false;
                rows.extend(new);
            }
        }
        let per = MAX_ROWS.min(60_000 / cols.len().max(1)).max(1);
        let updates: Vec<String> = cols
            .iter()
            .filter(|c| !keys.contains(c))
            .map(|c| format!("{c} = VALUES({c})"))
            .collect();
        let tail = if updates.is_empty() {
            format!("ON DUPLICATE KEY UPDATE {0} = {0}", keys[0])
        } else {
            format!("ON DUPLICATE KEY UPDATE {}", updates.join(", "))
        };
        for chunk in rows.chunks(per) {
            let sql = format!(
                "INSERT INTO {target} ({}) VALUES {} {tail}",
                cols.join(", "),
                placeholders(chunk.len(), cols.len())
            );
            let params: Vec<mysql_async::Value> = chunk
                .iter()
                .flat_map(|r| r.values.iter().map(mysql_value))
                .collect();
            tx.exec_drop(sql, params).await.map_err(db("upserting"))?;
        }
    }
    Ok(loaded_all)
}

/// Inserts rows by `LOAD DATA LOCAL INFILE`. False when it did not insert each of them exactly
/// (it skips a row whose key is there, and warns rather than fails on a value it cannot store):
/// the caller then upserts them all.
async fn load_rows(
    tx: &mut mysql_async::Transaction<'_>,
    infiles: &Infiles,
    target: &str,
    cols: &[String],
    rows: &[&Row],
) -> Result<bool, Failed> {
    let mut text = Vec::new();
    for row in rows {
        bulk::line(&mut text, row.values.iter(), write_mysql_text);
    }
    // The worker's own map: one name serves each of its statements in turn.
    let file = "rowbus-rows";
    infiles
        .lock()
        .expect("not poisoned")
        .insert(file.as_bytes().to_vec(), text.into());
    let sql = format!(
        "LOAD DATA LOCAL INFILE '{file}' INTO TABLE {target} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
        cols.join(", ")
    );
    let loaded = tx.query_drop(sql).await;
    infiles
        .lock()
        .expect("not poisoned")
        .remove(file.as_bytes());
    match loaded {
        // The server does not take LOCAL INFILE (`local_infile` is off): upserts do it all.
        Err(mysql_async::Error::Server(s)) if matches!(s.code, 1148 | 3948) => {
            tracing::debug!(error = %s.message, "LOAD DATA LOCAL INFILE refused; upserting");
            Ok(false)
        }
        Err(e) => Err(Failed::Db("loading rows (LOAD DATA LOCAL INFILE)", e)),
        Ok(()) => Ok(tx.affected_rows() == rows.len() as u64 && tx.get_warnings() == 0),
    }
}

impl MyTarget {
    /// Runs a schema change in the target database of the session's, outside the transaction
    /// (MySQL commits DDL at once). When the server says it is done already (run again after a
    /// restart), the target must show it: the table with the source's columns, or gone;
    /// otherwise the change failed.
    async fn run_ddl(&mut self, ddl: &DdlRun) -> Result<(), SinkError> {
        let conn = self.conn.as_mut().expect("connected");
        let ran = async {
            conn.query_drop(format!("USE {}", quote(&ddl.database)))
                .await?;
            conn.query_drop(ddl.sql.as_str()).await
        }
        .await;
        self.columns.clear();
        let done_already = match ran {
            Ok(()) => return Ok(()),
            // Exists already, duplicate column or key, cannot drop (gone), unknown table; or,
            // for a change whose result can be checked, any refusal (a rename run again).
            Err(mysql_async::Error::Server(s))
                if matches!(s.code, 1050 | 1060 | 1061 | 1091 | 1051 | 1146)
                    || !matches!(ddl.expect, Expect::Nothing) =>
            {
                s.message
            }
            Err(e) => return Err(self.classify(e, "running a schema change")),
        };
        let shown = self.target_shows(&ddl.expect).await?;
        if !shown {
            return Err(SinkError::permanent(format!(
                "the schema change did not apply on the target ({done_already}), which differs from the source: apply it by hand ({})",
                ddl.sql
            )));
        }
        tracing::warn!(sink = %self.config.name, error = %done_already, "a schema change already on the target");
        Ok(())
    }

    /// Whether the target table is as a schema change left the source's.
    async fn target_shows(&mut self, expect: &Expect) -> Result<bool, SinkError> {
        let (db, table) = match expect {
            Expect::Nothing => return Ok(true),
            Expect::Columns(db, table, _) | Expect::Absent(db, table) => (db, table),
        };
        let conn = self.conn.as_mut().expect("connected");
        let columns: Result<Vec<String>, _> = conn
            .exec(
                "SELECT LOWER(COLUMN_NAME) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (db, table),
            )
            .await;
        let columns = columns.map_err(|e| self.classify(e, "reading the target's columns"))?;
        Ok(match expect {
            Expect::Columns(_, _, expected) => columns == *expected,
            _ => columns.is_empty(),
        })
    }
}

impl Target for MyTarget {
    fn schema_changed(&mut self) {
        self.columns.clear();
    }

    fn apply<'a>(
        &'a mut self,
        plans: &'a [TablePlan],
        marker: Option<Marker>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.apply_all(plans, marker))
    }

    fn marker(&mut self) -> BoxFuture<'_, Result<Option<Marker>, SinkError>> {
        Box::pin(async move {
            self.connect().await?;
            let sql = format!(
                "SELECT file_no, pos, row_no FROM {}.rowbus_applied WHERE sink = ? AND worker = ?",
                quote(&self.config.database)
            );
            let conn = self.conn.as_mut().expect("connected");
            let row: Result<Option<(u64, u64, u64)>, _> = conn
                .exec_first(sql, (self.config.marker_key.clone(), self.worker as i64))
                .await;
            match row {
                Ok(row) => Ok(row.map(|(f, p, n)| (f, p, n as u32))),
                Err(e) => Err(of_the_sink(self.classify(e, "reading rowbus_applied"))),
            }
        })
    }
}
