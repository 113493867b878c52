//! The bulk-load path of the database sinks. Rows a batch most likely adds to a table
//! (`TablePlan::likely_new`) go by the database's own bulk load, `COPY` or `LOAD DATA`, which costs
//! the server about half of an upsert. When one of them was in the table after all (a replay after
//! a restart, a second snapshot), the target writes them again as upserts, and `Pauses` keeps that
//! table on upserts for its next batches, so that a replay does not pay twice for every batch.
//! Both loads read the same text lines, written here.

use std::collections::HashMap;

/// Batches of a table upserted without trying a bulk load after one met a row already there.
pub const PAUSE_BATCHES: u32 = 64;

/// Per target table, the batches still to upsert without trying a bulk load.
#[derive(Default)]
pub struct Pauses(HashMap<String, u32>);

impl Pauses {
    /// Whether this batch may bulk-load the table, counting down its pause.
    pub fn allowed(&mut self, table: &str) -> bool {
        match self.0.get_mut(table) {
            Some(0) | None => true,
            Some(left) => {
                *left -= 1;
                false
            }
        }
    }

    /// A bulk load of the table met a row already there.
    pub fn pause(&mut self, table: String) {
        self.0.insert(table, PAUSE_BATCHES);
    }
}

/// Whether a byte is escaped in a field of a text line.
fn special(b: &u8) -> bool {
    matches!(b, b'\\' | b'\n' | b'\r' | b'\t' | 0)
}

/// Appends a field of a text line: a backslash, tab, newline, carriage return or NUL byte
/// escaped with a backslash, as `COPY ... FROM STDIN` and `LOAD DATA` (by default) read it.
pub fn field(out: &mut Vec<u8>, value: &[u8]) {
    let mut rest = value;
    while let Some(i) = rest.iter().position(special) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => b"\\0",
        });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Appends a row as a line: the texts of its values as tab-separated fields, each appended by
/// `write` (which returns false, appending nothing, for NULL) and escaped where it needs it.
pub fn line<V>(
    out: &mut Vec<u8>,
    values: impl Iterator<Item = V>,
    write: impl Fn(V, &mut Vec<u8>) -> bool,
) {
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        let start = out.len();
        if !write(value, out) {
            out.extend_from_slice(b"\\N");
        } else if out[start..].iter().any(special) {
            let text = out.split_off(start);
            field(out, &text);
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bytes_are_escaped() {
        let mut out = Vec::new();
        field(&mut out, b"a\tb\\c\nd\re\0f\\N");
        assert_eq!(out, b"a\\tb\\\\c\\nd\\re\\0f\\\\N");
    }

    #[test]
    fn a_line_holds_its_fields_and_nulls() {
        let mut out = Vec::new();
        let write = |v: Option<&str>, out: &mut Vec<u8>| {
            v.map(|t| out.extend_from_slice(t.as_bytes())).is_some()
        };
        line(
            &mut out,
            [Some("1"), None, Some("x\ty"), Some("\\")].into_iter(),
            write,
        );
        assert_eq!(out, b"1\t\\N\tx\\ty\t\\\\\n");
    }

    #[test]
    fn a_paused_table_waits_its_batches() {
        let mut pauses = Pauses::default();
        assert!(pauses.allowed("t"));
        pauses.pause("t".into());
        for _ in 0..PAUSE_BATCHES {
            assert!(!pauses.allowed("t"));
            assert!(pauses.allowed("u"));
        }
        assert!(pauses.allowed("t"));
    }
}
