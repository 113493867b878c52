//! The PostgreSQL target: one connection per worker (tokio-postgres), a transaction per batch,
//! `INSERT ... SELECT ... FROM unnest(...) ON CONFLICT DO UPDATE` and `DELETE ... WHERE (key) IN
//! (SELECT ... FROM unnest(...))`: every column's values go as one text array parameter, each cast
//! to the column's type as the target catalog declares it, so a batch of any size is one short
//! statement. Rows the target most likely lacks go by `COPY` (`bulk`); if one of them is there
//! after all, the transaction is rolled back and applied again with that table's rows upserted.

use super::bulk::{self, Pauses};
use super::params::{pg_text, write_pg_text};
use super::plan::TablePlan;
use super::{of_the_sink, Marker, SqlSinkConfig, Target};
use rowbus_core::sink::{BoxFuture, SinkError};
use rowbus_core::Row;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Transaction};

/// A statement carries at most this many rows (one array parameter per column).
const MAX_ROWS: usize = 10_000;

/// A `COPY` sends its rows in messages of about this many bytes.
const COPY_CHUNK: usize = 1 << 20;

/// Target columns and their declared types, by lower-cased name.
#[derive(Default)]
struct Columns {
    types: HashMap<String, (String, String)>,
}

pub struct PgTarget {
    config: SqlSinkConfig,
    worker: usize,
    client: Option<Client>,
    columns: HashMap<(String, String), Arc<Columns>>,
    /// Tables upserted without trying `COPY` for a while.
    copy_paused: Pauses,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PgTarget {
    pub fn new(config: SqlSinkConfig, worker: usize) -> Self {
        PgTarget {
            config,
            worker,
            client: None,
            columns: HashMap::new(),
            copy_paused: Pauses::default(),
        }
    }

    fn classify(&mut self, e: tokio_postgres::Error, doing: &str) -> SinkError {
        use tokio_postgres::error::SqlState;
        let message = format!(
            "PostgreSQL at {}, {doing}: {}",
            self.config.addr(),
            e.as_db_error()
                .map(|d| format!("{} ({})", d.message(), d.code().code()))
                .unwrap_or_else(|| e.to_string())
        );
        let retriable = match e.code() {
            None => true, // connection and I/O errors
            Some(code) => {
                let c = code.code();
                c.starts_with("08")
                    || c.starts_with("53")
                    || c.starts_with("57")
                    || *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::LOCK_NOT_AVAILABLE
            }
        };
        if retriable {
            self.client = None;
            SinkError::retriable(message)
        } else {
            // The catalog may have changed (a missing table created since): look again next time.
            self.columns.clear();
            SinkError::permanent(message)
        }
    }

    async fn connect(&mut self) -> Result<(), SinkError> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        let mut pg = tokio_postgres::Config::new();
        pg.host(&self.config.host)
            .port(self.config.port)
            .user(&self.config.user)
            .dbname(&self.config.database)
            .application_name("rowbus")
            .connect_timeout(std::time::Duration::from_secs(10));
        if let Some(p) = &self.config.password {
            pg.password(p.expose());
        }
        // Connecting, and what goes with it, is retried whatever the error: it concerns the
        // sink, not a row (a wrong password or a read-only standby after a failover).
        let (client, connection) = pg
            .connect(NoTls)
            .await
            .map_err(|e| of_the_sink(self.classify(e, "connecting")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        if self.config.effectively_once {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS rowbus_applied (sink text, worker int, file_no bigint, \
                     pos bigint, row_no bigint, applied_at timestamptz DEFAULT now(), \
                     PRIMARY KEY (sink, worker))",
                )
                .await
                .map_err(|e| of_the_sink(self.classify(e, "creating rowbus_applied")))?;
        }
        self.client = Some(client);
        Ok(())
    }

    /// The target's columns and the types to cast to: the declared type without its length or
    /// precision, so that a value too long for the column is an error rather than cut by the
    /// cast (`bpchar` and `varbit` being the unbounded forms of `char(n)` and `bit(n)`).
    async fn columns(
        &mut self,
        source: (&str, &str),
        schema: &str,
        table: &str,
    ) -> Result<Arc<Columns>, SinkError> {
        let key = (schema.to_string(), table.to_string());
        if let Some(c) = self.columns.get(&key) {
            return Ok(c.clone());
        }
        match self.read_columns(schema, table).await? {
            Some(columns) => Ok(columns),
            None if self.config.create_tables => {
                // Another worker may create it at the same moment: what counts is that it exists.
                let created = self.create(source, schema, table).await;
                let columns = self.read_columns(schema, table).await?;
                if columns.is_none() {
                    created?;
                }
                columns.ok_or_else(|| {
                    SinkError::permanent(format!("created {schema}.{table}, but cannot see it"))
                })
            }
            None => Err(SinkError::permanent(format!(
                "table {}.{} does not exist in PostgreSQL at {}, database {}: create it (README: \
                 database sinks, type mapping), or set create_tables = true",
                quote(schema),
                quote(table),
                self.config.addr(),
                self.config.database
            ))),
        }
    }

    async fn create(
        &mut self,
        (db, table): (&str, &str),
        schema: &str,
        target: &str,
    ) -> Result<(), SinkError> {
        let source = self.config.source.clone().ok_or_else(|| {
            SinkError::permanent("create_tables needs the source server, which is not set")
        })?;
        let statements =
            super::create::create_statements(&self.config, &source, db, table, schema, target)
                .await?;
        let client = self.client.as_ref().expect("connected");
        for sql in &statements {
            if let Err(e) = client.batch_execute(sql).await {
                return Err(self.classify(e, "creating the target table"));
            }
        }
        tracing::info!(table = %format!("{schema}.{target}"), "created the target table from {db}.{table}");
        Ok(())
    }

    async fn read_columns(
        &mut self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Arc<Columns>>, SinkError> {
        let key = (schema.to_string(), table.to_string());
        let client = self.client.as_ref().expect("connected");
        let rows = client
            .query(
                "SELECT a.attname::text, CASE a.atttypid WHEN 'bpchar'::regtype THEN 'bpchar' WHEN 'bit'::regtype THEN 'varbit' ELSE format_type(a.atttypid, NULL) END FROM pg_attribute a \
                 JOIN pg_class c ON a.attrelid = c.oid JOIN pg_namespace n ON c.relnamespace = n.oid \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&schema, &table],
            )
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                return Err(of_the_sink(
                    self.classify(e, "reading the target's columns"),
                ))
            }
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let types = rows
            .iter()
            .map(|r| {
                let name: String = r.get(0);
                let ty: String = r.get(1);
                (name.to_lowercase(), (name, ty))
            })
            .collect();
        let columns = Arc::new(Columns { types });
        self.columns.insert(key, columns.clone());
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
            targets.push((schema, table, columns));
        }
        let names: Vec<String> = targets
            .iter()
            .map(|(schema, table, _)| format!("{}.{}", quote(schema), quote(table)))
            .collect();
        let mut copy: Vec<bool> = names.iter().map(|n| self.copy_paused.allowed(n)).collect();
        let mut client = self.client.take().expect("connected");
        // A `COPY` that meets a row already there aborts the transaction: it is run again with
        // that table upserted (and paused), which happens at most once per table.
        let result = loop {
            let attempt = self.transaction(&mut client, plans, &targets, &names, &copy, marker);
            match attempt.await {
                Err(Failed::Conflict(i)) => {
                    copy[i] = false;
                    self.copy_paused.pause(names[i].clone());
                }
                other => break other,
            }
        };
        self.client = Some(client);
        result.map_err(|f| match f {
            Failed::Db(doing, e) => self.classify(e, doing),
            Failed::MissingColumn(what) => {
                // The target may gain the column: look at its catalog again next time.
                self.columns.clear();
                SinkError::permanent(what)
            }
            Failed::Conflict(_) => unreachable!("a COPY's conflict is applied again above"),
        })
    }

