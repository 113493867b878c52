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

/// Appends a field of a text line: a backslash, tab, newline, carriage return or NUL byte
/// escaped with a backslash, as `COPY ... FROM STDIN` and `LOAD DATA` (by default) read it.
pub fn field(out: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(b),
        }
    }
}

/// Appends a row as a line: the texts of its values (`None` for NULL) as tab-separated fields.
pub fn line<T: AsRef<[u8]>>(out: &mut Vec<u8>, texts: impl Iterator<Item = Option<T>>) {
    for (i, text) in texts.enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match text {
            None => out.extend_from_slice(b"\\N"),
            Some(text) => field(out, text.as_ref()),
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
        line(&mut out, [Some("1"), None, Some("x\ty")].into_iter());
        assert_eq!(out, b"1\t\\N\tx\\ty\n");
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
