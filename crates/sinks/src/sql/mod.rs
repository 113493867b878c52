//! The database sinks: apply changes to tables of PostgreSQL or MySQL/MariaDB. A batch is collapsed
//! to each row's final state (`plan`), split by key hash over `workers` connections, and applied by
//! each in one transaction of multi-row statements: upserts of after images and deletes by key,
//! with values always bound as parameters. Under `effectively_once` each transaction also records
//! the last source position it applied, and rows at or before it are skipped after a restart.
//! A TRUNCATE TABLE of the source (with `schema_changes`) splits the batch: what came before it
//! is applied, then the target table is emptied by one worker (in a transaction with its marker),
//! then what came after. With `apply_ddl` (MySQL targets) the other schema changes are run on the
//! target the same way, as the source ran them, in the table's target database.

pub mod bulk;
pub mod create;
pub mod mysql;
pub mod params;
pub mod plan;
pub mod postgres;

use plan::{RowState, SourceOrder, TablePlan};
use rowbus_core::sink::{BoxFuture, Sink, SinkError};
use rowbus_core::ChangeEvent;
use std::sync::Arc;

/// Which database a SQL sink writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

#[derive(Debug, Clone)]
pub struct SqlSinkConfig {
    pub name: String,
    pub dialect: Dialect,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<rowbus_core::secret::Secret>,
    /// PostgreSQL: the database to connect to. MySQL: unused (see `schema`).
    pub database: String,
    /// The target schema (PostgreSQL) or database (MySQL) of a source table; `{db}` is replaced.
    pub schema: String,
    /// The target table name; `{table}` and `{db}` are replaced.
    pub table: String,
    /// Connections applying in parallel, rows partitioned by key.
    pub workers: usize,
    /// Source columns not written to the target: `column` (every table) or `db.table.column`.
    pub exclude_columns: Vec<String>,
    /// Source column to target column names, keyed the same way.
    pub rename_columns: std::collections::BTreeMap<String, String>,
    pub effectively_once: bool,
    /// Run the source's schema changes on the target (MySQL to MySQL, names unmapped).
    pub apply_ddl: bool,
    /// Create a missing target table from the source table's definition.
    pub create_tables: bool,
    /// One target transaction per source transaction, on one connection (the pipeline hands the
    /// sink whole transactions), instead of batches split over `workers`.
    pub source_transactions: bool,
    /// The source server, where `create_tables` reads definitions (set when the pipeline starts).
    pub source: Option<create::SourceServer>,
    /// Whose applied positions `rowbus_applied` keeps: the installation (data directory), the
    /// source and the sink, so that another pipeline, or a fresh start of this one, never skips
    /// rows by positions it did not write.
    pub marker_key: String,
}

