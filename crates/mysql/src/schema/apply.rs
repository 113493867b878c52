//! Applying a DDL statement to the schema model, the way the server applies it: charsets resolved
//! at creation (column, else table, else database, else server default), columns placed FIRST or
//! AFTER, renames done in statement order (so `RENAME TABLE a TO t, b TO a, t TO b` swaps).

use super::ddl::{AlterOp, ColumnDef, Ddl, Place, TableName};
use super::types::TypeInfo;
use super::{Column, Database, Schema, Table};
use std::sync::Arc;

/// What a statement did to one table, for the schema-change event.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub db: String,
    pub table: String,
    /// `create`, `alter`, `rename`, `drop`, `truncate`, `create_database`, `drop_database`.
    pub kind: &'static str,
    /// The table after the statement (`None` when dropped, or for database statements).
    pub after: Option<Arc<Table>>,
}

impl Schema {
    /// Applies one statement run in database `default_db`. An error means the history does not
    /// know what the statement works on (it has diverged from the server), and says what.
    pub fn apply(&mut self, ddl: &Ddl, default_db: &str) -> Result<Vec<Applied>, String> {
        let fold = self.lower_case_table_names != 0;
        let case = move |name: &str| {
            if fold {
                name.to_lowercase()
            } else {
                name.to_string()
            }
        };
        let qualify = |n: &TableName| (case(n.db.as_deref().unwrap_or(default_db)), case(&n.name));
        let mut out = Vec::new();
        match ddl {
            Ddl::CreateTable {
                name,
                columns,
                primary_key,
                charset,
                if_not_exists,
            } => {
                let (db, table) = qualify(name);
                if *if_not_exists && self.table(&db, &table).is_some() {
                    return Ok(out);
                }
                let charset = charset.clone().or_else(|| self.database_charset(&db));
                let def = Table {
                    columns: columns
                        .iter()
                        .map(|c| column(c, charset.as_deref()))
                        .collect(),
                    primary_key: primary_key.clone(),
                    charset,
                };
                out.push(self.put(db, table, "create", def));
            }
            Ddl::CreateTableLike {
                name,
                like,
                if_not_exists,
            } => {
                let (db, table) = qualify(name);
                if *if_not_exists && self.table(&db, &table).is_some() {
                    return Ok(out);
                }
                let (like_db, like_table) = qualify(like);
                let def = self
                    .table(&like_db, &like_table)
                    .ok_or_else(|| format!("`{like_db}`.`{like_table}` is not in the history"))?;
                let def = Table::clone(def);
                out.push(self.put(db, table, "create", def));
            }
            Ddl::AlterTable { name, ops } => {
                let (db, table) = qualify(name);
                let mut def = Table::clone(
                    self.table(&db, &table)
                        .ok_or_else(|| format!("`{db}`.`{table}` is not in the history"))?,
                );
                let mut target = (db.clone(), table.clone());
                let db_charset = self.database_charset(&db);
                for op in ops {
                    if let AlterOp::RenameTable(to) = op {
                        target = qualify(to);
                    } else {
                        alter(&mut def, op, db_charset.as_deref())
                            .map_err(|e| format!("`{db}`.`{table}`: {e}"))?;
                    }
                }
                if target != (db.clone(), table.clone()) {
                    self.remove(&db, &table);
                    out.push(applied(db, table, "rename", None));
                    out.push(self.put(target.0, target.1, "rename", def));
                } else {
                    out.push(self.put(db, table, "alter", def));
                }
            }
            Ddl::RenameTables(pairs) => {
                for (from, to) in pairs {
                    let (db, table) = qualify(from);
                    let def = self
                        .remove(&db, &table)
                        .ok_or_else(|| format!("`{db}`.`{table}` is not in the history"))?;
                    out.push(applied(db, table, "rename", None));
                    let (db, table) = qualify(to);
                    out.push(self.put(db, table, "rename", Table::clone(&def)));
                }
            }
            Ddl::DropTables(names) => {
                for name in names {
                    let (db, table) = qualify(name);
                    self.remove(&db, &table);
                    out.push(applied(db, table, "drop", None));
                }
            }
            Ddl::Truncate(name) => {
                let (db, table) = qualify(name);
                let after = self.table(&db, &table).cloned();
                out.push(applied(db, table, "truncate", after));
            }
            Ddl::CreateDatabase {
                name,
                charset,
                if_not_exists,
            } => {
                let name = case(name);
                if *if_not_exists && self.databases.contains_key(&name) {
                    return Ok(out);
                }
                let charset = charset.clone().or_else(|| self.server_charset.clone());
                self.databases.entry(name.clone()).or_default().charset = charset;
                out.push(applied(
                    name.clone(),
                    String::new(),
                    "create_database",
                    None,
                ));
            }
            Ddl::DropDatabase(name) => {
                let name = case(name);
                if let Some(database) = self.databases.remove(&name) {
                    for table in database.tables.into_keys() {
                        out.push(applied(name.clone(), table, "drop", None));
                    }
                }
                out.push(applied(name, String::new(), "drop_database", None));
            }
            Ddl::AlterDatabase { name, charset } => {
                let name = case(name.as_deref().unwrap_or(default_db));
                if let Some(charset) = charset {
                    self.databases.entry(name.clone()).or_default().charset = Some(charset.clone());
                    out.push(applied(name, String::new(), "alter_database", None));
                }
            }
        }
        out.retain(|a| Schema::is_tracked_database(&a.db));
        Ok(out)
    }

