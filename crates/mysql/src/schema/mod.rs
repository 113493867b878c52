//! The schema history: the columns, types, charsets and primary key of every tracked table, as they
//! were at each binlog position. It starts from information_schema (`load`), follows every DDL
//! statement of the stream in order (`ddl` reads them, `apply` changes the model), and is kept with
//! positions in the state directory (`history`), so a row is always read with the schema it was
//! written under, even when the binlog carries no column names.

pub mod apply;
pub mod ddl;
pub mod history;
mod lex;
pub mod load;
mod sqlparse;
pub mod types;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Databases whose tables are never tracked (or delivered).
pub const SYSTEM_DATABASES: [&str; 4] =
    ["mysql", "information_schema", "performance_schema", "sys"];

/// One column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type as SQL writes it: `int(10) unsigned`, `enum('a','b')`, `varchar(20)`, `uuid`.
    #[serde(rename = "type")]
    pub sql_type: String,
    /// The character set of a character, ENUM or SET column (`binary` for byte strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
}

/// One table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<Column>,
    /// Primary-key column names, in key order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    /// The table's default character set, for columns added later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
}

impl Table {
    /// The index of a column; MySQL column names are case-insensitive.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Database {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    #[serde(default)]
    pub tables: BTreeMap<String, Arc<Table>>,
}

/// Every tracked database and table at one position.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// The server's default character set, for databases created without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_charset: Option<String>,
    #[serde(default)]
    pub databases: BTreeMap<String, Database>,
    /// The server the positions belong to (`server_id:log_bin_basename`), when known: after a
    /// failover the history starts again from the new server's information_schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The server's `lower_case_table_names`: when not 0, names are kept and looked up in lower case.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lower_case_table_names: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl Schema {
    pub fn table(&self, db: &str, table: &str) -> Option<&Arc<Table>> {
        if self.lower_case_table_names != 0 {
            let (db, table) = (db.to_lowercase(), table.to_lowercase());
            return self.databases.get(&db)?.tables.get(&table);
        }
        self.databases.get(db)?.tables.get(table)
    }

    pub fn is_tracked_database(db: &str) -> bool {
        !SYSTEM_DATABASES.iter().any(|s| s.eq_ignore_ascii_case(db))
    }
}

#[cfg(test)]
mod tests;
