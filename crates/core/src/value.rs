//! Column values as MySQL means them: typed, with no allocation for numbers, temporal values and
//! short strings. `write_json` is the one place that writes DESIGN.md's native JSON encoding of a
//! value (DECIMAL as a string with its scale, bytes as base64, temporal values as text, TIMESTAMP in
//! UTC); `Serialize` produces the same JSON for serde-based formats.

use base64::Engine;
use compact_str::CompactString;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use std::sync::Arc;

/// A DATETIME: calendar fields as stored, `fsp` fractional digits declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
    pub fsp: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    /// FLOAT (as its shortest decimal form) and DOUBLE.
    Double(f64),
    /// DECIMAL, exact, with its declared scale: `"12.30"`.
    Decimal(CompactString),
    Text(CompactString),
    /// Binary strings, BLOBs, GEOMETRY, VECTOR: base64 in JSON.
    Bytes(Box<[u8]>),
    Date {
        year: u16,
        month: u8,
        day: u8,
    },
    DateTime(DateTime),
    /// Seconds since the epoch, UTC.
    Timestamp {
        secs: i64,
        micros: u32,
        fsp: u8,
    },
    Time {
        negative: bool,
        hours: u16,
        minute: u8,
        second: u8,
        micros: u32,
        fsp: u8,
    },
    Year(u16),
    /// An ENUM's label.
    Label(Arc<str>),
    /// A SET's labels.
    Labels(Box<[Arc<str>]>),
    /// A JSON document.
    Json(Box<serde_json::Value>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.into())
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::Json(Box::new(v))
    }
}

impl Value {
    /// A FLOAT, as the shortest decimal text of the f32 reads: 1.1 stays 1.1 rather than
    /// 1.100000023841858.
    pub fn float(f: f32) -> Value {
        Value::Double(f.to_string().parse::<f64>().unwrap_or(f as f64))
    }

    /// A rough count of the bytes this value holds in memory, for byte-bounded queues.
    pub fn approx_size(&self) -> usize {
        std::mem::size_of::<Value>()
            + match self {
                Value::Decimal(s) | Value::Text(s) if s.is_heap_allocated() => s.len(),
                Value::Bytes(b) => b.len(),
                Value::Labels(l) => l.len() * 16,
                Value::Json(j) => json_size(j),
                _ => 0,
            }
    }

    /// Appends this value's native JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Int(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
            Value::UInt(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
            Value::Double(v) => write_double(*v, out),
            Value::Decimal(s) | Value::Text(s) => write_json_string(s, out),
            Value::Bytes(b) => {
                out.push(b'"');
                let start = out.len();
                out.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(b, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + written);
                out.push(b'"');
            }
            Value::Year(y) => out.extend_from_slice(itoa::Buffer::new().format(*y).as_bytes()),
            Value::Label(l) => write_json_string(l, out),
            Value::Labels(labels) => {
                out.push(b'[');
                for (i, l) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_string(l, out);
                }
                out.push(b']');
            }
            Value::Json(doc) => {
                let _ = serde_json::to_writer(&mut *out, doc);
            }
            temporal => {
                out.push(b'"');
                write_temporal(temporal, out);
                out.push(b'"');
            }
        }
    }
}

/// A rough count of the bytes a JSON document holds in memory.
fn json_size(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::String(s) => s.len() + 24,
        serde_json::Value::Array(a) => a.iter().map(json_size).sum::<usize>() + 24,
        serde_json::Value::Object(o) => {
            o.iter().map(|(k, v)| k.len() + json_size(v)).sum::<usize>() + 48
        }
        _ => 16,
    }
}

fn write_double(v: f64, out: &mut Vec<u8>) {
    match serde_json::Number::from_f64(v) {
        Some(n) => {
            let _ = serde_json::to_writer(&mut *out, &n);
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `v` in decimal, zero-padded to `width` digits.
pub fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v).as_bytes();
    out.extend(std::iter::repeat_n(
        b'0',
        width.saturating_sub(digits.len()),
    ));
    out.extend_from_slice(digits);
}

fn push_fraction(out: &mut Vec<u8>, micros: u32, fsp: u8) {
    if fsp == 0 {
        return;
    }
    let fsp = fsp.min(6) as u32;
    out.push(b'.');
    push_padded(
        out,
        (micros % 1_000_000) as u64 / 10u64.pow(6 - fsp),
        fsp as usize,
    );
}

fn push_date(out: &mut Vec<u8>, year: u64, month: u64, day: u64) {
    push_padded(out, year, 4);
    out.push(b'-');
    push_padded(out, month, 2);
    out.push(b'-');
    push_padded(out, day, 2);
}

fn push_clock(out: &mut Vec<u8>, hour: u64, minute: u64, second: u64) {
    push_padded(out, hour, 2);
    out.push(b':');
    push_padded(out, minute, 2);
    out.push(b':');
    push_padded(out, second, 2);
}

/// The text of a temporal value (no quotes).
fn write_temporal(value: &Value, out: &mut Vec<u8>) {
    match *value {
        Value::Date { year, month, day } => push_date(out, year as u64, month as u64, day as u64),
        Value::DateTime(d) => {
            push_date(out, d.year as u64, d.month as u64, d.day as u64);
            out.push(b'T');
            push_clock(out, d.hour as u64, d.minute as u64, d.second as u64);
            push_fraction(out, d.micros, d.fsp);
        }
        Value::Timestamp { secs, micros, fsp } => {
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u64);
            let (y, m, d) = civil_from_days(days);
            push_date(out, y.max(0) as u64, m as u64, d as u64);
            out.push(b'T');
            push_clock(out, rem / 3600, rem % 3600 / 60, rem % 60);
            push_fraction(out, micros, fsp);
            out.push(b'Z');
        }
        Value::Time {
            negative,
            hours,
            minute,
            second,
            micros,
            fsp,
        } => {
            if negative {
                out.push(b'-');
            }
            push_clock(out, hours as u64, minute as u64, second as u64);
            push_fraction(out, micros, fsp);
        }
        _ => {}
    }
}

