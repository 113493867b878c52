//! Event encodings shared by every sink. Today: the native JSON of DESIGN.md, one object per event,
//! written straight into a byte buffer (the same bytes serde_json would write for the event, with a
//! fast path for strings that need no escaping).

use rowbus_core::value::write_json_string as string_to;
use rowbus_core::{ChangeEvent, Op, Row, SourceInfo};

/// Appends the native JSON of `event` and a newline to `out`.
pub fn native_json_line(event: &ChangeEvent, out: &mut Vec<u8>) {
    NativeEncoder::default().encode(event, out);
}

/// Writes change events as native JSON lines, reusing the encoded `source` block while consecutive
/// events come from the same rows event (they differ only in the row index).
#[derive(Default)]
pub struct NativeEncoder {
    source: Vec<u8>,
    /// The source the cached block was made for, with its row index set to 0.
    source_of: Option<SourceInfo>,
}

/// Whether `cached` (row 0) is `source` but for the row index. Destructured field by field, so
/// that a field added to `SourceInfo` must be considered here.
fn same_but_row(cached: &SourceInfo, source: &SourceInfo) -> bool {
    let SourceInfo {
        name,
        server_id,
        file,
        pos,
        gtid,
        txn,
        ts_ms,
        row: _,
        snapshot,
    } = source;
    cached.pos == *pos
        && cached.ts_ms == *ts_ms
        && cached.server_id == *server_id
        && cached.snapshot == *snapshot
        && cached.file == *file
        && cached.txn == *txn
        && cached.gtid == *gtid
        && cached.name == *name
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
        });
        out.extend_from_slice(b"\",\"db\":");
        string(out, &event.db);
        out.extend_from_slice(b",\"table\":");
        string(out, &event.table);
        out.extend_from_slice(b",\"key\":");
        row(out, &event.key);
        out.extend_from_slice(b",\"before\":");
        optional_row(out, event.before.as_ref());
        out.extend_from_slice(b",\"after\":");
        optional_row(out, event.after.as_ref());
        if !self
            .source_of
            .as_ref()
            .is_some_and(|c| same_but_row(c, &event.source))
        {
            self.source.clear();
            source_block(&mut self.source, &event.source);
            self.source_of = Some(SourceInfo {
                row: 0,
                ..event.source.clone()
            });
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
fn source_block(out: &mut Vec<u8>, s: &SourceInfo) {
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

fn optional_row(out: &mut Vec<u8>, image: Option<&Row>) {
    match image {
        Some(image) => row(out, image),
        None => out.extend_from_slice(b"null"),
    }
}

fn row(out: &mut Vec<u8>, image: &Row) {
    out.push(b'{');
    for (i, (name, v)) in image.columns.iter().zip(&image.values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, name);
        out.push(b':');
        v.write_json(out);
    }
    out.push(b'}');
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
    use std::sync::Arc;

    fn event(op: Op, text: &str, gtid: Option<&str>) -> ChangeEvent {
        let columns: Arc<[Arc<str>]> =
            vec![Arc::from("id"), Arc::from("name"), Arc::from("doc")].into();
        let values: Vec<rowbus_core::Value> = vec![
            1.into(),
            text.into(),
            serde_json::json!({"k": [1.5, null, "x\n"]}).into(),
        ];
        ChangeEvent {
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
                name: "src".into(),
                server_id: 1,
                file: "b.000001".into(),
                pos: 300,
                gtid: gtid.map(Arc::from),
                txn: "0-1-7".into(),
                ts_ms: 1000,
                row: 0,
                snapshot: false,
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
        third.source.pos = 400;
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
