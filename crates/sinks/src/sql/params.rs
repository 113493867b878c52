//! Column values as the databases take them as bound parameters. PostgreSQL: every value as text,
//! cast in the statement to the target column's type (`$1::numeric`), so that one encoding serves
//! every type mapping exactly (bytea as `\x` hex). MySQL: native protocol values, temporal values in
//! UTC (the session's time zone is set to +00:00); for `LOAD DATA`, the text of the same values.

use rowbus_core::value::{push_padded, utc_fields};
use rowbus_core::Value;

/// The text PostgreSQL parses back into the value; `None` for NULL.
pub fn pg_text(v: &Value) -> Option<String> {
    let mut out = Vec::new();
    write_pg_text(v, &mut out).then(|| into_string(out))
}

/// Appends the text PostgreSQL parses back into the value to `out`; false, with nothing
/// appended, for NULL.
pub fn write_pg_text(v: &Value, out: &mut Vec<u8>) -> bool {
    match v {
        Value::Null => return false,
        Value::Text(t) | Value::Decimal(t) => out.extend_from_slice(t.as_bytes()),
        Value::Label(l) => out.extend_from_slice(l.as_bytes()),
        Value::Labels(ls) => write_labels(ls, out),
        Value::Bytes(b) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\x");
            for byte in b.iter() {
                out.extend_from_slice(&[HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize]]);
            }
        }
        Value::Json(j) => out.extend_from_slice(j.to_string().as_bytes()),
        // Numbers and temporal values: their native JSON text without its quotes, which
        // PostgreSQL reads (ISO 8601 dates and times, `Z` for UTC, `-838:59:59` as an interval).
        other => {
            let start = out.len();
            other.write_json(out);
            if out.get(start) == Some(&b'"') {
                out.pop();
                out.remove(start);
            }
        }
    }
    true
}

fn write_labels(labels: &[std::sync::Arc<str>], out: &mut Vec<u8>) {
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(label.as_bytes());
    }
}

/// Bytes as text, any invalid UTF-8 replaced.
pub(crate) fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The MySQL protocol value.
pub fn mysql_value(v: &Value) -> mysql_async::Value {
    use mysql_async::Value as M;
    match v {
        Value::Null => M::NULL,
        Value::Int(i) => M::Int(*i),
        Value::UInt(u) => M::UInt(*u),
        Value::Double(d) => M::Double(*d),
        Value::Decimal(t) | Value::Text(t) => M::Bytes(t.as_bytes().to_vec()),
        Value::Bytes(b) => M::Bytes(b.to_vec()),
        Value::Date { year, month, day } => M::Date(*year, *month, *day, 0, 0, 0, 0),
        Value::DateTime(d) => M::Date(d.year, d.month, d.day, d.hour, d.minute, d.second, d.micros),
        Value::Timestamp { secs, micros, .. } => {
            let (y, mo, d, h, mi, s) = utc_fields(*secs);
            M::Date(
                y as u16, mo as u8, d as u8, h as u8, mi as u8, s as u8, *micros,
            )
        }
        Value::Time {
            negative,
            hours,
            minute,
            second,
            micros,
            ..
        } => M::Time(
            *negative,
            (*hours / 24) as u32,
            (*hours % 24) as u8,
            *minute,
            *second,
            *micros,
        ),
        Value::Year(y) => M::Int(*y as i64),
        Value::Label(l) => M::Bytes(l.as_bytes().to_vec()),
        Value::Labels(ls) => M::Bytes(
            ls.iter()
                .map(|l| &**l)
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes(),
        ),
        Value::Json(j) => M::Bytes(j.to_string().into_bytes()),
    }
}