/// The UTC calendar fields of a time in seconds since the epoch: year, month, day, hour, minute,
/// second.
pub fn utc_fields(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400) as u32;
    (
        year,
        month,
        day,
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date: the inverse of `civil_from_days`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The identity of a key: its values' native JSON, each followed by a zero byte (which JSON text
/// never holds), so that equal keys, and only they, have equal identities.
pub fn key_identity<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<u8> {
    let mut id = Vec::with_capacity(16);
    for value in values {
        value.write_json(&mut id);
        id.push(0);
    }
    id
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
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Appends a JSON string; most strings need no escaping and are copied as they are.
pub fn write_json_string(s: &str, out: &mut Vec<u8>) {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Whether a string has a byte JSON must escape (a control character, `"` or `\`), eight bytes
/// at a time: the classic "has a byte less than n" and "has a zero byte" word tricks, exact as
/// booleans.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let control = v.wrapping_sub(ONES * 0x20) & !v & HIGH != 0;
        if control || has_zero(v ^ (ONES * b'"' as u64)) || has_zero(v ^ (ONES * b'\\' as u64)) {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Int(v) => serializer.serialize_i64(*v),
            Value::UInt(v) => serializer.serialize_u64(*v),
            Value::Double(v) if v.is_finite() => serializer.serialize_f64(*v),
            Value::Double(_) => serializer.serialize_none(),
            Value::Decimal(s) | Value::Text(s) => serializer.serialize_str(s),
            Value::Label(l) => serializer.serialize_str(l),
            Value::Year(y) => serializer.serialize_u16(*y),
            Value::Bytes(b) => {
                serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Labels(labels) => {
                let mut seq = serializer.serialize_seq(Some(labels.len()))?;
                for l in labels.iter() {
                    seq.serialize_element(&**l)?;
                }
                seq.end()
            }
            Value::Json(doc) => doc.serialize(serializer),
            temporal => {
                let mut text = Vec::with_capacity(32);
                write_temporal(temporal, &mut text);
                serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 1, 31), 19_753);
        assert_eq!(days_from_civil(2038, 1, 19), 24_855);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in [-800_000, -1, 0, 59, 19_753, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
    use serde_json::json;

    fn both(v: Value) -> String {
        let mut ours = Vec::new();
        v.write_json(&mut ours);
        let theirs = serde_json::to_string(&v).unwrap();
        let ours = String::from_utf8(ours).unwrap();
        assert_eq!(ours, theirs, "write_json and Serialize agree");
        ours
    }

    #[test]
    fn native_encodings() {
        assert_eq!(both(Value::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(both(Value::Int(-5)), "-5");
        assert_eq!(both(Value::Double(1.5)), "1.5");
        assert_eq!(both(Value::Double(f64::NAN)), "null");
        assert_eq!(both(Value::Decimal("12.30".into())), r#""12.30""#);
        assert_eq!(both(Value::Bytes(vec![1, 2, 0, 0].into())), r#""AQIAAA==""#);
        assert_eq!(
            both(Value::Date {
                year: 2024,
                month: 1,
                day: 31
            }),
            r#""2024-01-31""#
        );
        let dt = DateTime {
            year: 2024,
            month: 1,
            day: 31,
            hour: 12,
            minute: 0,
            second: 0,
            micros: 123_000,
            fsp: 3,
        };
        assert_eq!(both(Value::DateTime(dt)), r#""2024-01-31T12:00:00.123""#);
        assert_eq!(
            both(Value::Timestamp {
                secs: 1_706_702_400,
                micros: 500_000,
                fsp: 1
            }),
            r#""2024-01-31T12:00:00.5Z""#
        );
        let time = Value::Time {
            negative: true,
            hours: 838,
            minute: 59,
            second: 59,
            micros: 0,
            fsp: 0,
        };
        assert_eq!(both(time), r#""-838:59:59""#);
        assert_eq!(both(Value::Year(2155)), "2155");
        assert_eq!(
            both(Value::Labels(vec![Arc::from("x"), Arc::from("z")].into())),
            r#"["x","z"]"#
        );
        assert_eq!(both(json!({"k": [1, "a\n"]}).into()), r#"{"k":[1,"a\n"]}"#);
        assert_eq!(
            both(Value::Text("quote \" and \\ and \u{1} 😀".into())),
            r#""quote \" and \\ and \u0001 😀""#
        );
    }

    #[test]
    fn escape_detection_is_exact() {
        for b in 0u8..=255 {
            for at in 0..10 {
                let mut bytes = vec![b'a'; 10];
                bytes[at] = b;
                let expected = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(needs_escape(&bytes), expected, "byte {b:#x} at {at}");
            }
        }
    }
}
