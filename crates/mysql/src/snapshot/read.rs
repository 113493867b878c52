//! Reading a snapshot chunk from the server: which key a table is paged by (its primary key, else
//! a unique key over NOT NULL columns), the keyset `SELECT` of the next chunk, and the binlog
//! positions that bracket the read (the watermarks). On MariaDB the read runs in a transaction
//! `WITH CONSISTENT SNAPSHOT`, whose exact binlog position the server reports
//! (`binlog_snapshot_file/position`), so both watermarks are that position; elsewhere the low
//! watermark is where the stream stands and the high one the binlog's end after the read.

use super::values::{key_param, key_part, Conv};
use crate::config::MysqlSourceConfig;
use crate::connect::binlog_status;
use crate::error::SourceError;
use crate::schema::history::At;
use crate::schema::types::TypeInfo;
use crate::schema::Table;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as Sql};
use rowbus_core::event::{ChangeEvent, Row};
use rowbus_core::snapshot::{KeyPart, TableProgress};
use std::sync::Arc;

/// How one table is read.
#[derive(Debug)]
pub struct TablePlan {
    pub db: Arc<str>,
    pub table: Arc<str>,
    /// Column names as the schema history has them, in table order.
    pub columns: Arc<[Arc<str>]>,
    types: Vec<TypeInfo>,
    /// The columns chunks are ordered by (empty: no usable key; the table is read in one pass).
    pub key: Vec<usize>,
    /// Their names.
    pub key_names: Vec<Arc<str>>,
    /// The primary key, for the events' `key`.
    pub primary_key: Vec<usize>,
    pub primary_key_names: Arc<[Arc<str>]>,
    /// information_schema's estimate, for the progress report.
    pub estimated_rows: u64,
    /// The largest key when planned, for a key of one integer column (read in ranges).
    pub max_key: Option<i128>,
}

/// A chunk as read, before it meets the stream.
#[derive(Debug)]
pub struct Read {
    pub rows: Vec<Row>,
    pub last_key: Option<Vec<KeyPart>>,
    pub end_of_table: bool,
    pub low: At,
    pub high: At,
    /// Whether `low` and `high` are the server's exact position of the read.
    pub exact: bool,
}

/// What came of a read.
#[derive(Debug)]
pub enum Outcome {
    Read(Read),
    /// The table is not as the schema history has it (a DDL the stream has not reached yet: a
    /// column or the table is gone, or its definition changed during the read), with the server's
    /// position then.
    Changed {
        why: String,
        high: At,
    },
    /// The server refused the read for another reason (a wrong `--where` condition, a missing
    /// grant).
    Refused(SourceError),
}

/// Server errors that mean the table changed under the read: read it again once the stream has
/// applied the change.
const TABLE_CHANGED: [u16; 3] = [1054, 1146, 1412];

/// Key types whose SQL order is not the order of the values rowbus keeps (ENUM sorts by index,
/// BIT and FLOAT do not round-trip as text): such keys are not used for paging.
const UNPAGEABLE: [&str; 6] = ["enum", "set", "bit", "float", "double", "real"];

/// Key types read in ranges of values (`ranges`).
const RANGE_KEY_TYPES: [&str; 6] = [
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
];

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn failed(
    config: &MysqlSourceConfig,
    doing: String,
) -> impl FnOnce(mysql_async::Error) -> SourceError + '_ {
    move |e| SourceError::from_mysql(e, &config.addr(), &config.user, &doing)
}

impl TablePlan {
    /// Plans the read of `db.table`, whose columns the schema history gives.
    pub async fn new(
        conn: &mut Conn,
        config: &MysqlSourceConfig,
        db: &str,
        table: &str,
        history: &Table,
    ) -> Result<TablePlan, SourceError> {
        let columns: Arc<[Arc<str>]> = history
            .columns
            .iter()
            .map(|c| Arc::from(c.name.as_str()))
            .collect();
        let index_of = |name: &str| history.column_index(name);
        let primary_key: Vec<usize> = history
            .primary_key
            .iter()
            .filter_map(|n| index_of(n))
            .collect();
        let key: Vec<usize> = match primary_key.is_empty() {
            false => primary_key.clone(),
            true => unique_not_null_key(conn, config, db, table)
                .await?
                .iter()
                .filter_map(|n| index_of(n))
                .collect(),
        };
        let types: Vec<TypeInfo> = history
            .columns
            .iter()
            .map(|c| TypeInfo::parse(&c.sql_type))
            .collect();
        let unpageable = key
            .iter()
            .any(|&i| UNPAGEABLE.contains(&types[i].base.as_str()));
        let key = if unpageable { Vec::new() } else { key };
        let max_key = match key[..] {
            [k] if RANGE_KEY_TYPES.contains(&types[k].base.as_str()) => {
                largest_key(conn, config, db, table, &columns[k]).await?
            }
            _ => None,
        };
        let estimate: Vec<Option<u64>> = conn
            .exec(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (db, table),
            )
            .await
            .map_err(failed(config, format!("estimating the rows of {db}.{table}")))?;
        Ok(TablePlan {
            db: Arc::from(db),
            table: Arc::from(table),
            primary_key_names: primary_key.iter().map(|&i| columns[i].clone()).collect(),
            key_names: key.iter().map(|&i| columns[i].clone()).collect(),
            columns,
            types,
            key,
            primary_key,
            estimated_rows: estimate.into_iter().next().flatten().unwrap_or(0),
            max_key,
        })
    }

