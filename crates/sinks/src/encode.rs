//! Event encodings shared by every sink. Today: the native JSON of DESIGN.md, one object per event.

use rowbus_core::ChangeEvent;

/// Appends the native JSON of `event` and a newline to `out`.
pub fn native_json_line(event: &ChangeEvent, out: &mut Vec<u8>) {
    // Serializing our own types into a Vec cannot fail: every map key is a string.
    let _ = serde_json::to_writer(&mut *out, event);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowbus_core::{Op, Row, SourceInfo};
    use std::sync::Arc;

    #[test]
    fn native_shape() {
        let columns: Arc<[Arc<str>]> = vec![Arc::from("id"), Arc::from("name")].into();
        let event = ChangeEvent {
            op: Op::Update,
            db: "shop".into(),
            table: "orders".into(),
            key: Row {
                columns: vec![Arc::from("id")].into(),
                values: vec![1.into()],
            },
            before: Some(Row {
                columns: columns.clone(),
                values: vec![1.into(), "a".into()],
            }),
            after: Some(Row {
                columns,
                values: vec![1.into(), "b".into()],
            }),
            source: SourceInfo {
                name: "src".into(),
                server_id: 1,
                file: "b.000001".into(),
                pos: 300,
                gtid: Some("0-1-7".into()),
                txn: "0-1-7".into(),
                ts_ms: 1000,
                row: 0,
                snapshot: false,
            },
            read_ts_ms: 2000,
        };
        let mut out = Vec::new();
        native_json_line(&event, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"op":"u","db":"shop","table":"orders","key":{"id":1},"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"source":{"name":"src","server_id":1,"file":"b.000001","pos":300,"gtid":"0-1-7","txn":"0-1-7","ts_ms":1000,"row":0,"snapshot":false},"read_ts_ms":2000}"#
                .to_string()
                + "\n"
        );
    }
}
