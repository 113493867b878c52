//! MySQL/MariaDB temporal formats in rows events, decoded into typed values (formatted as text only
//! when encoded). Zero dates and the zero timestamp are null.

use super::cursor::{sign_extend, Cursor, Result};
use rowbus_core::value::{DateTime, Value};

/// Appends `v` in decimal, zero-padded to at least `width` digits.
pub fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// `.123` with exactly `fsp` digits of the microseconds (nothing for 0).
pub fn fraction(micros: u64, fsp: u8) -> String {
    let mut out = String::new();
    if fsp > 0 {
        let fsp = fsp.min(6) as u32;
        out.push('.');
        push_padded(
            &mut out,
            (micros % 1_000_000) / 10u64.pow(6 - fsp),
            fsp as usize,
        );
    }
    out
}

/// Fractional seconds of the *2 formats, in microseconds: 1, 2 or 3 big-endian bytes by precision.
fn read_fraction(c: &mut Cursor<'_>, fsp: u8) -> Result<u32> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => c.uint_be(1)? as u32 * 10_000,
        3 | 4 => c.uint_be(2)? as u32 * 100,
        _ => c.uint_be(3)? as u32,
    })
}

/// DATE: 3 bytes little-endian, day | month << 5 | year << 9.
pub fn date(c: &mut Cursor<'_>) -> Result<Value> {
    let v = c.uint_le(3)?;
    let (year, month, day) = ((v >> 9) as u16, ((v >> 5) & 15) as u8, (v & 31) as u8);
    if year == 0 && month == 0 && day == 0 {
        return Ok(Value::Null);
    }
    Ok(Value::Date { year, month, day })
}

fn datetime(ymd: [u64; 3], hms: [u64; 3], micros: u32, fsp: u8) -> Value {
    if ymd == [0, 0, 0] {
        return Value::Null;
    }
    Value::DateTime(DateTime {
        year: ymd[0].min(9999) as u16,
        month: ymd[1] as u8,
        day: ymd[2] as u8,
        hour: hms[0].min(255) as u8,
        minute: hms[1] as u8,
        second: hms[2] as u8,
        micros,
        fsp,
    })
}

/// DATETIME2: 5 bytes big-endian (offset by 2^39) packing year*13+month, day, h, m, s; then the fraction.
pub fn datetime2(c: &mut Cursor<'_>, fsp: u8) -> Result<Value> {
    let packed = c.uint_be(5)?.wrapping_sub(0x80_0000_0000);
    let micros = read_fraction(c, fsp)?;
    let ymd = packed >> 17;
    let ym = ymd >> 5;
    let hms = packed % (1 << 17);
    Ok(datetime(
        [ym / 13, ym % 13, ymd % 32],
        [hms >> 12, (hms >> 6) % 64, hms % 64],
        micros,
        fsp,
    ))
}

/// DATETIME (old format): 8 bytes little-endian, the decimal number YYYYMMDDhhmmss.
pub fn datetime_old(c: &mut Cursor<'_>) -> Result<Value> {
    let v = c.uint_le(8)?;
    let (date, time) = (v / 1_000_000, v % 1_000_000);
    let ymd = [date / 10_000, date / 100 % 100, date % 100];
    Ok(datetime(
        ymd,
        [time / 10_000, time / 100 % 100, time % 100],
        0,
        0,
    ))
}

/// TIMESTAMP2: 4 bytes big-endian seconds since the epoch, then the fraction.
pub fn timestamp2(c: &mut Cursor<'_>, fsp: u8) -> Result<Value> {
    let secs = c.uint_be(4)? as i64;
    let micros = read_fraction(c, fsp)?;
    Ok(timestamp(secs, micros, fsp))
}

/// TIMESTAMP (old format): 4 bytes little-endian seconds.
pub fn timestamp_old(c: &mut Cursor<'_>) -> Result<Value> {
    Ok(timestamp(c.uint_le(4)? as i64, 0, 0))
}

fn timestamp(secs: i64, micros: u32, fsp: u8) -> Value {
    if secs == 0 && micros == 0 {
        return Value::Null;
    }
    Value::Timestamp { secs, micros, fsp }
}