    /// Whether `event` is a change of this table.
    pub fn is_table_of(&self, event: &ChangeEvent) -> bool {
        *event.table == *self.table && *event.db == *self.db
    }

    /// The `SELECT` of the chunk after `after` (the first chunk when `None`), up to the key `upto`
    /// when given (a key of one column), and its parameters.
    pub fn select(
        &self,
        after: Option<&[KeyPart]>,
        upto: Option<&KeyPart>,
        condition: Option<&str>,
        limit: usize,
    ) -> (String, Vec<Sql>) {
        let columns: Vec<String> = self.columns.iter().map(|c| quote(c)).collect();
        // By name: `SELECT *` leaves out invisible columns, which the binlog and the history have.
        let mut sql = format!(
            "SELECT {} FROM {}.{}",
            columns.join(", "),
            quote(&self.db),
            quote(&self.table)
        );
        let mut filters = Vec::new();
        let mut params = Vec::new();
        if let Some(after) = after.filter(|a| a.len() == self.key.len() && !a.is_empty()) {
            let mut alternatives = Vec::new();
            for i in 0..self.key.len() {
                let mut terms = Vec::new();
                for (j, part) in after.iter().enumerate().take(i + 1) {
                    let op = if j == i { ">" } else { "=" };
                    terms.push(format!(
                        "{} {op} {}",
                        quote(&self.columns[self.key[j]]),
                        self.placeholder(j)
                    ));
                    params.push(key_param(part));
                }
                alternatives.push(format!("({})", terms.join(" AND ")));
            }
            filters.push(format!("({})", alternatives.join(" OR ")));
        }
        if let (Some(upto), [k]) = (upto, &self.key[..]) {
            filters.push(format!("{} <= ?", quote(&self.columns[*k])));
            params.push(key_param(upto));
        }
        if let Some(condition) = condition {
            // On its own line: a trailing `-- comment` must not swallow the rest.
            filters.push(format!("({condition}\n)"));
        }
        if !filters.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&filters.join(" AND "));
        }
        if !self.key.is_empty() {
            let order: Vec<String> = self.key.iter().map(|&i| quote(&self.columns[i])).collect();
            sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", order.join(", ")));
        }
        (sql, params)
    }

    /// A key parameter; DECIMAL compared as DECIMAL, not as a double.
    fn placeholder(&self, key_index: usize) -> &'static str {
        match self.types[self.key[key_index]].base.as_str() {
            "decimal" | "numeric" | "dec" | "fixed" => "CAST(? AS DECIMAL(65,30))",
            _ => "?",
        }
    }

    /// Reads the chunk after `progress.after`, up to the key `upto` when given: a chunk that
    /// stops short of `limit` rows then covers the range to `upto`. `low`: the low watermark where
    /// the server has no exact snapshot position (changes the stream delivered since are known).
    pub async fn read(
        &self,
        conn: &mut Conn,
        config: &MysqlSourceConfig,
        progress: &TableProgress,
        upto: Option<&KeyPart>,
        limit: usize,
        low: &At,
    ) -> Result<Outcome, SourceError> {
        let name = format!("{}.{}", self.db, self.table);
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(failed(
                config,
                format!("starting the snapshot read of {name}"),
            ))?;
        let exact = snapshot_position(conn, config).await?;
        let (sql, params) = self.select(
            progress.after.as_deref(),
            upto,
            progress.condition.as_deref(),
            limit,
        );
        let read = self.fetch(conn, &sql, params).await;
        conn.query_drop("COMMIT").await.map_err(failed(
            config,
            format!("ending the snapshot read of {name}"),
        ))?;
        let high = match &exact {
            Some(at) => at.clone(),
            None => current_position(conn, config).await?,
        };
        let doing = || format!("reading a snapshot chunk of {name}");
        let (rows, last_key) = match read {
            Ok(read) => read,
            // An unknown column in a request's own condition is the request's error.
            Err(mysql_async::Error::Server(e))
                if TABLE_CHANGED.contains(&e.code)
                    && !(e.code == 1054 && progress.condition.is_some()) =>
            {
                return Ok(Outcome::Changed {
                    why: e.message,
                    high,
                })
            }
            Err(e @ mysql_async::Error::Server(_)) => {
                return Ok(Outcome::Refused(failed(config, doing())(e)))
            }
            Err(e) => return Err(failed(config, doing())(e)),
        };
        let short = rows.len() < limit;
        let (last_key, end_of_table) = chunk_end(upto, short, last_key, self.key.is_empty());
        Ok(Outcome::Read(Read {
            rows,
            last_key,
            end_of_table,
            exact: exact.is_some(),
            low: exact.unwrap_or_else(|| low.clone()),
            high,
        }))
    }

    /// Runs the chunk's `SELECT`: its rows and the last row's key.
    async fn fetch(
        &self,
        conn: &mut Conn,
        sql: &str,
        params: Vec<Sql>,
    ) -> Result<(Vec<Row>, Option<Vec<KeyPart>>), mysql_async::Error> {
        let mut result = conn.exec_iter(sql, params).await?;
        let columns = result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
        let convs: Vec<Conv> = columns
            .iter()
            .zip(&self.types)
            .map(|(c, t)| Conv::of(c, t))
            .collect();
        let binary: Vec<bool> = self
            .key
            .iter()
            .map(|&i| matches!(convs[i], Conv::Bytes { .. }))
            .collect();
        let convert = |values: Vec<Sql>| Row {
            columns: self.columns.clone(),
            values: values
                .into_iter()
                .zip(&convs)
                .map(|(v, c)| c.value(v))
                .collect(),
        };
        let mut rows = Vec::new();
        // Each row is converted once the next arrives: the last one gives the key to go on from.
        let mut last = None;
        result
            .for_each(|row| {
                if let Some(previous) = last.replace(row.unwrap()) {
                    rows.push(convert(previous));
                }
            })
            .await?;
        let last_key = last.map(|values: Vec<Sql>| {
            let key: Vec<KeyPart> = (self.key.iter().zip(&binary))
                .map(|(&i, &b)| key_part(&values[i], b))
                .collect();
            rows.push(convert(values));
            key
        });
        Ok((rows, last_key.filter(|k| !k.is_empty())))
    }
}

