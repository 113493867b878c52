//! Change events for tests, in one place: a row change of `db.table` keyed by its first column, at a
//! binlog file and offset. Every crate's tests build their events here rather than spelling out
//! each field.

use crate::event::{ChangeEvent, Op, Row, SourceEvent, SourceInfo};
use std::sync::Arc;

/// Where a test change was read: `file` and `pos`, a snapshot read or a binlog change.
pub fn source(file: &str, pos: u64, snapshot: bool) -> SourceInfo {
    SourceInfo {
        event: Arc::new(SourceEvent {
            name: "s".into(),
            server_id: 1,
            file: file.into(),
            pos,
            gtid: None,
            txn: "t".into(),
            ts_ms: 0,
            snapshot,
            sinks: None,
        }),
        row: 0,
    }
}

/// A change of `db.table` whose key is the first column of its image (the after image, or the
/// before image of a delete).
pub fn change(
    op: Op,
    (db, table): (&str, &str),
    before: Option<Row>,
    after: Option<Row>,
    source: SourceInfo,
) -> ChangeEvent {
    let image = after.as_ref().or(before.as_ref()).expect("an image");
    let key = Row {
        columns: vec![image.columns[0].clone()].into(),
        values: vec![image.values[0].clone()],
    };
    ChangeEvent {
        partition_key: None,
        origin: None,
        op,
        db: db.into(),
        table: table.into(),
        key,
        before,
        after,
        source,
        read_ts_ms: 0,
        ddl: None,
    }
}