impl SqlSinkConfig {
    pub fn target_of(&self, db: &str, table: &str) -> (String, String) {
        let fill = |t: &str| t.replace("{db}", db).replace("{table}", table);
        (fill(&self.schema), fill(&self.table))
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The target name of a source column, or `None` when it is excluded.
    pub fn column_of(&self, db: &str, table: &str, column: &str) -> Option<Arc<str>> {
        let qualified = format!("{db}.{table}.{column}");
        let excluded = |c: &String| c == column || *c == qualified;
        if self.exclude_columns.iter().any(excluded) {
            return None;
        }
        Some(self.renamed(db, table, column))
    }

    /// The target name of a source column, renames applied (`db.table.column` before `column`).
    pub fn renamed(&self, db: &str, table: &str, column: &str) -> Arc<str> {
        let qualified = format!("{db}.{table}.{column}");
        let renamed = self
            .rename_columns
            .get(&qualified)
            .or_else(|| self.rename_columns.get(column));
        Arc::from(renamed.map_or(column, String::as_str))
    }

    fn has_mapping(&self) -> bool {
        !self.exclude_columns.is_empty() || !self.rename_columns.is_empty()
    }

    /// A row with target column names, without excluded columns (key columns are always kept).
    fn map_row(
        &self,
        db: &str,
        table: &str,
        keys: &[Arc<str>],
        row: &rowbus_core::Row,
    ) -> rowbus_core::Row {
        let (columns, values): (Vec<Arc<str>>, Vec<rowbus_core::Value>) = row
            .columns
            .iter()
            .zip(&row.values)
            .filter_map(|(c, v)| {
                let name = match keys.contains(c) {
                    true => self.renamed(db, table, c),
                    false => self.column_of(db, table, c)?,
                };
                Some((name, v.clone()))
            })
            .unzip();
        rowbus_core::Row {
            columns: columns.into(),
            values,
        }
    }

    /// Applies renames and exclusions to a table's plan (key columns are renamed, never excluded).
    fn map_plan(&self, mut p: TablePlan) -> TablePlan {
        if !self.has_mapping() {
            return p;
        }
        let key: Vec<Arc<str>> = p
            .key_columns
            .iter()
            .map(|c| self.renamed(&p.db, &p.table, c))
            .collect();
        let source_keys = p.key_columns.clone();
        p.key_columns = key.into();
        for state in p.rows.iter_mut() {
            *state = match state {
                RowState::Upsert(row) => {
                    RowState::Upsert(self.map_row(&p.db, &p.table, &source_keys, row))
                }
                RowState::Delete(k) => RowState::Delete(rowbus_core::Row {
                    columns: p.key_columns.clone(),
                    values: k.values.clone(),
                }),
            };
        }
        p
    }
}

/// The last source position a worker applied (effectively once).
pub type Marker = SourceOrder;

/// One connection's work: apply plans in one transaction.
pub trait Target: Send {
    /// A schema change ran on the target: what was read of its tables is stale.
    fn schema_changed(&mut self) {}

    /// Applies `plans` atomically; with `marker`, records it for this worker in the same
    /// transaction.
    fn apply<'a>(
        &'a mut self,
        plans: &'a [TablePlan],
        marker: Option<Marker>,
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// The marker this worker recorded last, if any.
    fn marker(&mut self) -> BoxFuture<'_, Result<Option<Marker>, SinkError>>;
}

struct Worker {
    target: Box<dyn Target>,
    /// Loaded on first use (effectively once).
    marker: Option<Option<Marker>>,
}

/// A SQL sink: one `Target` per worker.
pub struct SqlSink {
    config: SqlSinkConfig,
    workers: Vec<Worker>,
}

impl SqlSink {
    pub fn new(config: SqlSinkConfig) -> Self {
        let workers = (0..config.workers.max(1))
            .map(|index| Worker {
                target: match config.dialect {
                    Dialect::Postgres => {
                        Box::new(postgres::PgTarget::new(config.clone(), index)) as Box<dyn Target>
                    }
                    Dialect::Mysql => Box::new(mysql::MyTarget::new(config.clone(), index)),
                },
                marker: None,
            })
            .collect();
        SqlSink { config, workers }
    }

    async fn write_batch(&mut self, batch: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        let mut start = 0;
        for (i, e) in batch.iter().enumerate() {
            let ddl = e.op == rowbus_core::Op::Ddl && self.config.apply_ddl;
            if e.op == rowbus_core::Op::Truncate || ddl {
                self.write_changes(&batch[start..i]).await?;
                self.schema_change(e).await?;
                start = i + 1;
            }
        }
        self.write_changes(&batch[start..]).await
    }

    /// Applies row changes: the whole run over the workers, or with `source_transactions`
    /// each source transaction in turn as one target transaction.
    async fn write_changes(&mut self, changes: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        if !self.config.source_transactions {
            return self.write_rows(changes, self.workers.len()).await;
        }
        let mut rest = changes;
        while let Some(first) = rest.first() {
            let txn = &first.source.txn;
            let end = rest
                .iter()
                .position(|e| e.source.txn != *txn)
                .unwrap_or(rest.len());
            self.write_rows(&rest[..end], 1).await?;
            rest = &rest[end..];
        }
        Ok(())
    }