/// Where a chunk leaves the table: the key the next chunk starts after, and whether the table
/// is done. A range that came back `short` of the row limit covered everything up to `upto`; one
/// that reached the limit ends at its last row; an open-ended read that came back short (or a
/// table without a key, read in one pass) reached the end of the table.
fn chunk_end(
    upto: Option<&KeyPart>,
    short: bool,
    last_row_key: Option<Vec<KeyPart>>,
    keyless: bool,
) -> (Option<Vec<KeyPart>>, bool) {
    match upto {
        Some(upto) if short => (Some(vec![upto.clone()]), false),
        Some(_) => (last_row_key, false),
        None => (last_row_key, keyless || short),
    }
}

/// The columns of the first unique key whose columns are all NOT NULL, if any.
async fn unique_not_null_key(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
    db: &str,
    table: &str,
) -> Result<Vec<String>, SourceError> {
    // A functional index part has no column name.
    let rows: Vec<(String, Option<String>, String)> = conn
        .exec(
            "SELECT INDEX_NAME, COLUMN_NAME, NULLABLE FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (db, table),
        )
        .await
        .map_err(failed(
            config,
            format!("reading the unique keys of {db}.{table}"),
        ))?;
    let mut indexes: Vec<(String, Vec<String>, bool)> = Vec::new();
    for (index, column, nullable) in rows {
        if indexes.last().is_none_or(|(name, ..)| *name != index) {
            indexes.push((index.clone(), Vec::new(), true));
        }
        if let Some(last) = indexes.last_mut() {
            last.2 &= nullable.is_empty() && column.is_some();
            last.1.extend(column);
        }
    }
    Ok(indexes
        .into_iter()
        .find(|(_, _, not_null)| *not_null)
        .map(|(_, columns, _)| columns)
        .unwrap_or_default())
}

/// The largest value of the integer key column `column`, if the table has rows.
async fn largest_key(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
    db: &str,
    table: &str,
    column: &str,
) -> Result<Option<i128>, SourceError> {
    let sql = format!(
        "SELECT CAST(MAX({}) AS CHAR) FROM {}.{}",
        quote(column),
        quote(db),
        quote(table)
    );
    let max: Option<Option<String>> = conn.query_first(sql).await.map_err(failed(
        config,
        format!("reading the largest key of {db}.{table}"),
    ))?;
    Ok(max.flatten().and_then(|m| m.parse().ok()))
}