/// TIME2: 3 bytes big-endian (offset by 2^23) packing sign, hours, minutes, seconds; then the fraction,
/// which for negative times with a fraction borrows from the integer part.
pub fn time2(c: &mut Cursor<'_>, fsp: u8) -> Result<Value> {
    let packed: i64 = match fsp {
        0 => (c.uint_be(3)? as i64 - 0x80_0000) << 24,
        1..=4 => {
            let mut int_part = c.uint_be(3)? as i64 - 0x80_0000;
            let (bytes, scale) = if fsp <= 2 { (1, 10_000) } else { (2, 100) };
            let mut frac = c.uint_be(bytes)? as i64;
            if int_part < 0 && frac != 0 {
                int_part += 1;
                frac -= 1 << (8 * bytes);
            }
            (int_part << 24) + frac * scale
        }
        _ => c.uint_be(6)? as i64 - 0x8000_0000_0000,
    };
    let v = packed.unsigned_abs();
    let hms = v >> 24;
    Ok(Value::Time {
        negative: packed < 0,
        hours: ((hms >> 12) % (1 << 10)) as u16,
        minute: ((hms >> 6) % 64) as u8,
        second: (hms % 64) as u8,
        micros: (v % (1 << 24)) as u32,
        fsp: fsp.min(6),
    })
}

/// TIME (old format): 3 bytes little-endian signed, the decimal number hhmmss.
pub fn time_old(c: &mut Cursor<'_>) -> Result<Value> {
    let v = sign_extend(c.uint_le(3)?, 24);
    let a = v.unsigned_abs();
    Ok(Value::Time {
        negative: v < 0,
        hours: (a / 10_000).min(u16::MAX as u64) as u16,
        minute: (a / 100 % 100) as u8,
        second: (a % 100) as u8,
        micros: 0,
        fsp: 0,
    })
}

/// YEAR: one byte, years since 1900 (0 is the zero year).
pub fn year(c: &mut Cursor<'_>) -> Result<Value> {
    let v = c.u8()?;
    Ok(Value::Year(if v == 0 { 0 } else { 1900 + v as u16 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    fn run(f: impl Fn(&mut Cursor<'_>) -> Result<Value>, bytes: &[u8]) -> Json {
        let mut c = Cursor::new(bytes);
        let v = f(&mut c).unwrap();
        assert!(c.is_empty(), "consumed every byte");
        serde_json::to_value(&v).unwrap()
    }

    #[test]
    fn dates() {
        let v = 31 | (1 << 5) | (2024 << 9);
        assert_eq!(
            run(date, &[v as u8, (v >> 8) as u8, (v >> 16) as u8]),
            json!("2024-01-31")
        );
        assert_eq!(run(date, &[0, 0, 0]), Json::Null);
    }

    #[test]
    fn datetime2_with_fraction() {
        let ym: u64 = 2024 * 13 + 1;
        let packed = ((((ym << 5) | 31) << 17) | (12 << 12)) + 0x80_0000_0000;
        let mut bytes = packed.to_be_bytes()[3..].to_vec();
        bytes.extend(1230u16.to_be_bytes());
        assert_eq!(
            run(|c| datetime2(c, 3), &bytes),
            json!("2024-01-31T12:00:00.123")
        );
    }

    #[test]
    fn times() {
        let hms: i64 = (838 << 12) | (59 << 6) | 59;
        let pos = (hms + 0x80_0000) as u64;
        let neg = (0x80_0000 - hms) as u64;
        assert_eq!(
            run(|c| time2(c, 0), &pos.to_be_bytes()[5..]),
            json!("838:59:59")
        );
        assert_eq!(
            run(|c| time2(c, 0), &neg.to_be_bytes()[5..]),
            json!("-838:59:59")
        );
        let int_part = (0x80_0000i64 - 1) as u64;
        let mut bytes = int_part.to_be_bytes()[5..].to_vec();
        bytes.push((256 - 50) as u8);
        assert_eq!(run(|c| time2(c, 1), &bytes), json!("-00:00:00.5"));
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(
            run(|c| timestamp2(c, 0), &951_782_400u32.to_be_bytes()),
            json!("2000-02-29T00:00:00Z")
        );
        assert_eq!(run(|c| timestamp2(c, 0), &[0, 0, 0, 0]), Json::Null);
    }

    #[test]
    fn years_and_short_input() {
        assert_eq!(run(year, &[124]), json!(2024));
        assert_eq!(run(year, &[0]), json!(0));
        assert!(datetime2(&mut Cursor::new(&[0x80, 0, 0]), 0).is_err());
        assert_eq!(fraction(120_000, 3), ".120");
    }
}
