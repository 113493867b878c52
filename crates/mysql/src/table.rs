//! What the decoder knows about a table from its TABLE_MAP event: names, column types and
//! metadata, signedness, charsets, ENUM/SET labels and primary-key columns, computed once per table
//! map so that decoding each row needs no further lookups.

use crate::rows::{plan_column, DecodeError, Kind};
use crate::schema::types::{collation_id, Special, TypeInfo};
use crate::schema::Table;
use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;
use std::sync::Arc;

/// The labels of an ENUM or SET column, in declaration order.
pub type Labels = Arc<[Arc<str>]>;

/// MySQL and MariaDB tables have at most 4096 columns.
const MAX_COLUMNS: usize = 4096;

/// Binary collation id: values of such columns are bytes, not text.
pub const BINARY_CHARSET: u16 = 63;

#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub column_type: ColumnType,
    pub meta: Vec<u8>,
    pub unsigned: bool,
    /// Collation id for character, ENUM and SET columns (0 when the binlog does not say).
    pub charset: u16,
    pub enum_values: Option<Labels>,
    pub set_values: Option<Labels>,
    /// Whether the charset metadata has an entry for this column: character columns, and also
    /// GEOMETRY on MariaDB and VECTOR on MySQL.
    pub charset_slot: bool,
    /// A MariaDB type the binlog logs as a plain binary string (from the schema history).
    pub special: Option<Special>,
}

#[derive(Debug)]
pub struct TableInfo {
    pub db: Arc<str>,
    pub table: Arc<str>,
    /// Names from the table map's optional metadata, else positional `@1`, `@2`, ...
    pub names: Arc<[Arc<str>]>,
    pub columns: Vec<ColumnInfo>,
    /// Indexes of the primary-key columns, in key order.
    pub primary_key: Vec<usize>,
    /// Names of the primary-key columns, in key order.
    pub key_names: Arc<[Arc<str>]>,
    /// The table map itself, which the row parser needs.
    pub map: TableMapEvent<'static>,
    /// Whether the source's table filter selects this table.
    pub included: bool,
    /// How each column's values are laid out, or why a column cannot be decoded.
    pub plan: Result<Vec<Kind>, DecodeError>,
    /// How many JSON columns the table has (partial JSON updates number them).
    pub json_columns: usize,
    /// Where the table map and the schema history disagree (the table map wins), or why the
    /// history could not be used.
    pub mismatch: Option<String>,
}

/// Which optional metadata the table map carried.
#[derive(Debug, Default)]
struct Carried {
    names: bool,
    signedness: bool,
    primary_key: bool,
    labels: bool,
}

impl TableInfo {
    /// `mariadb`: the binlog was written by MariaDB (its charset metadata differs from MySQL's).
    /// `history`: the table as the schema history has it at this position, for what the
    /// binlog's metadata lacks (names, signedness, charsets, labels, the key, MariaDB types).
    pub fn from_map(
        map: TableMapEvent<'static>,
        included: bool,
        mariadb: bool,
        history: Option<&Table>,
    ) -> std::io::Result<Self> {
        let count = map.columns_count() as usize;
        if count > MAX_COLUMNS {
            return Err(invalid(format!(
                "{count} columns, more than a table can have"
            )));
        }
        let mut columns = Vec::with_capacity(count);
        for i in 0..count {
            let column_type = map
                .get_column_type(i)
                .map_err(|e| invalid(format!("column {}: {e}", i + 1)))?
                .ok_or_else(|| invalid(format!("column {} has no type", i + 1)))?;
            columns.push(ColumnInfo {
                column_type,
                meta: map.get_column_metadata(i).unwrap_or(&[]).to_vec(),
                unsigned: false,
                charset: 0,
                enum_values: None,
                set_values: None,
                charset_slot: false,
                special: None,
            });
            let column = columns.last_mut().expect("just pushed");
            column.charset_slot = is_character(column)
                || (mariadb && column_type == ColumnType::MYSQL_TYPE_GEOMETRY)
                || (!mariadb && column_type == ColumnType::MYSQL_TYPE_VECTOR);
        }
        let mut names: Vec<Arc<str>> = (1..=count).map(|i| Arc::from(format!("@{i}"))).collect();
        let mut primary_key = Vec::new();
        let carried = apply_optional_metadata(&map, &mut columns, &mut names, &mut primary_key)?;
        let mismatch = match history {
            Some(table) => {
                fill_from_history(table, &carried, &mut columns, &mut names, &mut primary_key)
            }
            None => (!carried.names).then(|| "not in the schema history".to_string()),
        };
        let key_names = primary_key.iter().map(|&i| names[i].clone()).collect();
        let plan = columns
            .iter()
            .map(plan_column)
            .collect::<Result<Vec<_>, _>>();
        let json_columns = columns
            .iter()
            .filter(|c| c.column_type == ColumnType::MYSQL_TYPE_JSON)
            .count();
        Ok(TableInfo {
            plan,
            json_columns,
            key_names,
            db: Arc::from(map.database_name().as_ref()),
            table: Arc::from(map.table_name().as_ref()),
            names: names.into(),
            columns,
            primary_key,
            map,
            included,
            mismatch,
        })
    }
}