    /// Applies `plans` in one transaction on `client`; `copy[i]`: the likely new rows of the
    /// i-th plan go by `COPY`.
    async fn transaction(
        &self,
        client: &mut Client,
        plans: &[TablePlan],
        targets: &[(String, String, Arc<Columns>)],
        names: &[String],
        copy: &[bool],
        marker: Option<Marker>,
    ) -> Result<(), Failed> {
        let tx = client
            .transaction()
            .await
            .map_err(db("starting a transaction"))?;
        for (i, (p, (_, _, columns))) in plans.iter().zip(targets).enumerate() {
            let name = &names[i];
            let with_name = |f: Failed| match f {
                Failed::MissingColumn(c) => Failed::MissingColumn(format!(
                    "column `{c}` of {}.{} has no column in {name}",
                    p.db, p.table
                )),
                Failed::Conflict(_) => Failed::Conflict(i),
                other => other,
            };
            if p.truncate {
                // A table the target does not have yet is empty already.
                let found = tx
                    .query_one("SELECT to_regclass($1)::text", &[&name])
                    .await
                    .map_err(db("looking for the table to truncate"))?;
                if found.get::<_, Option<String>>(0).is_some() {
                    let sql = format!("TRUNCATE TABLE {name}");
                    tx.batch_execute(&sql).await.map_err(db("truncating"))?;
                }
            }
            delete(&tx, name, p, columns).await.map_err(with_name)?;
            upsert(&tx, name, p, columns, copy[i])
                .await
                .map_err(with_name)?;
        }
        if let Some((file, pos, row)) = marker {
            tx.execute(
                "INSERT INTO rowbus_applied (sink, worker, file_no, pos, row_no) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (sink, worker) DO UPDATE SET file_no = EXCLUDED.file_no, pos = EXCLUDED.pos, \
                 row_no = EXCLUDED.row_no, applied_at = now()",
                &[&self.config.marker_key, &(self.worker as i32), &(file as i64), &(pos as i64), &(row as i64)],
            )
            .await
            .map_err(db("recording the applied position"))?;
        }
        tx.commit().await.map_err(db("committing"))
    }
}

