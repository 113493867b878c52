//! Snapshot values: a `SELECT` result column (binary protocol) turned into the same `Value` the
//! binlog decoder gives for that column, so a row read by a snapshot and the same row read from the
//! binlog are equal value by value; and chunk keys turned into parameters for the next chunk.

use crate::schema::types::TypeInfo;
use base64::Engine;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::Value as Sql;
use rowbus_core::snapshot::KeyPart;
use rowbus_core::value::{days_from_civil, DateTime};
use rowbus_core::Value;
use std::sync::Arc;

/// The collation id of binary strings in result metadata.
const BINARY: u16 = 63;

/// How one result column's values become `Value`s.
#[derive(Debug, Clone, PartialEq)]
pub enum Conv {
    Int {
        unsigned: bool,
    },
    Year,
    Float,
    Double,
    Decimal,
    Date,
    DateTime {
        fsp: u8,
    },
    Timestamp {
        fsp: u8,
    },
    Time {
        fsp: u8,
    },
    Text,
    Bytes {
        pad_to: usize,
    },
    Json,
    Enum,
    Set,
    Bit,
    /// MariaDB UUID, INET6, INET4: the server already sends the text form.
    Special,
}

impl Conv {
    /// From the result column's metadata and the type the schema history records for it.
    pub fn of(column: &mysql_async::Column, sql_type: &TypeInfo) -> Conv {
        let flags = column.flags();
        let fsp = column.decimals().min(6);
        if sql_type.special().is_some() {
            return Conv::Special;
        }
        match column.column_type() {
            ColumnType::MYSQL_TYPE_TINY
            | ColumnType::MYSQL_TYPE_SHORT
            | ColumnType::MYSQL_TYPE_INT24
            | ColumnType::MYSQL_TYPE_LONG
            | ColumnType::MYSQL_TYPE_LONGLONG => Conv::Int {
                unsigned: flags.contains(ColumnFlags::UNSIGNED_FLAG),
            },
            ColumnType::MYSQL_TYPE_YEAR => Conv::Year,
            ColumnType::MYSQL_TYPE_FLOAT => Conv::Float,
            ColumnType::MYSQL_TYPE_DOUBLE => Conv::Double,
            ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => Conv::Decimal,
            ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => Conv::Date,
            ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_DATETIME2 => {
                Conv::DateTime { fsp }
            }
            ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
                Conv::Timestamp { fsp }
            }
            ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => Conv::Time { fsp },
            ColumnType::MYSQL_TYPE_JSON => Conv::Json,
            ColumnType::MYSQL_TYPE_BIT => Conv::Bit,
            ColumnType::MYSQL_TYPE_GEOMETRY => Conv::Bytes { pad_to: 0 },
            _ if flags.contains(ColumnFlags::ENUM_FLAG) || sql_type.base == "enum" => Conv::Enum,
            _ if flags.contains(ColumnFlags::SET_FLAG) || sql_type.base == "set" => Conv::Set,
            ColumnType::MYSQL_TYPE_STRING if column.character_set() == BINARY => Conv::Bytes {
                // BINARY(n) keeps its trailing zero bytes; CHAR's length is in characters.
                pad_to: column.column_length() as usize,
            },
            _ if column.character_set() == BINARY => Conv::Bytes { pad_to: 0 },
            _ => Conv::Text,
        }
    }

    /// The value the binlog decoder would give for `sql`.
    pub fn value(&self, sql: Sql) -> Value {
        match (self, sql) {
            (_, Sql::NULL) => Value::Null,
            (Conv::Int { unsigned: true }, Sql::Int(v)) => Value::UInt(v as u64),
            (Conv::Int { .. }, Sql::Int(v)) => Value::Int(v),
            (Conv::Int { .. }, Sql::UInt(v)) => Value::UInt(v),
            (Conv::Year, Sql::Int(v)) => Value::Year(v as u16),
            (Conv::Year, Sql::UInt(v)) => Value::Year(v as u16),
            (Conv::Float, Sql::Float(f)) => Value::float(f),
            (Conv::Double | Conv::Float, Sql::Double(f)) => Value::Double(f),
            // Zero dates: null, as the decoder gives them.
            (
                Conv::Date | Conv::DateTime { .. } | Conv::Timestamp { .. },
                Sql::Date(0, 0, 0, ..),
            ) => Value::Null,
            (Conv::Date, Sql::Date(year, month, day, ..)) => Value::Date { year, month, day },
            (Conv::DateTime { fsp }, Sql::Date(year, month, day, hour, minute, second, micros)) => {
                Value::DateTime(DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros,
                    fsp: *fsp,
                })
            }
            (
                Conv::Timestamp { fsp },
                Sql::Date(year, month, day, hour, minute, second, micros),
            ) => {
                let days = days_from_civil(year as i64, month as u32, day as u32);
                let secs = days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64;
                Value::Timestamp {
                    secs,
                    micros,
                    fsp: *fsp,
                }
            }
            (Conv::Time { fsp }, Sql::Time(negative, days, hours, minute, second, micros)) => {
                Value::Time {
                    negative,
                    hours: (days * 24 + hours as u32) as u16,
                    minute,
                    second,
                    micros,
                    fsp: *fsp,
                }
            }
            (Conv::Bit, Sql::Bytes(b)) => {
                Value::UInt(b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
            }
            (Conv::Bytes { pad_to }, Sql::Bytes(mut b)) => {
                if b.len() < *pad_to {
                    b.resize(*pad_to, 0);
                }
                Value::Bytes(b.into())
            }
            (Conv::Json, Sql::Bytes(b)) => match serde_json::from_slice(&b) {
                Ok(doc) => Value::Json(Box::new(doc)),
                Err(_) => Value::Text(String::from_utf8_lossy(&b).as_ref().into()),
            },
            (Conv::Enum, Sql::Bytes(b)) if b.is_empty() => Value::Text("".into()),
            (Conv::Enum, Sql::Bytes(b)) => Value::Label(Arc::from(String::from_utf8_lossy(&b))),
            (Conv::Set, Sql::Bytes(b)) if b.is_empty() => Value::Labels(Box::new([])),
            (Conv::Set, Sql::Bytes(b)) => Value::Labels(
                String::from_utf8_lossy(&b)
                    .split(',')
                    .map(Arc::from)
                    .collect(),
            ),
            (Conv::Decimal, Sql::Bytes(b)) => Value::Decimal(text(b).into()),
            (_, Sql::Bytes(b)) => Value::Text(text(b).into()),
            (_, Sql::Int(v)) => Value::Int(v),
            (_, Sql::UInt(v)) => Value::UInt(v),
            (_, Sql::Float(f)) => Value::Double(f as f64),
            (_, Sql::Double(f)) => Value::Double(f),
            (_, other) => Value::Text(other.as_sql(true).as_str().into()),
        }
    }
}