/// Appends the text MySQL reads back into the value (`LOAD DATA`), the same as `mysql_value`
/// binds, to `out`; false, with nothing appended, for NULL.
pub fn write_mysql_text(v: &Value, out: &mut Vec<u8>) -> bool {
    use mysql_async::Value as M;
    use std::io::Write;
    let mut number = itoa::Buffer::new();
    match v {
        Value::Null => return false,
        Value::Int(i) => out.extend_from_slice(number.format(*i).as_bytes()),
        Value::UInt(u) => out.extend_from_slice(number.format(*u).as_bytes()),
        Value::Year(y) => out.extend_from_slice(number.format(*y).as_bytes()),
        Value::Decimal(t) | Value::Text(t) => out.extend_from_slice(t.as_bytes()),
        Value::Bytes(b) => out.extend_from_slice(b),
        Value::Label(l) => out.extend_from_slice(l.as_bytes()),
        Value::Labels(ls) => write_labels(ls, out),
        other => {
            let _ = match mysql_value(other) {
                M::NULL => return false,
                M::Bytes(b) => out.write_all(&b),
                M::Int(i) => write!(out, "{i}"),
                M::UInt(u) => write!(out, "{u}"),
                M::Float(f) => write!(out, "{f}"),
                M::Double(d) => write!(out, "{d}"),
                M::Date(y, mo, d, h, mi, s, us) => {
                    let fields = [
                        (y.into(), 4, b'-'),
                        (mo.into(), 2, b'-'),
                        (d.into(), 2, b' '),
                    ];
                    let time = [
                        (h.into(), 2, b':'),
                        (mi.into(), 2, b':'),
                        (s.into(), 2, b'.'),
                    ];
                    for (n, width, then) in fields.into_iter().chain(time) {
                        push_padded(out, n, width);
                        out.push(then);
                    }
                    push_padded(out, us.into(), 6);
                    Ok(())
                }
                M::Time(negative, days, h, mi, s, us) => {
                    let sign = if negative { "-" } else { "" };
                    let hours = days * 24 + h as u32;
                    write!(out, "{sign}{hours:02}:{mi:02}:{s:02}.{us:06}")
                }
            };
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowbus_core::value::DateTime;

    /// 2024-01-31 12:03:04.123, DATETIME(3).
    fn datetime() -> DateTime {
        DateTime {
            year: 2024,
            month: 1,
            day: 31,
            hour: 12,
            minute: 3,
            second: 4,
            micros: 123000,
            fsp: 3,
        }
    }

    fn text(v: Value) -> Option<String> {
        let mut out = b"before ".to_vec();
        let written = write_mysql_text(&v, &mut out);
        let text = String::from_utf8(out).unwrap();
        let text = text.strip_prefix("before ").expect("appended");
        written.then(|| text.to_string()).or_else(|| {
            assert_eq!(text, "", "nothing is appended for NULL");
            None
        })
    }

    #[test]
    fn pg_text_is_what_postgresql_reads() {
        assert_eq!(pg_text(&Value::Null), None);
        assert_eq!(pg_text(&Value::Int(-5)).unwrap(), "-5");
        assert_eq!(
            pg_text(&Value::Bytes(Box::new([0, 0xab, 0x7f]))).unwrap(),
            "\\x00ab7f"
        );
        let labels = Value::Labels(Box::new(["a".into(), "b".into()]));
        assert_eq!(pg_text(&labels).unwrap(), "a,b");
        let d = datetime();
        assert_eq!(
            pg_text(&Value::DateTime(d)).unwrap(),
            "2024-01-31T12:03:04.123"
        );
        let mut out = b"x".to_vec();
        assert!(!write_pg_text(&Value::Null, &mut out));
        assert!(write_pg_text(&Value::Text("t".into()), &mut out));
        assert_eq!(out, b"xt", "appended after what was there");
    }

    #[test]
    fn mysql_text_is_what_load_data_reads() {
        assert_eq!(text(Value::Null), None);
        assert_eq!(text(Value::Int(-5)).unwrap(), "-5");
        assert_eq!(text(Value::UInt(u64::MAX)).unwrap(), "18446744073709551615");
        assert_eq!(text(Value::Double(0.1)).unwrap(), "0.1");
        assert_eq!(text(Value::Year(2024)).unwrap(), "2024");
        assert_eq!(
            text(Value::Date {
                year: 2024,
                month: 2,
                day: 9
            })
            .unwrap(),
            "2024-02-09 00:00:00.000000"
        );
        let d = datetime();
        assert_eq!(
            text(Value::DateTime(d)).unwrap(),
            "2024-01-31 12:03:04.123000"
        );
        assert_eq!(
            text(Value::Time {
                negative: true,
                hours: 838,
                minute: 59,
                second: 59,
                micros: 0,
                fsp: 0
            })
            .unwrap(),
            "-838:59:59.000000"
        );
    }
}
