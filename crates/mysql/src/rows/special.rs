//! MariaDB's UUID, INET6 and INET4 columns: the binlog logs them as fixed binary strings (16, 16
//! and 4 bytes, trailing zero bytes trimmed); the schema history says which they are, and they are
//! delivered in the server's text form.

use crate::schema::types::Special;
use compact_str::CompactString;
use std::fmt::Write;
use std::net::Ipv6Addr;

/// The stored size of a value of this type.
pub fn size(special: Special) -> usize {
    match special {
        Special::Uuid | Special::Inet6 => 16,
        Special::Inet4 => 4,
    }
}

/// The server's text form of a stored value, already padded to `size`.
pub fn text(special: Special, bytes: &[u8]) -> CompactString {
    let mut out = CompactString::default();
    match (special, bytes.len()) {
        (Special::Uuid, 16) => {
            for (i, b) in bytes.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    out.push('-');
                }
                let _ = write!(out, "{b:02x}");
            }
        }
        (Special::Inet6, 16) => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            let v4 = || format!("{}.{}.{}.{}", bytes[12], bytes[13], bytes[14], bytes[15]);
            let head_zero = bytes[..10].iter().all(|&b| b == 0);
            let tail = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
            if head_zero && bytes[10] == 0xff && bytes[11] == 0xff {
                let _ = write!(out, "::ffff:{}", v4());
            } else if head_zero && bytes[10] == 0 && bytes[11] == 0 && tail > 1 {
                // IPv4-compatible, as the server prints it (`::` and `::1` excepted).
                let _ = write!(out, "::{}", v4());
            } else {
                let _ = write!(out, "{}", Ipv6Addr::from(octets));
            }
        }
        (Special::Inet4, 4) => {
            let _ = write!(out, "{}.{}.{}.{}", bytes[0], bytes[1], bytes[2], bytes[3]);
        }
        _ => unreachable!("callers pad to size()"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Values and their stored bytes as MariaDB 10.11 writes them in the binlog.
    #[test]
    fn prints_what_the_server_prints() {
        let cases = [
            (
                Special::Uuid,
                "123456789abc1def8123456789abcdef",
                "12345678-9abc-1def-8123-456789abcdef",
            ),
            (
                Special::Uuid,
                "01890a5dac96774bbcceb302099a8057",
                "01890a5d-ac96-774b-bcce-b302099a8057",
            ),
            (
                Special::Inet6,
                "20010db8000000000000000000000001",
                "2001:db8::1",
            ),
            (
                Special::Inet6,
                "00000000000000000000ffff01020304",
                "::ffff:1.2.3.4",
            ),
            (
                Special::Inet6,
                "00000000000000000000000001020304",
                "::1.2.3.4",
            ),
            (Special::Inet6, "00000000000000000000000000000000", "::"),
            (Special::Inet6, "00000000000000000000000000000001", "::1"),
            (
                Special::Inet6,
                "fe800000000000000000000000000001",
                "fe80::1",
            ),
            (Special::Inet4, "0a000001", "10.0.0.1"),
            (Special::Inet4, "ffffffff", "255.255.255.255"),
        ];
        for (special, stored, shown) in cases {
            assert_eq!(text(special, &hex(stored)), shown);
        }
    }
}
