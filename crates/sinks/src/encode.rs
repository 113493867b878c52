//! Event encodings shared by every sink. Today: the native JSON of DESIGN.md, one object per event,
//! written straight into a byte buffer (the same bytes serde_json would write for the event, with a
//! fast path for strings that need no escaping).

use rowbus_core::value::write_json_string as string_to;
use rowbus_core::{ChangeEvent, Op, Row, SourceEvent};
use std::sync::Arc;

/// Appends the native JSON of `event` and a newline to `out`.
pub fn native_json_line(event: &ChangeEvent, out: &mut Vec<u8>) {
    NativeEncoder::default().encode(event, out);
}

/// Writes change events as native JSON lines, reusing the encoded `source` block while consecutive
/// events come from the same rows event (they differ only in the row index).
#[derive(Default)]
pub struct NativeEncoder {
    source: Vec<u8>,
    /// The rows event the cached block was made for.
    source_of: Option<Arc<SourceEvent>>,
    /// Encoded column names of the last few column lists (rows of one table map share theirs).
    names: NameCache,
}

/// Column lists and their encoded `"name":` fragments (`,"name":` after the first), so that a row
/// costs one copy per column name instead of an escape check and several small copies.
#[derive(Default)]
struct NameCache {
    entries: Vec<EncodedNames>,
    next: usize,
}

/// A column list, its fragments one after another, and where each starts (plus the end).
struct EncodedNames {
    columns: Arc<[Arc<str>]>,
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl NameCache {
    const SIZE: usize = 4;

    /// The fragments of `columns` and where each starts (with one end offset after the last).
    fn get(&mut self, columns: &Arc<[Arc<str>]>) -> (&[u8], &[usize]) {
        let found = self
            .entries
            .iter()
            .position(|e| Arc::ptr_eq(&e.columns, columns));
        let i = match found {
            Some(i) => i,
            None => {
                let mut bytes = Vec::new();
                let mut starts = vec![0];
                for (n, name) in columns.iter().enumerate() {
                    if n > 0 {
                        bytes.push(b',');
                    }
                    string_to(name, &mut bytes);
                    bytes.push(b':');
                    starts.push(bytes.len());
                }
                let entry = EncodedNames {
                    columns: columns.clone(),
                    bytes,
                    starts,
                };
                if self.entries.len() < Self::SIZE {
                    self.entries.push(entry);
                    self.entries.len() - 1
                } else {
                    let slot = self.next;
                    self.next = (self.next + 1) % Self::SIZE;
                    self.entries[slot] = entry;
                    slot
                }
            }
        };
        let entry = &self.entries[i];
        (&entry.bytes, &entry.starts)
    }
}

impl NativeEncoder {
    /// Appends the native JSON of `event` and a newline to `out`.
    pub fn encode(&mut self, event: &ChangeEvent, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"op\":\"");
        out.extend_from_slice(match event.op {
            Op::Insert => b"c",
            Op::Update => b"u",
            Op::Delete => b"d",
            Op::Read => b"r",
            Op::Ddl => b"ddl",
            Op::Truncate => b"t",
            Op::ReindexBegin => b"reindex_begin",
            Op::ReindexEnd => b"reindex_end",
        });
        out.extend_from_slice(b"\",\"db\":");
        string(out, &event.db);
        out.extend_from_slice(b",\"table\":");
        string(out, &event.table);
        out.extend_from_slice(b",\"key\":");
        self.row(out, &event.key);
        out.extend_from_slice(b",\"before\":");
        self.optional_row(out, event.before.as_ref());
        out.extend_from_slice(b",\"after\":");
        self.optional_row(out, event.after.as_ref());
        if !self
            .source_of
            .as_ref()
            .is_some_and(|cached| Arc::ptr_eq(cached, &event.source.event))
        {
            self.source.clear();
            source_block(&mut self.source, &event.source.event);
            self.source_of = Some(event.source.event.clone());
        }
        out.extend_from_slice(&self.source);
        number(out, event.source.row as u64);
        let s = &event.source;
        out.extend_from_slice(if s.snapshot {
            b",\"snapshot\":true}"
        } else {
            b",\"snapshot\":false}"
        });
        out.extend_from_slice(b",\"read_ts_ms\":");
        number(out, event.read_ts_ms);
        if let Some(ddl) = &event.ddl {
            out.extend_from_slice(b",\"ddl\":");
            // Rare: serde's encoding of the same structure is exact and fast enough.
            serde_json::to_writer(&mut *out, ddl).expect("writing to a Vec cannot fail");
        }
        out.extend_from_slice(b"}\n");
    }
}

/// The `source` object up to the row index.
fn source_block(out: &mut Vec<u8>, s: &SourceEvent) {
    out.extend_from_slice(b",\"source\":{\"name\":");
    string(out, &s.name);
    out.extend_from_slice(b",\"server_id\":");
    number(out, s.server_id as u64);
    out.extend_from_slice(b",\"file\":");
    string(out, &s.file);
    out.extend_from_slice(b",\"pos\":");
    number(out, s.pos);
    out.extend_from_slice(b",\"gtid\":");
    match &s.gtid {
        Some(gtid) => string(out, gtid),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"txn\":");
    string(out, &s.txn);
    out.extend_from_slice(b",\"ts_ms\":");
    number(out, s.ts_ms);
    out.extend_from_slice(b",\"row\":");
}

