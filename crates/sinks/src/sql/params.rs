//! Column values as the databases take them as bound parameters. PostgreSQL: every value as text,
//! cast in the statement to the target column's type (`$1::numeric`), so that one encoding serves
//! every type mapping exactly (bytea as `\x` hex). MySQL: native protocol values, temporal values in
//! UTC (the session's time zone is set to +00:00).

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
