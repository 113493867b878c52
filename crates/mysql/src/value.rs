//! Converts a decoded binlog value into DESIGN.md's native JSON encoding, using the column's type,
//! metadata, signedness and charset from the table map. Values keep MySQL's meaning exactly:
//! integers stay exact, DECIMAL stays a string, temporal values keep their fractional digits, bytes
//! become base64, zero dates become null.

use crate::table::{real_type, ColumnInfo, BINARY_CHARSET};
use base64::Engine;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value;
use serde_json::Value as Json;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

pub fn to_json(value: BinlogValue<'_>, column: &ColumnInfo) -> Result<Json, ValueError> {
    match value {
        BinlogValue::Value(v) => plain_to_json(v, column),
        BinlogValue::Jsonb(doc) => serde_json::Value::try_from(doc)
            .map_err(|e| ValueError(format!("undecodable JSON document: {e}"))),
        BinlogValue::JsonDiff(_) => Err(ValueError(
            "partial JSON update (binlog_row_value_options=PARTIAL_JSON) is not supported yet; \
             set binlog_row_value_options='' on the server"
                .into(),
        )),
    }
}

fn plain_to_json(value: Value, column: &ColumnInfo) -> Result<Json, ValueError> {
    use ColumnType::*;
    let fsp = || column.meta.first().copied().unwrap_or(0).min(6);
    Ok(match value {
        Value::NULL => Json::Null,
        Value::Int(i) => match real_type(column) {
            MYSQL_TYPE_ENUM => enum_label(i, column),
            MYSQL_TYPE_TIMESTAMP => timestamp(i, 0, 0),
            _ => Json::from(i),
        },
        Value::UInt(u) => Json::from(u),
        Value::Float(f) => float(f.to_string().parse::<f64>().unwrap_or(f as f64)),
        Value::Double(d) => float(d),
        Value::Date(y, m, d, h, mi, s, us) => match column.column_type {
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE if y == 0 && m == 0 && d == 0 => Json::Null,
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Json::from(format!("{y:04}-{m:02}-{d:02}")),
            _ if y == 0 && m == 0 && d == 0 => Json::Null,
            _ => Json::from(format!(
                "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}",
                fraction(us, fsp())
            )),
        },
        Value::Time(negative, days, h, m, s, us) => Json::from(format!(
            "{}{:02}:{m:02}:{s:02}{}",
            if negative { "-" } else { "" },
            days * 24 + h as u32,
            fraction(us, fsp())
        )),
        Value::Bytes(bytes) => bytes_to_json(bytes, column)?,
    })
}

fn bytes_to_json(bytes: Vec<u8>, column: &ColumnInfo) -> Result<Json, ValueError> {
    use ColumnType::*;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(match real_type(column) {
        MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => Json::from(text(&bytes)),
        MYSQL_TYPE_YEAR => match text(&bytes).parse::<u16>() {
            Ok(1900) | Err(_) => Json::from(0),
            Ok(year) => Json::from(year),
        },
        MYSQL_TYPE_TIMESTAMP2 => {
            let text = text(&bytes);
            let (secs, micros) = text.split_once('.').unwrap_or((&text, "0"));
            let secs = secs
                .parse::<i64>()
                .map_err(|_| ValueError(format!("bad TIMESTAMP {text}")))?;
            let micros = micros.parse::<u32>().unwrap_or(0);
            let fsp = column.meta.first().copied().unwrap_or(0).min(6);
            timestamp(secs, micros, fsp)
        }
        MYSQL_TYPE_BIT => Json::from(bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64)),
        MYSQL_TYPE_SET => set_labels(&bytes, column),
        MYSQL_TYPE_GEOMETRY | MYSQL_TYPE_VECTOR => base64(&bytes),
        MYSQL_TYPE_STRING if column.charset == BINARY_CHARSET => {
            base64(&pad_binary(bytes, binary_length(&column.meta)))
        }
        _ if column.charset == BINARY_CHARSET => base64(&bytes),
        _ => Json::from(decode_text(&bytes, column.charset)),
    })
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

fn base64(bytes: &[u8]) -> Json {
    Json::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `.123` style fractional seconds with exactly `fsp` digits (none for 0).
fn fraction(micros: u32, fsp: u8) -> String {
    if fsp == 0 {
        return String::new();
    }
    let digits = format!("{micros:06}");
    format!(".{}", &digits[..fsp as usize])
}

/// A TIMESTAMP as UTC text, or null for the zero timestamp.
fn timestamp(secs: i64, micros: u32, fsp: u8) -> Json {
    if secs == 0 && micros == 0 {
        return Json::Null;
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    Json::from(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        fraction(micros, fsp)
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn enum_label(index: i64, column: &ColumnInfo) -> Json {
    match &column.enum_values {
        Some(labels) if index >= 1 => labels
            .get(index as usize - 1)
            .map_or(Json::from(index), |l| Json::from(l.as_str())),
        Some(_) => Json::from(""),
        None => Json::from(index),
    }
}

fn set_labels(bytes: &[u8], column: &ColumnInfo) -> Json {
    let bits = bytes
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | *b as u64);
    match &column.set_values {
        Some(labels) => Json::Array(
            labels
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 64 && bits & (1 << i) != 0)
                .map(|(_, l)| Json::from(l.as_str()))
                .collect(),
        ),
        None => Json::from(bits),
    }
}

/// The declared byte length of a BINARY(n) column, from its STRING metadata.
fn binary_length(meta: &[u8]) -> usize {
    match meta {
        [b0, b1, ..] if (b0 & 0x30) != 0x30 => {
            *b1 as usize | ((((*b0 as usize) & 0x30) ^ 0x30) << 4)
        }
        [_, b1, ..] => *b1 as usize,
        _ => 0,
    }
}

fn pad_binary(mut bytes: Vec<u8>, length: usize) -> Vec<u8> {
    if bytes.len() < length {
        bytes.resize(length, 0);
    }
    bytes
}

/// Decodes text in the column's character set: latin1 collations byte by byte, everything else as
/// UTF-8 (utf8mb3/utf8mb4/ascii), replacing invalid sequences.
fn decode_text(bytes: &[u8], charset: u16) -> String {
    const LATIN1: [u16; 8] = [5, 8, 15, 31, 47, 48, 49, 94];
    if LATIN1.contains(&charset) {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_declared_digits() {
        assert_eq!(
            timestamp(1_706_702_400, 500_000, 1),
            Json::from("2024-01-31T12:00:00.5Z")
        );
        assert_eq!(
            timestamp(951_782_400, 0, 0),
            Json::from("2000-02-29T00:00:00Z")
        );
        assert_eq!(timestamp(0, 0, 0), Json::Null);
    }

    #[test]
    fn fractions_have_fsp_digits() {
        assert_eq!(fraction(123_456, 6), ".123456");
        assert_eq!(fraction(120_000, 3), ".120");
        assert_eq!(fraction(5, 0), "");
    }

    #[test]
    fn binary_length_from_meta() {
        // BINARY(16): real type 0xfe, length 16.
        assert_eq!(binary_length(&[0xfe, 16]), 16);
    }

    #[test]
    fn latin1_decodes_each_byte() {
        assert_eq!(decode_text(&[0x63, 0x61, 0x66, 0xe9], 8), "café");
        assert_eq!(decode_text("café".as_bytes(), 45), "café");
    }
}