/// A text column's bytes as a string, keeping their buffer: the connection is utf8mb4, so they are
/// valid UTF-8 (anything else is converted lossily).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A key column's value as it is saved in the snapshot progress.
pub fn key_part(sql: &Sql, binary: bool) -> KeyPart {
    match sql {
        Sql::Int(v) => KeyPart::Int(*v),
        Sql::UInt(v) => KeyPart::UInt(*v),
        Sql::Bytes(b) if binary => {
            KeyPart::Bytes(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Sql::Bytes(b) => KeyPart::Text(String::from_utf8_lossy(b).into_owned()),
        Sql::Float(f) => KeyPart::Text(format!("{f:?}")),
        Sql::Double(f) => KeyPart::Text(format!("{f:?}")),
        Sql::Date(y, mo, d, h, mi, s, us) => KeyPart::Text(format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
        )),
        Sql::Time(neg, days, h, mi, s, us) => KeyPart::Text(format!(
            "{}{}:{mi:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            days * 24 + *h as u32
        )),
        Sql::NULL => KeyPart::Text(String::new()),
    }
}

/// A saved key value as a statement parameter.
pub fn key_param(part: &KeyPart) -> Sql {
    match part {
        KeyPart::Int(v) => Sql::Int(*v),
        KeyPart::UInt(v) => Sql::UInt(*v),
        KeyPart::Text(t) => Sql::Bytes(t.clone().into_bytes()),
        KeyPart::Bytes(b) => Sql::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_utc_seconds() {
        let conv = Conv::Timestamp { fsp: 3 };
        assert_eq!(
            conv.value(Sql::Date(2024, 1, 31, 12, 0, 0, 123_000)),
            Value::Timestamp {
                secs: 1_706_702_400,
                micros: 123_000,
                fsp: 3
            }
        );
        assert_eq!(conv.value(Sql::Date(0, 0, 0, 0, 0, 0, 0)), Value::Null);
    }

    #[test]
    fn key_parts_round_trip_to_parameters() {
        for (sql, binary) in [
            (Sql::Int(-3), false),
            (Sql::UInt(u64::MAX), false),
            (Sql::Bytes(b"abc".to_vec()), false),
            (Sql::Bytes(vec![0, 255, 7]), true),
        ] {
            assert_eq!(key_param(&key_part(&sql, binary)), sql);
        }
        assert_eq!(
            key_part(&Sql::Date(2024, 1, 2, 3, 4, 5, 6), false),
            KeyPart::Text("2024-01-02 03:04:05.000006".into())
        );
    }

    #[test]
    fn text_keeps_long_and_short_strings_and_replaces_invalid_bytes() {
        let long = "x".repeat(40);
        assert_eq!(
            Conv::Text.value(Sql::Bytes(long.clone().into_bytes())),
            Value::from(long.as_str())
        );
        assert_eq!(
            Conv::Text.value(Sql::Bytes(b"ab".to_vec())),
            Value::from("ab")
        );
        assert_eq!(
            Conv::Text.value(Sql::Bytes(vec![b'a', 0xff])),
            Value::from("a\u{fffd}")
        );
        assert_eq!(
            Conv::Decimal.value(Sql::Bytes(b"-1.50".to_vec())),
            Value::Decimal("-1.50".into())
        );
    }

    #[test]
    fn sets_and_enums_become_labels() {
        assert_eq!(
            Conv::Set.value(Sql::Bytes(b"x,z".to_vec())),
            Value::Labels(vec![Arc::from("x"), Arc::from("z")].into())
        );
        assert_eq!(
            Conv::Enum.value(Sql::Bytes(b"b".to_vec())),
            Value::Label(Arc::from("b"))
        );
        assert_eq!(Conv::Bit.value(Sql::Bytes(vec![1, 2])), Value::UInt(258));
    }
}
