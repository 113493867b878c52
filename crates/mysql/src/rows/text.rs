//! Character-set decoding of CHAR/VARCHAR/TEXT bytes: MySQL's `latin1` is Windows-1252; the UTF-8
//! family and ASCII are UTF-8 (invalid sequences replaced); other charsets are read as UTF-8 too,
//! a documented limit.

use compact_str::CompactString;

/// Windows-1252 code points for bytes 0x80..=0x9F (the rest of latin1 is the byte value itself).
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

/// Collation ids of the latin1 character set.
const LATIN1: [u16; 8] = [5, 8, 15, 31, 47, 48, 49, 94];

pub fn decode(bytes: &[u8], charset: u16) -> CompactString {
    if LATIN1.contains(&charset) {
        return bytes
            .iter()
            .map(|&b| match b {
                0x80..=0x9f => CP1252_HIGH[(b - 0x80) as usize],
                _ => b as char,
            })
            .collect();
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => CompactString::new(s),
        Err(_) => CompactString::from(String::from_utf8_lossy(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_cp1252() {
        assert_eq!(decode(&[0x63, 0x61, 0x66, 0xe9, 0x80], 8), "café€");
        assert_eq!(decode("😀".as_bytes(), 45), "😀");
        assert_eq!(decode(&[0xff], 45), "\u{fffd}");
    }
}
