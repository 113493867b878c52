//! Creating a missing target table (`create_tables = true`) from the source table's definition,
//! read from the source server's information_schema: MySQL targets get the source's column types,
//! PostgreSQL targets the mapping of the README's table. Column renames and exclusions apply.

use super::{Dialect, SqlSinkConfig};
use mysql_async::prelude::Queryable;
use rowbus_core::sink::SinkError;

/// Where the source server is, for reading table definitions.
#[derive(Debug, Clone)]
pub struct SourceServer {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<rowbus_core::secret::Secret>,
}

/// A source column: name, `COLUMN_TYPE`, nullable, character set and collation.
type SourceColumn = (String, String, String, Option<String>, Option<String>);

async fn source_definition(
    source: &SourceServer,
    db: &str,
    table: &str,
) -> Result<(Vec<SourceColumn>, Vec<String>), SinkError> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(source.host.clone())
        .tcp_port(source.port)
        .user(Some(source.user.clone()))
        .pass(source.password.as_ref().map(|p| p.expose().to_string()));
    let failed = |e: mysql_async::Error| {
        SinkError::retriable(format!(
            "reading the definition of {db}.{table} from the source {}:{}: {e}",
            source.host, source.port
        ))
    };
    let mut conn = mysql_async::Conn::new(opts).await.map_err(failed)?;
    let columns: Vec<SourceColumn> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(failed)?;
    let key: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(failed)?;
    let _ = conn.disconnect().await;
    if columns.is_empty() {
        return Err(SinkError::permanent(format!(
            "cannot create the target of {db}.{table}: the source has no such table now"
        )));
    }
    Ok((columns, key))
}

/// The PostgreSQL type for a MySQL `COLUMN_TYPE` (the README's mapping).
pub fn pg_type(column_type: &str) -> String {
    let t = column_type.to_ascii_lowercase();
    let unsigned = t.contains("unsigned");
    let base: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let args = t
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(a, _)| a.to_string());
    let precision = args.clone().unwrap_or_default();
    match base.as_str() {
        "tinyint" | "smallint" => if unsigned && base == "smallint" {
            "integer"
        } else {
            "smallint"
        }
        .into(),
        "mediumint" | "int" | "integer" => if unsigned { "bigint" } else { "integer" }.into(),
        "bigint" => if unsigned { "numeric(20)" } else { "bigint" }.into(),
        "decimal" | "numeric" => format!(
            "numeric({})",
            if precision.is_empty() {
                "10,0".into()
            } else {
                precision
            }
        ),
        "float" => "real".into(),
        "double" | "real" => "double precision".into(),
        "char" => format!("char({})", args.unwrap_or_else(|| "1".into())),
        "varchar" => format!("varchar({})", args.unwrap_or_else(|| "255".into())),
        "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => "text".into(),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "geometry"
        | "point" | "linestring" | "polygon" | "vector" => "bytea".into(),
        "date" => "date".into(),
        "datetime" => format!("timestamp({})", args.unwrap_or_else(|| "0".into())),
        "timestamp" => format!("timestamptz({})", args.unwrap_or_else(|| "0".into())),
        "time" => "interval".into(),
        "year" => "smallint".into(),
        "bit" => match args.and_then(|a| a.parse::<u32>().ok()) {
            Some(64) => "numeric(20)".into(),
            _ => "bigint".into(),
        },
        "json" => "jsonb".into(),
        "uuid" => "uuid".into(),
        "inet6" | "inet4" => "inet".into(),
        _ => "text".into(),
    }
}

/// Creates the target table of source `db.table` as `schema.table` (target names) if missing.
pub async fn create_statements(
    config: &SqlSinkConfig,
    source: &SourceServer,
    db: &str,
    table: &str,
    schema: &str,
    target: &str,
) -> Result<Vec<String>, SinkError> {
    let (columns, key) = source_definition(source, db, table).await?;
    let quote = |n: &str| match config.dialect {
        Dialect::Postgres => format!("\"{}\"", n.replace('"', "\"\"")),
        Dialect::Mysql => format!("`{}`", n.replace('`', "``")),
    };
    let mut defs = Vec::new();
    for (name, column_type, nullable, charset, collation) in &columns {
        // Key columns are renamed, never excluded (as rows are mapped).
        let target_name = match key.contains(name) {
            true => config.renamed(db, table, name),
            false => match config.column_of(db, table, name) {
                Some(n) => n,
                None => continue,
            },
        };
        let ty = match (config.dialect, charset, collation) {
            (Dialect::Postgres, _, _) => pg_type(column_type),
            (Dialect::Mysql, Some(cs), Some(co)) => {
                format!("{column_type} CHARACTER SET {cs} COLLATE {co}")
            }
            (Dialect::Mysql, _, _) => column_type.clone(),
        };
        let null = if nullable == "NO" { " NOT NULL" } else { "" };
        defs.push(format!("{} {ty}{null}", quote(&target_name)));
    }
    if !key.is_empty() {
        let names: Vec<String> = key
            .iter()
            .map(|k| quote(&config.renamed(db, table, k)))
            .collect();
        defs.push(format!("PRIMARY KEY ({})", names.join(", ")));
    }
    Ok(match config.dialect {
        Dialect::Postgres => vec![
            format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)),
            format!(
                "CREATE TABLE IF NOT EXISTS {}.{} ({})",
                quote(schema),
                quote(target),
                defs.join(", ")
            ),
        ],
        Dialect::Mysql => vec![
            format!(
                "CREATE DATABASE IF NOT EXISTS {} DEFAULT CHARACTER SET utf8mb4",
                quote(schema)
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {}.{} ({})",
                quote(schema),
                quote(target),
                defs.join(", ")
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::pg_type;

    #[test]
    fn maps_mysql_types_as_documented() {
        for (mysql, pg) in [
            ("int(10) unsigned", "bigint"),
            ("bigint(20) unsigned", "numeric(20)"),
            ("decimal(65,30)", "numeric(65,30)"),
            ("datetime(3)", "timestamp(3)"),
            ("timestamp(6)", "timestamptz(6)"),
            ("enum('a','b')", "text"),
            ("bit(64)", "numeric(20)"),
            ("bit(1)", "bigint"),
            ("varchar(300)", "varchar(300)"),
            ("longblob", "bytea"),
            ("json", "jsonb"),
            ("time(2)", "interval"),
        ] {
            assert_eq!(pg_type(mysql), pg, "{mysql}");
        }
    }
}