    /// Empties the target table of a TRUNCATE, or runs a schema change, on worker 0 (with its
    /// marker: after a restart or a retry, a statement at or before it is not done again, nor
    /// a statement naming several tables once per table, its events sharing its position;
    /// `apply_ddl` requires `effectively_once`).
    async fn schema_change(&mut self, e: &ChangeEvent) -> Result<(), SinkError> {
        if e.op == rowbus_core::Op::Ddl && e.ddl.is_none() {
            return Ok(());
        }
        let at = plan::order_of(e);
        let statement = (at.0, at.1);
        let once = self.config.effectively_once;
        if once {
            let worker = &mut self.workers[0];
            if worker.marker.is_none() {
                worker.marker = Some(worker.target.marker().await?);
            }
            let done = worker.marker.flatten().map(|m| (m.0, m.1));
            if done.is_some_and(|m| statement <= m) {
                return Ok(()); // applied before a restart or a retry
            }
        }
        let ddl = match &e.ddl {
            Some(change) if e.op == rowbus_core::Op::Ddl => {
                Some(Arc::new(self.ddl_run(e, change)?))
            }
            _ => None,
        };
        let worker = &mut self.workers[0];
        let plan = TablePlan {
            db: e.db.clone(),
            table: e.table.clone(),
            truncate: ddl.is_none(),
            ddl: ddl.clone(),
            ..TablePlan::default()
        };
        let marker = once.then_some(at);
        let applied = worker
            .target
            .apply(std::slice::from_ref(&plan), marker)
            .await;
        match applied {
            Ok(()) => {
                if once {
                    worker.marker = Some(marker);
                }
                if ddl.is_some() {
                    self.workers
                        .iter_mut()
                        .for_each(|w| w.target.schema_changed());
                }
                Ok(())
            }
            Err(e) => {
                worker.marker = None;
                Err(e)
            }
        }
    }

    /// How the target runs a schema change: in the target database of the session's default
    /// database, as the source ran it. rowbus does not rewrite SQL: a statement on a database
    /// (CREATE/DROP DATABASE) is not run, nor one that names a database whose target has
    /// another name.
    fn ddl_run(
        &self,
        e: &ChangeEvent,
        change: &rowbus_core::event::SchemaChange,
    ) -> Result<plan::DdlRun, SinkError> {
        let sql = change.sql.trim();
        let words: Vec<String> = sql
            .split_whitespace()
            .take(3)
            .map(str::to_lowercase)
            .collect();
        let on_database = |i: usize| {
            words
                .get(i)
                .is_some_and(|w| w == "database" || w == "schema")
        };
        if on_database(1) || on_database(2) {
            return Err(SinkError::permanent(format!(
                "statements on databases are not run on the target; apply it by hand if wanted ({sql})"
            )));
        }
        let session = if change.database.is_empty() {
            &*e.db
        } else {
            change.database.as_str()
        };
        for db in [session, &*e.db] {
            let (target, _) = self.config.target_of(db, &e.table);
            if target != db && names_database(sql, db) {
                return Err(SinkError::permanent(format!(
                    "the schema change names the database `{db}`, whose target is `{target}`: rowbus does not rewrite it; apply it to the target by hand ({sql})"
                )));
            }
        }
        let (database, _) = self.config.target_of(session, &e.table);
        let (db, table) = self.config.target_of(&e.db, &e.table);
        let expect = match change.kind.as_str() {
            "create" | "alter" | "rename" => {
                let names = change.columns.iter().map(|c| c.name.to_lowercase());
                plan::Expect::Columns(db, table, names.collect())
            }
            "drop" => plan::Expect::Absent(db, table),
            _ => plan::Expect::Nothing,
        };
        Ok(plan::DdlRun {
            sql: sql.to_string(),
            database,
            expect,
        })
    }

