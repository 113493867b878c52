//! The column plan: for each column of a table map, how its values are laid out in a row image and
//! how they are encoded, computed once per table map from the column type, its metadata and the
//! optional metadata (signedness, charset, ENUM/SET labels).

use super::cursor::{DecodeError, Result};
use crate::schema::types::Special;
use crate::table::{ColumnInfo, Labels, BINARY_CHARSET};
use mysql_async::consts::ColumnType;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Int {
        bytes: u8,
        unsigned: bool,
    },
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    Time,
    Time2 {
        fsp: u8,
    },
    Datetime,
    Datetime2 {
        fsp: u8,
    },
    Timestamp,
    Timestamp2 {
        fsp: u8,
    },
    Year,
    /// A length-prefixed string: text in `charset`, or bytes (base64) for the binary charset, which a
    /// fixed-length BINARY(n) pads with zero bytes to `pad_to`.
    Bytes {
        len_bytes: u8,
        charset: u16,
        pad_to: usize,
    },
    Json {
        len_bytes: u8,
    },
    /// GEOMETRY and VECTOR: stored bytes, as base64.
    Raw {
        len_bytes: u8,
    },
    Enum {
        bytes: u8,
        labels: Option<Labels>,
    },
    Set {
        bytes: u8,
        labels: Option<Labels>,
    },
    Bit {
        bytes: u8,
    },
    /// MariaDB's UUID, INET6 and INET4: a fixed binary string shown in the server's text form.
    Special {
        special: Special,
        len_bytes: u8,
    },
}

impl Kind {
    pub fn is_json(&self) -> bool {
        matches!(self, Kind::Json { .. })
    }
}

fn meta(column: &ColumnInfo, i: usize) -> Result<u8> {
    column.meta.get(i).copied().ok_or_else(|| {
        DecodeError(format!(
            "column metadata too short for type {:?}",
            column.column_type
        ))
    })
}

fn len_bytes(n: u8) -> Result<u8> {
    if (1..=4).contains(&n) {
        Ok(n)
    } else {
        Err(DecodeError(format!("invalid length size {n}")))
    }
}

/// Plans one column.
pub fn plan_column(column: &ColumnInfo) -> Result<Kind> {
    use ColumnType::*;
    let int = |bytes| Kind::Int {
        bytes,
        unsigned: column.unsigned,
    };
    Ok(match column.column_type {
        MYSQL_TYPE_TINY => int(1),
        MYSQL_TYPE_SHORT => int(2),
        MYSQL_TYPE_INT24 => int(3),
        MYSQL_TYPE_LONG => int(4),
        MYSQL_TYPE_LONGLONG => int(8),
        MYSQL_TYPE_FLOAT => Kind::Float,
        MYSQL_TYPE_DOUBLE => Kind::Double,
        MYSQL_TYPE_NEWDECIMAL => Kind::Decimal {
            precision: meta(column, 0)?,
            scale: meta(column, 1)?,
        },
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Kind::Date,
        MYSQL_TYPE_TIME => Kind::Time,
        MYSQL_TYPE_TIME2 => Kind::Time2 {
            fsp: meta(column, 0)?.min(6),
        },
        MYSQL_TYPE_DATETIME => Kind::Datetime,
        MYSQL_TYPE_DATETIME2 => Kind::Datetime2 {
            fsp: meta(column, 0)?.min(6),
        },
        MYSQL_TYPE_TIMESTAMP => Kind::Timestamp,
        MYSQL_TYPE_TIMESTAMP2 => Kind::Timestamp2 {
            fsp: meta(column, 0)?.min(6),
        },
        MYSQL_TYPE_YEAR => Kind::Year,
        MYSQL_TYPE_BIT => {
            let bytes = meta(column, 1)? as usize + usize::from(meta(column, 0)? > 0);
            Kind::Bit {
                bytes: bytes.clamp(1, 8) as u8,
            }
        }
        MYSQL_TYPE_ENUM => Kind::Enum {
            bytes: meta(column, 1)?.clamp(1, 2),
            labels: column.enum_values.clone(),
        },
        MYSQL_TYPE_SET => Kind::Set {
            bytes: meta(column, 1)?.clamp(1, 8),
            labels: column.set_values.clone(),
        },
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => {
            let max = meta(column, 0)? as usize | (meta(column, 1)? as usize) << 8;
            Kind::Bytes {
                len_bytes: if max < 256 { 1 } else { 2 },
                charset: column.charset,
                pad_to: 0,
            }
        }
        MYSQL_TYPE_STRING => string_kind(column)?,
        MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB => {
            Kind::Bytes {
                len_bytes: len_bytes(meta(column, 0)?)?,
                charset: column.charset,
                pad_to: 0,
            }
        }
        MYSQL_TYPE_JSON => Kind::Json {
            len_bytes: len_bytes(meta(column, 0)?)?,
        },
        MYSQL_TYPE_GEOMETRY | MYSQL_TYPE_VECTOR => Kind::Raw {
            len_bytes: len_bytes(meta(column, 0)?)?,
        },
        other => {
            return Err(DecodeError(format!(
                "unsupported column type {other:?} in a rows event"
            )))
        }
    })
}

/// STRING carries the real type (CHAR, BINARY, ENUM, SET) and the length in its two metadata bytes.
fn string_kind(column: &ColumnInfo) -> Result<Kind> {
    let (b0, b1) = (meta(column, 0)?, meta(column, 1)?);
    let (real, length) = if b0 & 0x30 != 0x30 {
        (
            b0 | 0x30,
            b1 as usize | ((((b0 & 0x30) ^ 0x30) as usize) << 4),
        )
    } else {
        (b0, b1 as usize)
    };
    Ok(match real {
        0xf7 => Kind::Enum {
            bytes: b1.clamp(1, 2),
            labels: column.enum_values.clone(),
        },
        0xf8 => Kind::Set {
            bytes: b1.clamp(1, 8),
            labels: column.set_values.clone(),
        },
        _ if column
            .special
            .is_some_and(|s| super::special::size(s) == length) =>
        {
            Kind::Special {
                special: column.special.expect("checked"),
                len_bytes: 1,
            }
        }
        _ => Kind::Bytes {
            len_bytes: if length < 256 { 1 } else { 2 },
            charset: column.charset,
            pad_to: if column.charset == BINARY_CHARSET {
                length
            } else {
                0
            },
        },
    })
}
