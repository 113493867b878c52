//! Reading the schema from information_schema: at the first start (the base of the history), and
//! for `on_unknown_ddl = "refresh"`. The server's current schema is only right for the current
//! binlog position, so the base is taken between two reads of that position that agree.

use super::ddl::charset_of_collation;
use super::history::At;
use super::{Schema, Table};
use crate::config::MysqlSourceConfig;
use crate::connect::query;
use crate::error::SourceError;
use mysql_async::Conn;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Tables of these databases only; `None` reads every tracked database.
pub type Only<'a> = Option<(&'a str, &'a [String])>;

/// The schema of every tracked database, and the binlog position it is valid at.
pub async fn read_consistent(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
) -> Result<(Schema, At), SourceError> {
    let mut attempt = 0;
    loop {
        let before = current_position(conn, config).await?;
        let schema = read(conn, config, None).await?;
        let after = current_position(conn, config).await?;
        attempt += 1;
        if before == after || attempt == 5 {
            if before != after {
                tracing::warn!(source = %config.name, from = ?before, to = ?after, "the binlog moved while information_schema was read; a DDL in that window would be misread");
            }
            return Ok((schema, after));
        }
    }
}

async fn current_position(conn: &mut Conn, config: &MysqlSourceConfig) -> Result<At, SourceError> {
    let rows = crate::connect::binlog_status(conn, config).await?;
    let row = rows.into_iter().next().ok_or_else(|| {
        SourceError::halt(format!(
            "{} reports no binlog position (SHOW MASTER STATUS is empty)",
            config.addr()
        ))
    })?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    Ok(At::new(&file.unwrap_or_default(), pos.unwrap_or(4)))
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Which server this is, for telling whether history positions are its own.
pub async fn server_identity(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
) -> Result<String, SourceError> {
    let sql = "SELECT @@server_id, @@log_bin_basename";
    let rows: Vec<(Option<u64>, Option<String>)> = query(conn, config, sql).await?;
    let (id, basename) = rows.into_iter().next().unwrap_or_default();
    Ok(format!(
        "{}:{}",
        id.unwrap_or(0),
        basename.unwrap_or_default()
    ))
}

/// Reads databases, tables, columns and primary keys.
pub async fn read(
    conn: &mut Conn,
    config: &MysqlSourceConfig,
    only: Only<'_>,
) -> Result<Schema, SourceError> {
    let system = super::SYSTEM_DATABASES.map(quote).join(",");
    let filter = |db_column: &str, with_tables: bool| match only {
        None => format!("{db_column} NOT IN ({system})"),
        Some((db, tables)) if with_tables && !tables.is_empty() => {
            let names: Vec<String> = tables.iter().map(|t| quote(t)).collect();
            format!(
                "{db_column} = {} AND TABLE_NAME IN ({})",
                quote(db),
                names.join(",")
            )
        }
        Some((db, _)) => format!("{db_column} = {}", quote(db)),
    };
    let mut schema = Schema {
        server: Some(server_identity(conn, config).await?),
        ..Schema::default()
    };
    let sql = "SELECT @@character_set_server, @@lower_case_table_names";
    let server: Vec<(Option<String>, Option<u8>)> = query(conn, config, sql).await?;
    if let Some((charset, lower)) = server.into_iter().next() {
        schema.server_charset = charset;
        schema.lower_case_table_names = lower.unwrap_or(0);
    }
    let fold = schema.lower_case_table_names != 0;
    let case = |name: String| if fold { name.to_lowercase() } else { name };
    let sql = format!(
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE {}",
        filter("SCHEMA_NAME", false)
    );
    let filter = filter("TABLE_SCHEMA", true);
    let dbs: Vec<(String, Option<String>)> = query(conn, config, &sql).await?;
    for (db, charset) in dbs {
        schema.databases.entry(case(db)).or_default().charset = charset;
    }
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES \
         WHERE TABLE_TYPE = 'BASE TABLE' AND {filter}"
    );
    let tables: Vec<(String, String, Option<String>)> = query(conn, config, &sql).await?;
    let mut defs: BTreeMap<(String, String), Table> = tables
        .into_iter()
        .map(|(db, table, collation)| {
            let def = Table {
                charset: collation.map(|c| charset_of_collation(&c)),
                ..Table::default()
            };
            ((db, table), def)
        })
        .collect();
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME \
         FROM information_schema.COLUMNS WHERE {filter} \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    );
    type ColumnRow = (String, String, String, String, Option<String>);
    let columns: Vec<ColumnRow> = query(conn, config, &sql).await?;
    for (db, table, name, sql_type, charset) in columns {
        if let Some(def) = defs.get_mut(&(db, table)) {
            let info = super::types::TypeInfo::parse(&sql_type);
            let charset = if info.is_bytes() {
                Some("binary".to_string())
            } else {
                charset
            };
            def.columns.push(super::Column {
                name,
                sql_type,
                charset,
            });
        }
    }
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
         WHERE CONSTRAINT_NAME = 'PRIMARY' AND {filter} \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    );
    let keys: Vec<(String, String, String)> = query(conn, config, &sql).await?;
    for (db, table, column) in keys {
        if let Some(def) = defs.get_mut(&(db, table)) {
            def.primary_key.push(column);
        }
    }
    for ((db, table), def) in defs {
        let database = schema.databases.entry(case(db)).or_default();
        database.tables.insert(case(table), Arc::new(def));
    }
    Ok(schema)
}
