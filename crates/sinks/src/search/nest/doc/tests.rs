use super::*;

fn fields() -> Vec<Arc<str>> {
    vec![Arc::from("items")]
}

fn row(v: Value) -> Source {
    v.as_object().expect("an object").clone()
}

fn parent(version: u64, row_: Option<Value>) -> Edit {
    Edit {
        version,
        what: What::Parent(row_.map(row)),
    }
}

fn child(version: u64, id: &str, row_: Option<Value>) -> Edit {
    Edit {
        version,
        what: What::Child {
            field: "items".into(),
            id: id.into(),
            row: row_.map(row),
        },
    }
}

fn run(doc: &mut Option<Source>, edits: &[Edit]) {
    for edit in edits {
        apply(doc, &fields(), edit).unwrap();
    }
}

/// The document without its versions.
fn visible(doc: &Option<Source>) -> Option<Value> {
    doc.as_ref().map(|s| {
        let mut s = s.clone();
        s.remove(META);
        Value::Object(s)
    })
}

#[test]
fn children_are_inserted_updated_and_deleted_in_place() {
    let mut doc = None;
    run(
        &mut doc,
        &[
            parent(10, Some(json!({"id": 1, "who": "ann"}))),
            child(11, "1", Some(json!({"id": 1, "qty": 1}))),
            child(13, "2", Some(json!({"id": 2, "qty": 2}))),
            child(15, "3", Some(json!({"id": 3, "qty": 3}))),
            child(17, "2", Some(json!({"id": 2, "qty": 20}))),
            child(19, "1", None),
            parent(21, Some(json!({"id": 1, "who": "bob"}))),
        ],
    );
    assert_eq!(
        visible(&doc),
        Some(json!({"id": 1, "who": "bob", "items": [{"id": 2, "qty": 20}, {"id": 3, "qty": 3}]}))
    );
    assert_eq!(
        doc.as_ref().unwrap()[META],
        json!({"v": 21, "nested": {"items": [
            {"id": "1", "v": 19, "gone": true},
            {"id": "2", "v": 17, "gone": false},
            {"id": "3", "v": 15, "gone": false},
        ]}})
    );
}

#[test]
fn replaying_older_or_equal_changes_changes_nothing() {
    let edits = [
        parent(10, Some(json!({"id": 1, "who": "ann"}))),
        child(11, "1", Some(json!({"id": 1, "qty": 1}))),
        child(13, "1", Some(json!({"id": 1, "qty": 5}))),
        child(15, "2", Some(json!({"id": 2, "qty": 2}))),
        child(17, "2", None),
        parent(19, Some(json!({"id": 1, "who": "bob"}))),
    ];
    let mut once = None;
    run(&mut once, &edits);
    let mut again = once.clone();
    run(&mut again, &edits);
    assert_eq!(again, once);
    // A deleted child's older insert does not bring it back; an older parent image is ignored.
    run(&mut again, &[edits[3].clone(), edits[0].clone()]);
    assert_eq!(again, once);
    assert_eq!(
        visible(&once),
        Some(json!({"id": 1, "who": "bob", "items": [{"id": 1, "qty": 5}]}))
    );
}

#[test]
fn children_before_their_parent_make_a_document_the_parent_fills() {
    let mut doc = None;
    run(
        &mut doc,
        &[child(5, "7", None), child(11, "1", Some(json!({"id": 1})))],
    );
    assert_eq!(visible(&doc), Some(json!({"items": [{"id": 1}]})));
    run(&mut doc, &[parent(12, Some(json!({"id": 9})))]);
    assert_eq!(visible(&doc), Some(json!({"id": 9, "items": [{"id": 1}]})));
    // A delete of a child of no document makes none.
    let mut none = None;
    run(&mut none, &[child(3, "1", None)]);
    assert_eq!(none, None);
}

#[test]
fn a_parent_delete_removes_the_document_and_a_later_insert_starts_empty() {
    let mut doc = None;
    run(
        &mut doc,
        &[
            parent(10, Some(json!({"id": 1}))),
            child(11, "1", Some(json!({"id": 1}))),
            parent(13, None),
        ],
    );
    assert_eq!(doc, None);
    run(&mut doc, &[parent(15, Some(json!({"id": 1, "n": 2})))]);
    assert_eq!(visible(&doc), Some(json!({"id": 1, "n": 2, "items": []})));
}

#[test]
fn a_child_deleted_and_inserted_again_moves_to_the_end() {
    let mut doc = None;
    run(
        &mut doc,
        &[
            child(11, "1", Some(json!({"id": 1}))),
            child(13, "2", Some(json!({"id": 2}))),
            child(15, "1", None),
            child(17, "1", Some(json!({"id": 1, "again": true}))),
        ],
    );
    assert_eq!(
        visible(&doc),
        Some(json!({"items": [{"id": 2}, {"id": 1, "again": true}]}))
    );
}

#[test]
fn an_array_changed_by_another_writer_is_an_error() {
    let mut doc = None;
    run(&mut doc, &[child(11, "1", Some(json!({"id": 1})))]);
    doc.as_mut().unwrap().insert("items".into(), json!([]));
    let e = apply(&mut doc, &fields(), &child(13, "2", Some(json!({"id": 2})))).unwrap_err();
    assert_eq!(
        e,
        "field `items` has 0 elements where rowbus wrote 1: another writer changed it (rebuild the index)"
    );
}