    fn database_charset(&self, db: &str) -> Option<String> {
        self.databases
            .get(db)
            .and_then(|d| d.charset.clone())
            .or_else(|| self.server_charset.clone())
    }

    fn put(&mut self, db: String, table: String, kind: &'static str, def: Table) -> Applied {
        let def = Arc::new(def);
        if Schema::is_tracked_database(&db) {
            let database = self
                .databases
                .entry(db.clone())
                .or_insert_with(|| Database {
                    charset: None,
                    tables: Default::default(),
                });
            database.tables.insert(table.clone(), def.clone());
        }
        applied(db, table, kind, Some(def))
    }

    fn remove(&mut self, db: &str, table: &str) -> Option<Arc<Table>> {
        self.databases.get_mut(db)?.tables.remove(table)
    }
}

fn applied(db: String, table: String, kind: &'static str, after: Option<Arc<Table>>) -> Applied {
    Applied {
        db,
        table,
        kind,
        after,
    }
}

/// A column definition with its charset resolved against the table's default.
fn column(def: &ColumnDef, table_charset: Option<&str>) -> Column {
    let info = TypeInfo::parse(&def.sql_type);
    let national = matches!(info.base.as_str(), "national" | "nchar" | "nvarchar");
    let charset = if info.is_bytes() {
        Some("binary".to_string())
    } else if info.is_character() {
        let implied = if national {
            Some("utf8mb3")
        } else {
            table_charset
        };
        def.charset.clone().or(implied.map(str::to_string))
    } else {
        None
    };
    Column {
        name: def.name.clone(),
        sql_type: def.sql_type.clone(),
        charset,
    }
}

fn position(def: &Table, place: &Place) -> Result<usize, String> {
    match place {
        Place::Last => Ok(def.columns.len()),
        Place::First => Ok(0),
        Place::After(name) => def
            .column_index(name)
            .map(|i| i + 1)
            .ok_or_else(|| format!("no column `{name}` to place after")),
    }
}

/// A renamed column keeps its place in the primary key.
fn rename_in_key(def: &mut Table, from: &str, to: &str) {
    for key in def.primary_key.iter_mut() {
        if key.eq_ignore_ascii_case(from) {
            *key = to.to_string();
        }
    }
}

/// Applies one clause; `db_charset` is what `CHARACTER SET DEFAULT` means.
fn alter(def: &mut Table, op: &AlterOp, db_charset: Option<&str>) -> Result<(), String> {
    let missing = |name: &str| format!("no column `{name}`");
    match op {
        AlterOp::AddColumn(c, place) => {
            if def.column_index(&c.name).is_some() {
                // ADD COLUMN IF NOT EXISTS of a present column; a plain ADD would have failed.
                return Ok(());
            }
            let at = position(def, place)?;
            let column = column(c, def.charset.as_deref());
            def.columns.insert(at, column);
        }
        AlterOp::DropColumn(name) => {
            let Some(i) = def.column_index(name) else {
                // DROP COLUMN IF EXISTS; a plain DROP of a missing column would have failed.
                return Ok(());
            };
            def.columns.remove(i);
            def.primary_key.retain(|k| !k.eq_ignore_ascii_case(name));
        }
        AlterOp::ChangeColumn {
            old,
            column: c,
            place,
        } => {
            let i = def.column_index(old).ok_or_else(|| missing(old))?;
            // The new definition replaces the old one whole; its charset defaults to the table's.
            let new = column(c, def.charset.as_deref());
            def.columns.remove(i);
            let at = match place {
                Place::Last => i,
                other => position(def, other)?,
            };
            def.columns.insert(at, new);
            rename_in_key(def, old, &c.name);
        }
        AlterOp::RenameColumn { from, to } => {
            let i = def.column_index(from).ok_or_else(|| missing(from))?;
            def.columns[i].name = to.clone();
            rename_in_key(def, from, to);
        }
        AlterOp::AddPrimaryKey(columns) => def.primary_key = columns.clone(),
        AlterOp::DropPrimaryKey => def.primary_key.clear(),
        AlterOp::ConvertCharset(charset) => {
            let charset = &resolve_default(charset, db_charset);
            for c in def.columns.iter_mut() {
                if TypeInfo::parse(&c.sql_type).is_character() {
                    c.charset = Some(charset.clone());
                }
            }
            def.charset = Some(charset.clone());
        }
        AlterOp::DefaultCharset(charset) => {
            def.charset = Some(resolve_default(charset, db_charset));
        }
        AlterOp::RenameTable(_) => {}
    }
    Ok(())
}

/// `CHARACTER SET DEFAULT` is the database's charset.
fn resolve_default(charset: &str, db_charset: Option<&str>) -> String {
    match (charset, db_charset) {
        ("default", Some(db)) => db.to_string(),
        _ => charset.to_string(),
    }
}