impl NativeEncoder {
    /// Appends a row image as one JSON object of its columns (a search document, say).
    pub fn row_object(&mut self, image: &Row, out: &mut Vec<u8>) {
        self.row(out, image);
    }

    fn optional_row(&mut self, out: &mut Vec<u8>, image: Option<&Row>) {
        match image {
            Some(image) => self.row(out, image),
            None => out.extend_from_slice(b"null"),
        }
    }

    fn row(&mut self, out: &mut Vec<u8>, image: &Row) {
        out.push(b'{');
        let (names, starts) = self.names.get(&image.columns);
        for (i, v) in image.values.iter().enumerate().take(image.columns.len()) {
            out.extend_from_slice(&names[starts[i]..starts[i + 1]]);
            v.write_json(out);
        }
        out.push(b'}');
    }
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn string(out: &mut Vec<u8>, s: &str) {
    string_to(s, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowbus_core::{SourceInfo, Value};

    fn event(op: Op, text: &str, gtid: Option<&str>) -> ChangeEvent {
        let columns: Arc<[Arc<str>]> =
            vec![Arc::from("id"), Arc::from("name"), Arc::from("doc")].into();
        let values: Vec<rowbus_core::Value> = vec![
            1.into(),
            text.into(),
            serde_json::json!({"k": [1.5, null, "x\n"]}).into(),
        ];
        ChangeEvent {
            partition_key: None,
            origin: None,
            op,
            db: "shop".into(),
            table: "orders".into(),
            key: Row {
                columns: vec![Arc::from("id")].into(),
                values: vec![1.into()],
            },
            before: Some(Row {
                columns: columns.clone(),
                values: values.clone(),
            }),
            after: Some(Row { columns, values }),
            source: SourceInfo {
                event: Arc::new(SourceEvent {
                    name: "src".into(),
                    server_id: 1,
                    file: "b.000001".into(),
                    pos: 300,
                    gtid: gtid.map(Arc::from),
                    txn: "0-1-7".into(),
                    ts_ms: 1000,
                    snapshot: false,
                    sinks: None,
                }),
                row: 0,
            },
            read_ts_ms: 2000,
            ddl: None,
        }
    }

    #[test]
    fn native_shape() {
        let mut out = Vec::new();
        native_json_line(&event(Op::Update, "a", Some("0-1-7")), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"op":"u","db":"shop","table":"orders","key":{"id":1},"before":{"id":1,"name":"a","doc":{"k":[1.5,null,"x\n"]}},"after":{"id":1,"name":"a","doc":{"k":[1.5,null,"x\n"]}},"source":{"name":"src","server_id":1,"file":"b.000001","pos":300,"gtid":"0-1-7","txn":"0-1-7","ts_ms":1000,"row":0,"snapshot":false},"read_ts_ms":2000}"#
                .to_string()
                + "\n"
        );
    }

    #[test]
    fn the_cached_source_block_follows_the_event() {
        let mut encoder = NativeEncoder::default();
        let first = event(Op::Insert, "a", Some("g"));
        let mut second = first.clone();
        second.source.row = 1;
        let mut third = first.clone();
        Arc::make_mut(&mut third.source.event).pos = 400;
        for e in [&first, &second, &third, &first] {
            let mut ours = Vec::new();
            encoder.encode(e, &mut ours);
            let mut theirs = serde_json::to_vec(e).unwrap();
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }

    #[test]
    fn cached_column_names_follow_each_column_list() {
        let mut encoder = NativeEncoder::default();
        // More column lists than the cache holds, revisited, with names that need escaping.
        let lists: Vec<Arc<[Arc<str>]>> = (0..6)
            .map(|i| {
                vec![
                    Arc::from(format!("id{i}")),
                    Arc::from("q\"uote"),
                    Arc::from("z"),
                ]
                .into()
            })
            .collect();
        for round in 0..3 {
            for (i, columns) in lists.iter().enumerate() {
                let mut e = event(Op::Insert, "a", None);
                let row = Row {
                    columns: columns.clone(),
                    values: vec![Value::Int(i as i64), Value::Int(round), Value::Null],
                };
                e.after = Some(row.clone());
                e.key = row;
                let mut ours = Vec::new();
                encoder.encode(&e, &mut ours);
                let mut theirs = serde_json::to_vec(&e).unwrap();
                theirs.push(b'\n');
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(theirs).unwrap()
                );
            }
        }
    }

    #[test]
    fn same_bytes_as_serde() {
        for (op, text, gtid) in [
            (Op::Insert, "plain", None),
            (
                Op::Delete,
                "quote \" backslash \\ tab \t nul \u{0} emoji 😀",
                Some("g"),
            ),
            (Op::Read, "", None),
        ] {
            let e = event(op, text, gtid);
            let mut ours = Vec::new();
            native_json_line(&e, &mut ours);
            let mut theirs = serde_json::to_vec(&e).unwrap();
            theirs.push(b'\n');
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
