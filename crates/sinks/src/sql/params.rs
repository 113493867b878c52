//! Column values as the databases take them as bound parameters. PostgreSQL: every value as text,
//! cast in the statement to the target column's type (`$1::numeric`), so that one encoding serves
//! every type mapping exactly (bytea as `\x` hex). MySQL: native protocol values, temporal values in
//! UTC (the session's time zone is set to +00:00); for `LOAD DATA`, the text of the same values.

use rowbus_core::value::utc_fields;
use rowbus_core::Value;

/// The text PostgreSQL parses back into the value; `None` for NULL.
pub fn pg_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Text(t) | Value::Decimal(t) => t.to_string(),
        Value::Label(l) => l.to_string(),
        Value::Labels(ls) => ls.iter().map(|l| &**l).collect::<Vec<_>>().join(","),
        Value::Bytes(b) => {
            let mut out = String::with_capacity(2 + b.len() * 2);
            out.push_str("\\x");
            for byte in b.iter() {
                out.push_str(&format!("{byte:02x}"));
            }
            out
        }
        Value::Json(j) => j.to_string(),
        // Numbers and temporal values: their native JSON text, which PostgreSQL reads (ISO 8601
        // dates and times, `Z` for UTC, `-838:59:59` as an interval).
        other => {
            let mut out = Vec::new();
            other.write_json(&mut out);
            String::from_utf8_lossy(&out).trim_matches('"').to_string()
        }
    })
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

/// The text MySQL reads back into the value (`LOAD DATA`), the same as `mysql_value` binds; `None`
/// for NULL.
pub fn mysql_text(v: &Value) -> Option<Vec<u8>> {
    use mysql_async::Value as M;
    Some(match mysql_value(v) {
        M::NULL => return None,
        M::Bytes(b) => b,
        M::Int(i) => i.to_string().into_bytes(),
        M::UInt(u) => u.to_string().into_bytes(),
        M::Float(f) => f.to_string().into_bytes(),
        M::Double(d) => d.to_string().into_bytes(),
        M::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}").into_bytes()
        }
        M::Time(negative, days, h, mi, s, us) => {
            let sign = if negative { "-" } else { "" };
            let hours = days * 24 + h as u32;
            format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}").into_bytes()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowbus_core::value::DateTime;

    fn text(v: Value) -> Option<String> {
        mysql_text(&v).map(|b| String::from_utf8(b).unwrap())
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
        let d = DateTime {
            year: 2024,
            month: 1,
            day: 31,
            hour: 12,
            minute: 3,
            second: 4,
            micros: 123000,
            fsp: 3,
        };
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
