//! MySQL's binary DECIMAL format (as in rows events and JSON opaque values) to its exact text with
//! the declared scale: groups of nine digits in 4 big-endian bytes, partial groups in fewer, the sign
//! in the top bit (negative numbers have every bit inverted).

use super::cursor::{Cursor, DecodeError, Result};
use compact_str::CompactString;

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Bytes a DECIMAL(precision, scale) takes.
pub fn decimal_size(precision: u8, scale: u8) -> Result<usize> {
    if precision == 0 || precision > 65 || scale > 30 || scale > precision {
        return Err(DecodeError(format!("invalid DECIMAL({precision},{scale})")));
    }
    let intg = (precision - scale) as usize;
    let scale = scale as usize;
    Ok(intg / 9 * 4 + DIG2BYTES[intg % 9] + scale / 9 * 4 + DIG2BYTES[scale % 9])
}

/// The digits of a decimal as it is built. 128 bytes hold the longest text even corrupt groups
/// give (ten digits per four bytes): a sign, 80 integer digits, a point, 40 fraction digits.
struct Digits {
    bytes: [u8; 128],
    len: usize,
}

impl Digits {
    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    /// `v` in decimal, zero-padded to at least `width` digits (nine at most per group).
    fn push_padded(&mut self, v: u64, width: usize) {
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(v).as_bytes();
        for _ in digits.len()..width {
            self.push(b'0');
        }
        for &d in digits {
            self.push(d);
        }
    }
}

/// Reads a DECIMAL(precision, scale) into its text, without allocating unless it is longer than
/// a `CompactString` holds inline.
pub fn read_decimal(cursor: &mut Cursor<'_>, precision: u8, scale: u8) -> Result<CompactString> {
    let size = decimal_size(precision, scale)?;
    let mut stored = [0u8; 32];
    let bytes = &mut stored[..size];
    bytes.copy_from_slice(cursor.take(size)?);
    let negative = bytes.first().is_some_and(|b| b & 0x80 == 0);
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x80;
    }
    if negative {
        bytes.iter_mut().for_each(|b| *b = !*b);
    }
    let mut c = Cursor::new(bytes);
    let intg = (precision - scale) as usize;
    let scale = scale as usize;
    // Integer digits, each group padded to nine digits (the lead group to its own width), then
    // the leading zeros dropped.
    let mut int = Digits {
        bytes: [0; 128],
        len: 0,
    };
    let lead = DIG2BYTES[intg % 9];
    if lead > 0 {
        int.push_padded(c.uint_be(lead)?, intg % 9);
    }
    for _ in 0..intg / 9 {
        int.push_padded(c.uint_be(4)?, 9);
    }
    let int_digits = &int.bytes[..int.len];
    let first = int_digits.iter().position(|&d| d != b'0');
    let mut text = Digits {
        bytes: [0; 128],
        len: 0,
    };
    if negative {
        text.push(b'-');
    }
    match first {
        Some(i) => int_digits[i..].iter().for_each(|&d| text.push(d)),
        None => text.push(b'0'),
    }
    if scale > 0 {
        text.push(b'.');
        for _ in 0..scale / 9 {
            text.push_padded(c.uint_be(4)?, 9);
        }
        let rest = scale % 9;
        if rest > 0 {
            text.push_padded(c.uint_be(DIG2BYTES[rest])?, rest);
        }
    }
    let mut out = &text.bytes[..text.len];
    if negative && out[1..].iter().all(|&b| b == b'0' || b == b'.') {
        out = &out[1..]; // -0.00 is 0.00
    }
    let out = std::str::from_utf8(out).map_err(|_| DecodeError("decimal digits".into()))?;
    Ok(CompactString::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], p: u8, s: u8) -> String {
        read_decimal(&mut Cursor::new(bytes), p, s)
            .unwrap()
            .to_string()
    }

    #[test]
    fn known_encodings() {
        // DECIMAL(10,2) 12.30: intg 8 -> 4 bytes, frac 2 -> 1 byte.
        assert_eq!(decode(&[0x80, 0x00, 0x00, 0x0c, 0x1e], 10, 2), "12.30");
        // -12.30: all bits inverted.
        assert_eq!(decode(&[0x7f, 0xff, 0xff, 0xf3, 0xe1], 10, 2), "-12.30");
        assert_eq!(decode(&[0x80, 0x00, 0x00, 0x00, 0x00], 10, 2), "0.00");
        // DECIMAL(5,0) 0
        assert_eq!(decode(&[0x80, 0x00, 0x00], 5, 0), "0");
        assert_eq!(decimal_size(65, 30).unwrap(), 30);
    }

    #[test]
    fn widest_and_corrupt_values_never_overflow() {
        let size = decimal_size(65, 30).unwrap();
        // Every group at its largest, which no server writes: more digits than declared.
        assert_eq!(
            decode(&[0xff; 30][..size], 65, 30),
            "2147483647429496729542949672954294967295.42949672954294967295429496729565535"
        );
        let mut zero = vec![0u8; size];
        zero[0] = 0x80;
        assert_eq!(decode(&zero, 65, 30), format!("0.{}", "0".repeat(30)));
    }

    #[test]
    fn refuses_bad_declarations_and_short_input() {
        assert!(decimal_size(0, 0).is_err());
        assert!(decimal_size(10, 11).is_err());
        assert!(read_decimal(&mut Cursor::new(&[0x80]), 10, 2).is_err());
    }
}