    /// Applies row changes: collapsed per row, split by key over the first `n` workers.
    async fn write_rows(&mut self, batch: &[Arc<ChangeEvent>], n: usize) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let plans = plan::plan(batch).map_err(|u| {
            SinkError::permanent(format!(
                "{} has no primary key: a database sink needs one to apply changes idempotently",
                u.table
            ))
        })?;
        let top = batch.iter().map(|e| plan::order_of(e)).max();
        let once = self.config.effectively_once;
        if once {
            for w in &mut self.workers {
                if w.marker.is_none() {
                    w.marker = Some(w.target.marker().await?);
                }
            }
        }
        let mut parts: Vec<Vec<TablePlan>> = (0..n).map(|_| Vec::new()).collect();
        for p in plans {
            // Partition by the source key (see `TablePlan::route`); names are mapped afterwards.
            let mut split: Vec<TablePlan> = (0..n)
                .map(|_| TablePlan {
                    db: p.db.clone(),
                    table: p.table.clone(),
                    key_columns: p.key_columns.clone(),
                    ..TablePlan::default()
                })
                .collect();
            let rows = p.rows.into_iter().zip(p.at).zip(p.route).zip(p.likely_new);
            for (((state, at), route), new) in rows {
                let w = worker_of(&p.db, &p.table, &route, n);
                let done = self.workers[w].marker.flatten();
                if once && done.is_some_and(|m| at <= m) {
                    continue; // applied before a restart
                }
                split[w].rows.push(state);
                split[w].at.push(at);
                split[w].route.push(route);
                split[w].likely_new.push(new);
            }
            for (w, s) in split.into_iter().enumerate() {
                if !s.rows.is_empty() {
                    parts[w].push(self.config.map_plan(s));
                }
            }
        }
        let marker = if once { top } else { None };
        let results = futures_util::future::join_all(
            self.workers
                .iter_mut()
                .zip(&parts)
                .filter(|(_, p)| !p.is_empty())
                .map(|(w, p)| w.target.apply(p, marker)),
        )
        .await;
        for (w, p) in self.workers.iter_mut().zip(&parts) {
            if !p.is_empty() && once {
                w.marker = Some(marker);
            }
        }
        // A retriable failure anywhere retries the batch (applying is idempotent); a permanent one
        // wins, so that the batch is split and the rejected row found.
        let mut first = None;
        for r in results {
            if let Err(e) = r {
                if first
                    .as_ref()
                    .is_none_or(|f: &SinkError| f.retriable && !e.retriable)
                {
                    first = Some(e);
                }
            }
        }
        match first {
            Some(e) => {
                if once {
                    // What committed is known only to the database: read the markers again.
                    for w in &mut self.workers {
                        w.marker = None;
                    }
                }
                Err(e)
            }
            None => Ok(()),
        }
    }
}

/// Whether `sql` names `db` as a qualifier (`db.`, `` `db`. `` or `"db".`), as a whole word.
fn names_database(sql: &str, db: &str) -> bool {
    let (text, db) = (without_strings(&sql.to_lowercase()), db.to_lowercase());
    [format!("`{db}`."), format!("\"{db}\"."), format!("{db}.")]
        .iter()
        .any(|needle| {
            text.match_indices(needle.as_str()).any(|(i, _)| {
                let before = text[..i].chars().next_back();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
            })
        })
}

/// `sql` with the contents of its '...' literals blanked out.
fn without_strings(sql: &str) -> String {
    let mut inside = false;
    sql.chars()
        .map(|c| {
            if c == '\'' {
                inside = !inside;
                return c;
            }
            if inside {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The worker of a row: FNV-1a of its table and key, fixed across releases (markers depend on it).
/// An error of the sink as a whole (connecting, its own tables), retried rather than blamed on a
/// row: a wrong password or a read-only standby after a failover is not a row's fault.
pub(crate) fn of_the_sink(e: SinkError) -> SinkError {
    SinkError::retriable(e.message)
}

fn worker_of(db: &str, table: &str, key: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [db, table, key] {
        for b in part.bytes().chain([0]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % n as u64) as usize
}

impl Sink for SqlSink {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.write_batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::names_database;

    #[test]
    fn a_database_is_named_only_as_a_whole_word_before_a_dot() {
        assert!(names_database("ALTER TABLE shop.t ADD c INT", "shop"));
        assert!(names_database("RENAME TABLE t TO `Shop`.u", "shop"));
        assert!(names_database("DROP TABLE \"shop\".t", "shop"));
        assert!(!names_database("ALTER TABLE myshop.t ADD c INT", "shop"));
        assert!(!names_database(
            "ALTER TABLE t ADD c INT DEFAULT 'v1.0'",
            "v1"
        ));
        assert!(!names_database("ALTER TABLE t ADD data INT", "a"));
    }
}
