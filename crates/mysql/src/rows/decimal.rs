//! MySQL's binary DECIMAL format (as in rows events and JSON opaque values) to its exact text with
//! the declared scale: groups of nine digits in 4 big-endian bytes, partial groups in fewer, the sign
//! in the top bit (negative numbers have every bit inverted).

use super::cursor::{Cursor, DecodeError, Result};

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

pub fn read_decimal(cursor: &mut Cursor<'_>, precision: u8, scale: u8) -> Result<String> {
    let size = decimal_size(precision, scale)?;
    let mut bytes = cursor.take(size)?.to_vec();
    let negative = bytes.first().is_some_and(|b| b & 0x80 == 0);
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x80;
    }
    if negative {
        bytes.iter_mut().for_each(|b| *b = !*b);
    }
    let mut c = Cursor::new(&bytes);
    let intg = (precision - scale) as usize;
    let scale = scale as usize;
    let mut int_part = String::new();
    let lead = DIG2BYTES[intg % 9];
    if lead > 0 {
        int_part.push_str(&c.uint_be(lead)?.to_string());
    }
    for _ in 0..intg / 9 {
        let group = c.uint_be(4)?;
        if int_part.is_empty() {
            int_part.push_str(&group.to_string());
        } else {
            super::temporal::push_padded(&mut int_part, group, 9);
        }
    }
    let trimmed = int_part.trim_start_matches('0');
    let mut text = String::with_capacity(precision as usize + 3);
    if negative {
        text.push('-');
    }
    text.push_str(if trimmed.is_empty() { "0" } else { trimmed });
    if scale > 0 {
        text.push('.');
        for _ in 0..scale / 9 {
            super::temporal::push_padded(&mut text, c.uint_be(4)?, 9);
        }
        let rest = scale % 9;
        if rest > 0 {
            super::temporal::push_padded(&mut text, c.uint_be(DIG2BYTES[rest])?, rest);
        }
    }
    if negative && text[1..].bytes().all(|b| b == b'0' || b == b'.') {
        text.remove(0); // -0.00 is 0.00
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], p: u8, s: u8) -> String {
        read_decimal(&mut Cursor::new(bytes), p, s).unwrap()
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
    fn refuses_bad_declarations_and_short_input() {
        assert!(decimal_size(0, 0).is_err());
        assert!(decimal_size(10, 11).is_err());
        assert!(read_decimal(&mut Cursor::new(&[0x80]), 10, 2).is_err());
    }
}