/// Why applying failed: the database said no, the target lacks a source column, or a `COPY`
/// met a row already there (of the plan with this index; the transaction is void).
enum Failed {
    Db(&'static str, tokio_postgres::Error),
    MissingColumn(String),
    Conflict(usize),
}

fn db(doing: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Failed {
    move |e| Failed::Db(doing, e)
}

fn column<'c>(columns: &'c Columns, name: &str) -> Result<&'c (String, String), Failed> {
    columns
        .types
        .get(&name.to_lowercase())
        .ok_or_else(|| Failed::MissingColumn(name.to_string()))
}

/// `SELECT $1[i]::type1 AS c1, ...` over `unnest` of one text array per column: the statement
/// stays small whatever the number of rows, so PostgreSQL parses and plans it once per batch.
fn unnest_select(types: &[&(String, String)]) -> String {
    let arrays: Vec<String> = (1..=types.len()).map(|i| format!("${i}::text[]")).collect();
    let aliases: Vec<String> = (1..=types.len()).map(|i| format!("c{i}")).collect();
    let casts: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("c{}::{ty}", i + 1))
        .collect();
    format!(
        "SELECT {} FROM unnest({}) AS u({})",
        casts.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    )
}

/// One text array per column, of the rows' values.
fn column_arrays(rows: &[&Row], width: usize) -> Vec<Vec<Option<String>>> {
    let mut arrays: Vec<Vec<Option<String>>> =
        (0..width).map(|_| Vec::with_capacity(rows.len())).collect();
    for row in rows {
        for (array, value) in arrays.iter_mut().zip(&row.values) {
            array.push(pg_text(value));
        }
    }
    arrays
}

async fn delete(
    tx: &Transaction<'_>,
    name: &str,
    p: &TablePlan,
    columns: &Columns,
) -> Result<(), Failed> {
    let keys: Vec<&Row> = p.deletes().collect();
    if keys.is_empty() {
        return Ok(());
    }
    let key_cols: Vec<&(String, String)> = p
        .key_columns
        .iter()
        .map(|c| column(columns, c))
        .collect::<Result<_, _>>()?;
    let cols: Vec<String> = key_cols.iter().map(|(n, _)| quote(n)).collect();
    let sql = format!(
        "DELETE FROM {name} WHERE ({}) IN ({})",
        cols.join(", "),
        unnest_select(&key_cols)
    );
    for chunk in keys.chunks(MAX_ROWS) {
        execute(tx, &sql, &column_arrays(chunk, key_cols.len()))
            .await
            .map_err(db("deleting"))?;
    }
    Ok(())
}