/// Fills what the table map lacks from the history's table; returns a disagreement, if any.
fn fill_from_history(
    table: &Table,
    carried: &Carried,
    columns: &mut [ColumnInfo],
    names: &mut [Arc<str>],
    primary_key: &mut Vec<usize>,
) -> Option<String> {
    if table.columns.len() != columns.len() {
        return Some(format!(
            "the schema history has {} columns, the binlog {}; columns named by position",
            table.columns.len(),
            columns.len()
        ));
    }
    let mut mismatch = None;
    for (i, (column, known)) in columns.iter_mut().zip(&table.columns).enumerate() {
        if carried.names {
            if !names[i].eq_ignore_ascii_case(&known.name) && mismatch.is_none() {
                mismatch = Some(format!(
                    "column {} is `{}` in the binlog but `{}` in the schema history",
                    i + 1,
                    names[i],
                    known.name
                ));
            }
        } else {
            names[i] = Arc::from(known.name.as_str());
        }
        let info = TypeInfo::parse(&known.sql_type);
        if !carried.signedness {
            column.unsigned = info.unsigned;
        }
        if column.charset == 0 && (column.charset_slot || is_enum(column) || is_set(column)) {
            column.charset = known.charset.as_deref().map_or(0, collation_id);
        }
        if !carried.labels {
            let labels = info
                .labels
                .as_ref()
                .map(|l| labels_of(l.iter().map(|s| s.into())));
            if is_enum(column) {
                column.enum_values = labels;
            } else if is_set(column) {
                column.set_values = labels;
            }
        }
        column.special = info.special();
    }
    if !carried.primary_key {
        *primary_key = table
            .primary_key
            .iter()
            .filter_map(|k| table.column_index(k))
            .collect();
    }
    mismatch
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn is_numeric(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_FLOAT
            | MYSQL_TYPE_DOUBLE
            | MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_DECIMAL
    )
}

/// The real type of a column: ENUM and SET are logged as STRING with the real type in meta[0].
pub fn real_type(column: &ColumnInfo) -> ColumnType {
    if column.column_type == ColumnType::MYSQL_TYPE_STRING {
        match column.meta.first() {
            Some(&0xf7) => return ColumnType::MYSQL_TYPE_ENUM,
            Some(&0xf8) => return ColumnType::MYSQL_TYPE_SET,
            _ => {}
        }
    }
    column.column_type
}

fn is_enum(c: &ColumnInfo) -> bool {
    real_type(c) == ColumnType::MYSQL_TYPE_ENUM
}

fn is_set(c: &ColumnInfo) -> bool {
    real_type(c) == ColumnType::MYSQL_TYPE_SET
}

fn is_character(c: &ColumnInfo) -> bool {
    use ColumnType::*;
    !is_enum(c)
        && !is_set(c)
        && matches!(
            c.column_type,
            MYSQL_TYPE_STRING
                | MYSQL_TYPE_VAR_STRING
                | MYSQL_TYPE_VARCHAR
                | MYSQL_TYPE_BLOB
                | MYSQL_TYPE_TINY_BLOB
                | MYSQL_TYPE_MEDIUM_BLOB
                | MYSQL_TYPE_LONG_BLOB
        )
}

fn labels_of<'a>(labels: impl Iterator<Item = std::borrow::Cow<'a, str>>) -> Labels {
    labels.map(|l| Arc::from(l.as_ref())).collect()
}

