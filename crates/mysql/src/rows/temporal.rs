//! MySQL/MariaDB temporal formats in rows events, to DESIGN.md's text: DATE `2024-01-31`,
//! DATETIME(n) `2024-01-31T12:00:00.123` (n fractional digits), TIME(n) `-838:59:59.5`, TIMESTAMP(n)
//! in UTC with `Z`. Zero dates and the zero timestamp are null.

use super::cursor::{sign_extend, Cursor, Result};
use serde_json::Value as Json;

/// Appends `v` in decimal, zero-padded to at least `width` digits.
pub fn push_padded(out: &mut String, mut v: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while v > 0 || i == digits.len() {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    for _ in (digits.len() - i)..width {
        out.push('0');
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// Appends `.123` with exactly `fsp` digits of the microseconds (nothing for 0).
pub fn push_fraction(out: &mut String, micros: u64, fsp: u8) {
    if fsp == 0 {
        return;
    }
    let fsp = fsp.min(6) as u32;
    out.push('.');
    push_padded(out, (micros % 1_000_000) / 10u64.pow(6 - fsp), fsp as usize);
}

/// `.123` with exactly `fsp` digits of the microseconds (nothing for 0).
pub fn fraction(micros: u64, fsp: u8) -> String {
    let mut out = String::new();
    push_fraction(&mut out, micros, fsp);
    out
}

/// Fractional seconds of the *2 formats, in microseconds: 1, 2 or 3 big-endian bytes by precision.
fn read_fraction(c: &mut Cursor<'_>, fsp: u8) -> Result<u64> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => c.uint_be(1)? * 10_000,
        3 | 4 => c.uint_be(2)? * 100,
        _ => c.uint_be(3)?,
    })
}

/// DATE: 3 bytes little-endian, day | month << 5 | year << 9.
pub fn date(c: &mut Cursor<'_>) -> Result<Json> {
    let v = c.uint_le(3)?;
    let (y, m, d) = (v >> 9, (v >> 5) & 15, v & 31);
    Ok(date_json(y, m, d))
}

fn date_json(y: u64, m: u64, d: u64) -> Json {
    if y == 0 && m == 0 && d == 0 {
        return Json::Null;
    }
    let mut out = String::with_capacity(10);
    push_date(&mut out, [y, m, d]);
    Json::String(out)
}

fn push_date(out: &mut String, [y, m, d]: [u64; 3]) {
    push_padded(out, y, 4);
    out.push('-');
    push_padded(out, m, 2);
    out.push('-');
    push_padded(out, d, 2);
}

fn push_time(out: &mut String, [h, m, s]: [u64; 3]) {
    push_padded(out, h, 2);
    out.push(':');
    push_padded(out, m, 2);
    out.push(':');
    push_padded(out, s, 2);
}

fn datetime_json(ymd: [u64; 3], hms: [u64; 3], micros: u64, fsp: u8) -> Json {
    if ymd == [0, 0, 0] {
        return Json::Null;
    }
    let mut out = String::with_capacity(26);
    push_date(&mut out, ymd);
    out.push('T');
    push_time(&mut out, hms);
    push_fraction(&mut out, micros, fsp);
    Json::String(out)
}

/// DATETIME2: 5 bytes big-endian (offset by 2^39) packing year*13+month, day, h, m, s; then the fraction.
pub fn datetime2(c: &mut Cursor<'_>, fsp: u8) -> Result<Json> {
    let packed = c.uint_be(5)?.wrapping_sub(0x80_0000_0000);
    let micros = read_fraction(c, fsp)?;
    let ymd = packed >> 17;
    let ym = ymd >> 5;
    let hms = packed % (1 << 17);
    Ok(datetime_json(
        [ym / 13, ym % 13, ymd % 32],
        [hms >> 12, (hms >> 6) % 64, hms % 64],
        micros,
        fsp,
    ))
}

/// DATETIME (old format): 8 bytes little-endian, the decimal number YYYYMMDDhhmmss.
pub fn datetime_old(c: &mut Cursor<'_>) -> Result<Json> {
    let v = c.uint_le(8)?;
    let (date, time) = (v / 1_000_000, v % 1_000_000);
    let ymd = [date / 10_000, date / 100 % 100, date % 100];
    Ok(datetime_json(
        ymd,
        [time / 10_000, time / 100 % 100, time % 100],
        0,
        0,
    ))
}

/// TIMESTAMP2: 4 bytes big-endian seconds since the epoch, then the fraction.
pub fn timestamp2(c: &mut Cursor<'_>, fsp: u8) -> Result<Json> {
    let secs = c.uint_be(4)?;
    let micros = read_fraction(c, fsp)?;
    Ok(timestamp_json(secs as i64, micros, fsp))
}

/// TIMESTAMP (old format): 4 bytes little-endian seconds.
pub fn timestamp_old(c: &mut Cursor<'_>) -> Result<Json> {
    Ok(timestamp_json(c.uint_le(4)? as i64, 0, 0))
}

pub fn timestamp_json(secs: i64, micros: u64, fsp: u8) -> Json {
    if secs == 0 && micros == 0 {
        return Json::Null;
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(28);
    push_date(&mut out, [y.max(0) as u64, m as u64, d as u64]);
    out.push('T');
    push_time(&mut out, [rem / 3600, (rem % 3600) / 60, rem % 60]);
    push_fraction(&mut out, micros, fsp);
    out.push('Z');
    Json::String(out)
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

/// TIME2: 3 bytes big-endian (offset by 2^23) packing sign, hours, minutes, seconds; then the fraction,
/// which for negative times with a fraction borrows from the integer part.
pub fn time2(c: &mut Cursor<'_>, fsp: u8) -> Result<Json> {
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
    Ok(time_json(packed, fsp))
}

fn time_json(packed: i64, fsp: u8) -> Json {
    let negative = packed < 0;
    let v = packed.unsigned_abs();
    let hms = v >> 24;
    let micros = v % (1 << 24);
    let (h, m, s) = ((hms >> 12) % (1 << 10), (hms >> 6) % 64, hms % 64);
    Json::from(format!(
        "{}{h:02}:{m:02}:{s:02}{}",
        if negative { "-" } else { "" },
        fraction(micros, fsp)
    ))
}

/// TIME (old format): 3 bytes little-endian signed, the decimal number hhmmss.
pub fn time_old(c: &mut Cursor<'_>) -> Result<Json> {
    let v = sign_extend(c.uint_le(3)?, 24);
    let a = v.unsigned_abs();
    Ok(Json::from(format!(
        "{}{:02}:{:02}:{:02}",
        if v < 0 { "-" } else { "" },
        a / 10_000,
        a / 100 % 100,
        a % 100
    )))
}

/// YEAR: one byte, years since 1900 (0 is the zero year).
pub fn year(c: &mut Cursor<'_>) -> Result<Json> {
    let v = c.u8()?;
    Ok(Json::from(if v == 0 { 0 } else { 1900 + v as u32 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl Fn(&mut Cursor<'_>) -> Result<Json>, bytes: &[u8]) -> Json {
        let mut c = Cursor::new(bytes);
        let v = f(&mut c).unwrap();
        assert!(c.is_empty(), "consumed every byte");
        v
    }

    #[test]
    fn dates() {
        // 2024-01-31: 31 | 1 << 5 | 2024 << 9
        let v = 31 | (1 << 5) | (2024 << 9);
        assert_eq!(
            run(date, &[v as u8, (v >> 8) as u8, (v >> 16) as u8]),
            Json::from("2024-01-31")
        );
        assert_eq!(run(date, &[0, 0, 0]), Json::Null);
    }

    #[test]
    fn datetime2_with_fraction() {
        // 2024-01-31 12:00:00.123 (fsp 3): ym = 2024*13+1, ymd = ym<<5|31, hms = 12<<12.
        let ym: u64 = 2024 * 13 + 1;
        let packed = ((((ym << 5) | 31) << 17) | (12 << 12)) + 0x80_0000_0000;
        let mut bytes = packed.to_be_bytes()[3..].to_vec();
        bytes.extend(1230u16.to_be_bytes());
        let f = |c: &mut Cursor<'_>| datetime2(c, 3);
        assert_eq!(run(f, &bytes), Json::from("2024-01-31T12:00:00.123"));
    }

    #[test]
    fn times() {
        // TIME(0) 838:59:59 and -838:59:59.
        let hms: i64 = (838 << 12) | (59 << 6) | 59;
        let pos = (hms + 0x80_0000) as u64;
        let neg = (0x80_0000 - hms) as u64;
        let f0 = |c: &mut Cursor<'_>| time2(c, 0);
        assert_eq!(run(f0, &pos.to_be_bytes()[5..]), Json::from("838:59:59"));
        assert_eq!(run(f0, &neg.to_be_bytes()[5..]), Json::from("-838:59:59"));
        // TIME(1) -00:00:00.5: int part -1 with frac 256-50 borrowed.
        let int_part = (0x80_0000i64 - 1) as u64;
        let mut bytes = int_part.to_be_bytes()[5..].to_vec();
        bytes.push((256 - 50) as u8);
        let f1 = |c: &mut Cursor<'_>| time2(c, 1);
        assert_eq!(run(f1, &bytes), Json::from("-00:00:00.5"));
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(
            timestamp_json(1_706_702_400, 500_000, 1),
            Json::from("2024-01-31T12:00:00.5Z")
        );
        assert_eq!(timestamp_json(0, 0, 0), Json::Null);
        let f = |c: &mut Cursor<'_>| timestamp2(c, 0);
        assert_eq!(
            run(f, &951_782_400u32.to_be_bytes()),
            Json::from("2000-02-29T00:00:00Z")
        );
    }

    #[test]
    fn years_and_short_input() {
        assert_eq!(run(year, &[124]), Json::from(2024));
        assert_eq!(run(year, &[0]), Json::from(0));
        assert!(datetime2(&mut Cursor::new(&[0x80, 0, 0]), 0).is_err());
    }
}