/// MariaDB's exact binlog position of the open consistent snapshot; `None` elsewhere.
async fn snapshot_position(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
) -> Result<Option<At>, SourceError> {
    let rows: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(failed(
            config,
            "reading the snapshot's binlog position".into(),
        ))?;
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    match (get("binlog_snapshot_file"), get("binlog_snapshot_position")) {
        (Some(file), Some(pos)) if !file.is_empty() => {
            Ok(pos.parse().ok().map(|pos| At::new(&file, pos)))
        }
        _ => Ok(None),
    }
}

/// The binlog's end now.
async fn current_position(conn: &mut Conn, config: &MysqlSourceConfig) -> Result<At, SourceError> {
    let status = binlog_status(conn, config).await?;
    let row = status.into_iter().next().ok_or_else(|| {
        SourceError::halt(format!("{} reports no binlog position", config.addr()))
    })?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    Ok(At::new(&file.unwrap_or_default(), pos.unwrap_or(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(key: Vec<usize>, types: &[&str]) -> TablePlan {
        TablePlan {
            db: "shop".into(),
            table: "t".into(),
            columns: ["a", "b", "c"].iter().map(|&c| Arc::from(c)).collect(),
            types: types.iter().map(|t| TypeInfo::parse(t)).collect(),
            primary_key: key.clone(),
            primary_key_names: Arc::from(Vec::new()),
            key_names: Vec::new(),
            key,
            estimated_rows: 0,
            max_key: None,
        }
    }

    #[test]
    fn the_first_chunk_has_no_key_condition() {
        let p = plan(vec![0], &["int", "text", "text"]);
        let (sql, params) = p.select(None, None, None, 100);
        assert_eq!(
            sql,
            "SELECT `a`, `b`, `c` FROM `shop`.`t` ORDER BY `a` LIMIT 100"
        );
        assert!(params.is_empty());
    }

    #[test]
    fn later_chunks_page_by_the_whole_key() {
        let p = plan(vec![0, 1], &["decimal(10,2)", "varchar(10)", "text"]);
        let after = [KeyPart::Text("1.50".into()), KeyPart::Text("x".into())];
        let (sql, params) = p.select(Some(&after), None, Some("c <> 'z'"), 10);
        assert_eq!(
            sql,
            "SELECT `a`, `b`, `c` FROM `shop`.`t` WHERE ((`a` > CAST(? AS DECIMAL(65,30))) OR \
             (`a` = CAST(? AS DECIMAL(65,30)) AND `b` > ?)) AND (c <> 'z'\n) ORDER BY `a`, `b` LIMIT 10"
        );
        assert_eq!(params.len(), 3);
    }

    #[test]
    fn a_table_without_key_is_read_whole() {
        let p = plan(vec![], &["int", "text", "text"]);
        assert_eq!(
            p.select(None, None, None, 100).0,
            "SELECT `a`, `b`, `c` FROM `shop`.`t`"
        );
    }

    #[test]
    fn a_range_ends_at_its_upper_key() {
        let p = plan(vec![0], &["bigint", "text", "text"]);
        let (sql, params) = p.select(
            Some(&[KeyPart::Int(100)]),
            Some(&KeyPart::Int(180)),
            None,
            10,
        );
        assert_eq!(
            sql,
            "SELECT `a`, `b`, `c` FROM `shop`.`t` WHERE ((`a` > ?)) AND `a` <= ? ORDER BY `a` LIMIT 10"
        );
        assert_eq!(params, vec![Sql::Int(100), Sql::Int(180)]);
    }

    #[test]
    fn a_chunk_ends_at_its_range_its_last_row_or_the_table() {
        let last = || Some(vec![KeyPart::Int(150)]);
        let upto = KeyPart::Int(180);
        // A range short of the limit covered it all; one at the limit ends at its last row.
        assert_eq!(
            chunk_end(Some(&upto), true, last(), false),
            (Some(vec![upto.clone()]), false)
        );
        assert_eq!(
            chunk_end(Some(&upto), true, None, false),
            (Some(vec![upto.clone()]), false)
        );
        assert_eq!(
            chunk_end(Some(&upto), false, last(), false),
            (last(), false)
        );
        // Open-ended: short means the end of the table.
        assert_eq!(chunk_end(None, true, last(), false), (last(), true));
        assert_eq!(chunk_end(None, false, last(), false), (last(), false));
        assert_eq!(chunk_end(None, false, None, true), (None, true));
    }
}