/// Assigns `values` in order to the columns selected by `pick`.
fn assign<T>(
    columns: &mut [ColumnInfo],
    pick: fn(&ColumnInfo) -> bool,
    values: impl IntoIterator<Item = T>,
    mut set: impl FnMut(&mut ColumnInfo, T),
) {
    let mut values = values.into_iter();
    for column in columns.iter_mut().filter(|c| pick(c)) {
        match values.next() {
            Some(value) => set(column, value),
            None => break,
        }
    }
}

fn apply_optional_metadata(
    map: &TableMapEvent<'static>,
    columns: &mut [ColumnInfo],
    names: &mut [Arc<str>],
    primary_key: &mut Vec<usize>,
) -> std::io::Result<Carried> {
    let mut carried = Carried::default();
    let mut default_charset = None;
    let mut enum_set_default = None;
    for field in map.iter_optional_meta() {
        match field? {
            OptionalMetadataField::Signedness(bits) => {
                carried.signedness = true;
                let flags: Vec<bool> = bits.iter().by_vals().collect();
                assign(
                    columns,
                    |c| is_numeric(c.column_type),
                    flags,
                    |c, u| c.unsigned = u,
                );
            }
            OptionalMetadataField::DefaultCharset(d) => {
                default_charset = Some(d.default_charset());
                for entry in d.iter_non_default() {
                    let entry = entry?;
                    let index = entry.column_index() as usize;
                    if let Some(c) = columns.iter_mut().filter(|c| c.charset_slot).nth(index) {
                        c.charset = entry.charset();
                    }
                }
            }
            OptionalMetadataField::ColumnCharset(list) => {
                let charsets = list.iter_charsets().collect::<Result<Vec<_>, _>>()?;
                assign(
                    columns,
                    |c| c.charset_slot,
                    charsets,
                    |c, cs| c.charset = cs,
                );
            }
            OptionalMetadataField::EnumAndSetDefaultCharset(d) => {
                enum_set_default = Some(d.default_charset());
            }
            OptionalMetadataField::EnumAndSetColumnCharset(list) => {
                let charsets = list.iter_charsets().collect::<Result<Vec<_>, _>>()?;
                assign(
                    columns,
                    |c| is_enum(c) || is_set(c),
                    charsets,
                    |c, cs| c.charset = cs,
                );
            }
            OptionalMetadataField::ColumnName(list) => {
                carried.names = true;
                for (slot, name) in names.iter_mut().zip(list.iter_names()) {
                    *slot = Arc::from(name?.name().as_ref());
                }
            }
            OptionalMetadataField::EnumStrValue(list) => {
                carried.labels = true;
                let labels = list
                    .iter_values()
                    .map(|values| values.map(|v| labels_of(v.values().iter().map(|l| l.value()))))
                    .collect::<Result<Vec<_>, _>>()?;
                assign(columns, is_enum, labels, |c, l| c.enum_values = Some(l));
            }
            OptionalMetadataField::SetStrValue(list) => {
                carried.labels = true;
                let labels = list
                    .iter_values()
                    .map(|values| values.map(|v| labels_of(v.values().iter().map(|l| l.value()))))
                    .collect::<Result<Vec<_>, _>>()?;
                assign(columns, is_set, labels, |c, l| c.set_values = Some(l));
            }
            OptionalMetadataField::SimplePrimaryKey(pk) => {
                carried.primary_key = true;
                for index in pk.iter_indexes() {
                    primary_key.push(index? as usize);
                }
            }
            OptionalMetadataField::PrimaryKeyWithPrefix(pk) => {
                carried.primary_key = true;
                for key in pk.iter_keys() {
                    primary_key.push(key?.column_index() as usize);
                }
            }
            _ => {}
        }
    }
    let fill = |c: &mut ColumnInfo, default: Option<u16>, pick: fn(&ColumnInfo) -> bool| {
        if c.charset == 0 && pick(c) {
            c.charset = default.unwrap_or(0);
        }
    };
    for c in columns.iter_mut() {
        fill(c, default_charset, |c| c.charset_slot);
        fill(c, enum_set_default, |c| is_enum(c) || is_set(c));
    }
    primary_key.retain(|&i| i < columns.len());
    Ok(carried)
}
