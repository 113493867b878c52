use super::*;
use rowbus_core::{fixture, Op};

fn row(id: i64, v: &str) -> Row {
    Row {
        columns: vec![Arc::from("id"), Arc::from("v")].into(),
        values: vec![Value::Int(id), Value::Text(v.into())],
    }
}

fn event(op: Op, pos: u64, before: Option<Row>, after: Option<Row>) -> Arc<ChangeEvent> {
    let source = fixture::source("b.000001", pos, false);
    Arc::new(fixture::change(op, ("Shop", "T"), before, after, source))
}

fn text(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| String::from_utf8(a.lines.clone()).unwrap())
        .collect()
}

/// The version of a change at `pos` of file 1, row 0.
fn v(pos: u64) -> u64 {
    (1 << 37) | (pos << 1) | 1
}

#[test]
fn changes_become_versioned_actions_and_only_the_last_per_document_stays() {
    let batch = [
        event(Op::Insert, 100, None, Some(row(1, "a"))),
        event(Op::Insert, 200, None, Some(row(2, "b"))),
        event(Op::Update, 300, Some(row(1, "a")), Some(row(1, "a2"))),
        // A key change: 2 becomes 3.
        event(Op::Update, 400, Some(row(2, "b")), Some(row(3, "c"))),
        event(Op::Delete, 500, Some(row(1, "a2")), None),
    ];
    let config = SearchSinkConfig::default();
    let actions = plan(&config, &mut NativeEncoder::default(), &batch).unwrap();
    let expected = format!(
        concat!(
            "{{\"delete\":{{\"_index\":\"shop.t\",\"_id\":\"2\",\"version\":{v4},\"version_type\":\"external\"}}}}\n",
            "{{\"index\":{{\"_index\":\"shop.t\",\"_id\":\"3\",\"version\":{v4},\"version_type\":\"external\"}}}}\n",
            "{{\"id\":3,\"v\":\"c\"}}\n",
            "{{\"delete\":{{\"_index\":\"shop.t\",\"_id\":\"1\",\"version\":{v5},\"version_type\":\"external\"}}}}\n",
        ),
        v4 = v(400),
        v5 = v(500)
    );
    assert_eq!(text(&actions), expected);
}

#[test]
fn update_mode_sends_every_change_as_a_partial_upsert_without_versions() {
    let batch = [
        event(Op::Insert, 100, None, Some(row(1, "a"))),
        event(Op::Update, 300, Some(row(1, "a")), Some(row(1, "a2"))),
    ];
    let config = SearchSinkConfig {
        write: WriteMode::Update,
        index: "idx_{table}".into(),
        ..Default::default()
    };
    let actions = plan(&config, &mut NativeEncoder::default(), &batch).unwrap();
    assert_eq!(
        text(&actions),
        concat!(
            "{\"update\":{\"_index\":\"idx_t\",\"_id\":\"1\"}}\n",
            "{\"doc\":{\"id\":1,\"v\":\"a\"},\"doc_as_upsert\":true}\n",
            "{\"update\":{\"_index\":\"idx_t\",\"_id\":\"1\"}}\n",
            "{\"doc\":{\"id\":1,\"v\":\"a2\"},\"doc_as_upsert\":true}\n",
        )
    );
}

#[test]
fn the_id_is_made_of_the_configured_columns() {
    let config = SearchSinkConfig {
        id_columns: [("Shop.T".to_string(), vec!["v".into(), "id".into()])].into(),
        id_separator: ":".into(),
        ..Default::default()
    };
    let batch = [event(Op::Insert, 100, None, Some(row(7, "x y")))];
    let actions = plan(&config, &mut NativeEncoder::default(), &batch).unwrap();
    assert_eq!(actions[0].id, "x y:7");

    let wrong = SearchSinkConfig {
        id_columns: [("Shop.T".to_string(), vec!["nope".into()])].into(),
        ..Default::default()
    };
    let e = plan(&wrong, &mut NativeEncoder::default(), &batch).unwrap_err();
    assert_eq!(e, "Shop.T has no column `nope` for the document id");
}

#[test]
fn a_table_without_a_key_needs_id_columns() {
    let mut e = (*event(Op::Insert, 100, None, Some(row(7, "x")))).clone();
    e.key = Row::default();
    let err = plan(
        &SearchSinkConfig::default(),
        &mut NativeEncoder::default(),
        &[Arc::new(e)],
    )
    .unwrap_err();
    assert_eq!(err, "Shop.T has no primary key: set id_columns for it");
}