/// Upserts the plan's rows; with `copy`, those likely new by `COPY`.
async fn upsert(
    tx: &Transaction<'_>,
    name: &str,
    p: &TablePlan,
    columns: &Columns,
    copy: bool,
) -> Result<(), Failed> {
    for group in p.upsert_groups().map_err(Failed::MissingColumn)? {
        let target: Vec<&(String, String)> = group
            .columns
            .iter()
            .map(|c| column(columns, c))
            .collect::<Result<_, _>>()?;
        let cols: Vec<String> = target.iter().map(|(n, _)| quote(n)).collect();
        let (new, rows) = match copy {
            true => group.by_newness(),
            false => (Vec::new(), group.rows.clone()),
        };
        if !new.is_empty() {
            copy_rows(tx, name, &cols, &new).await?;
        }
        upsert_rows(tx, name, p, columns, &target, &rows).await?;
    }
    Ok(())
}

/// Inserts rows by `COPY`; `Failed::Conflict` when one of them is in the table already.
async fn copy_rows(
    tx: &Transaction<'_>,
    name: &str,
    cols: &[String],
    rows: &[&Row],
) -> Result<(), Failed> {
    use futures_util::SinkExt;
    use tokio_postgres::error::SqlState;
    let sql = format!("COPY {name} ({}) FROM STDIN", cols.join(", "));
    let copied = async {
        let sink = tx.copy_in::<_, bytes::Bytes>(&sql).await?;
        futures_util::pin_mut!(sink);
        let mut text = Vec::with_capacity(COPY_CHUNK + 4096);
        for row in rows {
            bulk::line(&mut text, row.values.iter(), write_pg_text);
            if text.len() >= COPY_CHUNK {
                sink.send(std::mem::take(&mut text).into()).await?;
            }
        }
        if !text.is_empty() {
            sink.send(text.into()).await?;
        }
        sink.finish().await
    }
    .await;
    match copied {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(Failed::Conflict(0)),
        Err(e) => Err(Failed::Db("copying", e)),
    }
}

async fn upsert_rows(
    tx: &Transaction<'_>,
    name: &str,
    p: &TablePlan,
    columns: &Columns,
    target: &[&(String, String)],
    rows: &[&Row],
) -> Result<(), Failed> {
    if rows.is_empty() {
        return Ok(());
    }
    let cols: Vec<String> = target.iter().map(|(n, _)| quote(n)).collect();
    let keys: Vec<String> = p
        .key_columns
        .iter()
        .map(|k| column(columns, k).map(|(n, _)| quote(n)))
        .collect::<Result<_, _>>()?;
    let updates: Vec<String> = cols
        .iter()
        .filter(|c| !keys.contains(c))
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    let on_conflict = if updates.is_empty() {
        format!("ON CONFLICT ({}) DO NOTHING", keys.join(", "))
    } else {
        format!(
            "ON CONFLICT ({}) DO UPDATE SET {}",
            keys.join(", "),
            updates.join(", ")
        )
    };
    let sql = format!(
        "INSERT INTO {name} ({}) {} {on_conflict}",
        cols.join(", "),
        unnest_select(target)
    );
    for chunk in rows.chunks(MAX_ROWS) {
        execute(tx, &sql, &column_arrays(chunk, target.len()))
            .await
            .map_err(db("upserting"))?;
    }
    Ok(())
}

async fn execute(
    tx: &Transaction<'_>,
    sql: &str,
    arrays: &[Vec<Option<String>>],
) -> Result<u64, tokio_postgres::Error> {
    let typed: Vec<(&(dyn ToSql + Sync), Type)> = arrays
        .iter()
        .map(|a| (a as &(dyn ToSql + Sync), Type::TEXT_ARRAY))
        .collect();
    tx.execute_typed(sql, &typed).await
}

impl Target for PgTarget {
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
            let client = self.client.as_ref().expect("connected");
            let row = client
                .query_opt(
                    "SELECT file_no, pos, row_no FROM rowbus_applied WHERE sink = $1 AND worker = $2",
                    &[&self.config.marker_key, &(self.worker as i32)],
                )
                .await;
            match row {
                Ok(row) => Ok(row.map(|r| {
                    let (f, p, n): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
                    (f as u64, p as u64, n as u32)
                })),
                Err(e) => Err(of_the_sink(self.classify(e, "reading rowbus_applied"))),
            }
        })
    }
}
