//! Each step on exact changes, compile errors with their positions, runtime errors.

use crate::{compile, Chain, Level, StepConfig};
use rowbus_core::event::{ChangeEvent, Op, Row, SourceEvent, SourceInfo};
use rowbus_core::transform::{Output, Targets, Transform};
use rowbus_core::Value;
use std::sync::Arc;

const SINKS: [&str; 3] = ["main", "archive", "audit"];

fn steps(toml_text: &str) -> Vec<StepConfig> {
    #[derive(serde::Deserialize)]
    struct File {
        transforms: Vec<StepConfig>,
    }
    let file: File = toml::from_str(toml_text).expect("valid TOML");
    file.transforms
}

fn chain(toml_text: &str) -> Chain {
    let sinks: Vec<String> = SINKS.iter().map(|s| s.to_string()).collect();
    let mut errors = Vec::new();
    let chain = compile(
        &steps(toml_text),
        "transforms",
        Level::Pipeline { sinks: &sinks },
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    chain.expect("steps")
}

fn errors(toml_text: &str, level: Level<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    assert!(compile(&steps(toml_text), "transforms", level, &mut errors).is_none());
    errors
        .into_iter()
        .map(|(p, m)| format!("{p}: {m}"))
        .collect()
}

fn row(pairs: &[(&str, Value)]) -> Row {
    let columns: Vec<Arc<str>> = pairs.iter().map(|(c, _)| Arc::from(*c)).collect();
    Row {
        columns: columns.into(),
        values: pairs.iter().map(|(_, v)| v.clone()).collect(),
    }
}

fn user(id: i64, email: &str, status: &str, amount: &str) -> Row {
    row(&[
        ("id", Value::Int(id)),
        ("email", Value::Text(email.into())),
        ("status", Value::Text(status.into())),
        ("amount", Value::Decimal(amount.into())),
    ])
}

fn event(op: Op, db: &str, before: Option<Row>, after: Option<Row>) -> Arc<ChangeEvent> {
    let image = after.as_ref().or(before.as_ref()).unwrap();
    let key = row(&[("id", image.get("id").unwrap().clone())]);
    Arc::new(ChangeEvent {
        partition_key: None,
        origin: None,
        op,
        db: db.into(),
        table: "users".into(),
        key,
        before,
        after,
        source: SourceInfo {
            event: Arc::new(SourceEvent {
                name: "s".into(),
                server_id: 1,
                file: "b.000001".into(),
                pos: 4,
                gtid: None,
                txn: "t".into(),
                ts_ms: 0,
                snapshot: false,
                sinks: None,
            }),
            row: 0,
        },
        read_ts_ms: 0,
        ddl: None,
    })
}

fn insert(id: i64, status: &str) -> Arc<ChangeEvent> {
    event(
        Op::Insert,
        "shop",
        None,
        Some(user(id, "ann@example.com", status, "12.50")),
    )
}

fn run(chain: &mut Chain, event: &Arc<ChangeEvent>) -> Vec<Output> {
    let mut out = Vec::new();
    chain.apply(event.clone(), &mut out).expect("applies");
    out
}

/// `db.table key after` of each output, as JSON.
fn shown(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .map(|o| {
            let e = &o.event;
            format!(
                "{}.{} {} {}",
                e.db,
                e.table,
                serde_json::to_string(&e.key).unwrap(),
                serde_json::to_string(&e.after).unwrap()
            )
        })
        .collect()
}

#[test]
fn keep_and_drop_columns() {
    let mut keep = chain("[[transforms]]\nkeep = [\"id\", \"status\"]");
    assert_eq!(
        shown(&run(&mut keep, &insert(1, "new"))),
        [r#"shop.users {"id":1} {"id":1,"status":"new"}"#]
    );
    let mut drop = chain("[[transforms]]\ndrop = [\"email\", \"amount\"]");
    let update = event(
        Op::Update,
        "shop",
        Some(user(1, "a@x", "new", "1.00")),
        Some(user(1, "a@x", "paid", "1.00")),
    );
    let out = run(&mut drop, &update);
    assert_eq!(
        shown(&out),
        [r#"shop.users {"id":1} {"id":1,"status":"paid"}"#]
    );
    assert_eq!(
        serde_json::to_string(&out[0].event.before).unwrap(),
        r#"{"id":1,"status":"new"}"#
    );
    // The source event is untouched.
    assert_eq!(update.after.as_ref().unwrap().values.len(), 4);
}

#[test]
fn rename_columns_tables_and_databases() {
    let mut c = chain(
        r#"
[[transforms]]
rename = { id = "user_id", email = "mail" }
[[transforms]]
rename_table = "{table}_v2"
[[transforms]]
rename_db = "analytics_{db}"
"#,
    );
    assert_eq!(
        shown(&run(&mut c, &insert(7, "new"))),
        [
            r#"analytics_shop.users_v2 {"user_id":7} {"user_id":7,"mail":"ann@example.com","status":"new","amount":"12.50"}"#
        ]
    );
}

#[test]
fn mask_and_hash_leave_null_alone() {
    std::env::set_var("ROWBUS_TEST_SALT", "pepper");
    let mut c = chain(
        r#"
[[transforms]]
hash = ["email"]
salt_env = "ROWBUS_TEST_SALT"
[[transforms]]
mask = ["status", "amount"]
mask_with = "xxx"
"#,
    );
    assert_eq!(
        shown(&run(&mut c, &insert(1, "new"))),
        [
            r#"shop.users {"id":1} {"id":1,"email":"831740710d6a8225c6ad8e71610353afdfcf9f6a3caa448dc11ab17a513081c2","status":"xxx","amount":"xxx"}"#
        ]
    );
    let mut nulls = user(2, "", "", "0");
    nulls.values[1] = Value::Null;
    let out = run(&mut c, &event(Op::Insert, "shop", None, Some(nulls)));
    assert_eq!(
        shown(&out),
        [r#"shop.users {"id":2} {"id":2,"email":null,"status":"xxx","amount":"xxx"}"#]
    );
}

#[test]
fn filter_keeps_what_the_predicate_accepts_in_its_tables() {
    let mut c = chain(
        r#"
[[transforms]]
filter = 'row.status != "deleted" && row.amount >= 10'
tables = ["shop.*"]
"#,
    );
    assert_eq!(run(&mut c, &insert(1, "new")).len(), 1);
    assert_eq!(run(&mut c, &insert(2, "deleted")).len(), 0);
    let small = event(Op::Insert, "shop", None, Some(user(3, "a", "new", "9.99")));
    assert_eq!(run(&mut c, &small).len(), 0);
    // A delete is judged by its before image; another database is not filtered.
    let delete = event(
        Op::Delete,
        "shop",
        Some(user(4, "a", "deleted", "50")),
        None,
    );
    assert_eq!(run(&mut c, &delete).len(), 0);
    let other = event(Op::Insert, "crm", None, Some(user(5, "a", "deleted", "1")));
    assert_eq!(run(&mut c, &other).len(), 1);
    let mut ops =
        chain("[[transforms]]\nfilter = 'op != \"d\" && db == \"shop\" && table == \"users\"'");
    assert_eq!(run(&mut ops, &delete).len(), 0);
    assert_eq!(run(&mut ops, &insert(1, "x")).len(), 1);
}

#[test]
fn a_new_key_keeps_the_source_key_for_partitioning() {
    let mut c = chain("[[transforms]]\nkey = [\"email\", \"id\"]");
    let out = run(&mut c, &insert(9, "new"));
    let e = &out[0].event;
    assert_eq!(
        serde_json::to_string(&e.key).unwrap(),
        r#"{"email":"ann@example.com","id":9}"#
    );
    assert_eq!(serde_json::to_string(e.partition()).unwrap(), r#"{"id":9}"#);
    let mut p = chain("[[transforms]]\npartition = [\"status\"]");
    let out = run(&mut p, &insert(9, "new"));
    assert_eq!(
        serde_json::to_string(&out[0].event.key).unwrap(),
        r#"{"id":9}"#
    );
    assert_eq!(
        serde_json::to_string(out[0].event.partition()).unwrap(),
        r#"{"status":"new"}"#
    );
}

#[test]
fn set_adds_constants_and_computed_fields_per_image() {
    let mut c = chain(
        r#"
[[transforms]]
set = { region = '"eu"', cents = 'row.amount * 100.0', status = 'row.status.to_upper()' }
"#,
    );
    let update = event(
        Op::Update,
        "shop",
        Some(user(1, "a", "new", "1.50")),
        Some(user(1, "a", "paid", "2.00")),
    );
    let out = run(&mut c, &update);
    let e = &out[0].event;
    assert_eq!(
        serde_json::to_string(&e.before).unwrap(),
        r#"{"id":1,"email":"a","status":"NEW","amount":"1.50","cents":150.0,"region":"eu"}"#
    );
    assert_eq!(
        serde_json::to_string(&e.after).unwrap(),
        r#"{"id":1,"email":"a","status":"PAID","amount":"2.00","cents":200.0,"region":"eu"}"#
    );
}

#[test]
fn route_and_copy_choose_sinks() {
    let mut c = chain(
        r#"
[[transforms]]
route = ["main"]
if = 'db == "shop"'
[[transforms]]
route = ["audit"]
if = 'db == "crm"'
[[transforms]]
copy = "archive"
copy_key = ["id", "status"]
if = 'row.status == "closed"'
[[transforms]]
mask = ["email"]
"#,
    );
    let only = |sinks: &[usize]| Targets::Only(sinks.to_vec().into());
    let out = run(&mut c, &insert(1, "new"));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].targets, only(&[0]));
    let crm = event(Op::Insert, "crm", None, Some(user(2, "b", "new", "1")));
    assert_eq!(run(&mut c, &crm)[0].targets, only(&[2]));
    let out = run(&mut c, &insert(3, "closed"));
    assert_eq!(
        shown(&out),
        [
            r#"shop.users {"id":3} {"id":3,"email":"****","status":"closed","amount":"12.50"}"#,
            r#"shop.users {"id":3,"status":"closed"} {"id":3,"email":"****","status":"closed","amount":"12.50"}"#,
        ]
    );
    assert_eq!(out[0].targets, only(&[0]));
    assert_eq!(out[1].targets, only(&[1]));
    // Routes narrow: an event routed to main, then to audit, goes nowhere.
    let mut both = chain("[[transforms]]\nroute = [\"main\"]\n[[transforms]]\nroute = [\"audit\"]");
    assert_eq!(run(&mut both, &insert(1, "x"))[0].targets, only(&[]));
}

#[test]
fn scripts_change_drop_and_keep_exact_values() {
    let mut c = chain(
        r#"
[[transforms]]
script = '''
if row.status == "spam" { return false; }
after.email = after.email.sub_string(1);
after.domain = after.email.split("@")[1];
after.remove("status");
table = "people";
'''
"#,
    );
    let out = run(&mut c, &insert(1, "new"));
    assert_eq!(
        shown(&out),
        [
            r#"shop.people {"id":1} {"id":1,"email":"nn@example.com","amount":"12.50","domain":"example.com"}"#
        ]
    );
    // The untouched DECIMAL keeps its exact text, not a float.
    assert_eq!(
        out[0].event.after.as_ref().unwrap().get("amount"),
        Some(&Value::Decimal("12.50".into()))
    );
    assert!(run(&mut c, &insert(2, "spam")).is_empty());
}

#[test]
fn a_script_turns_a_delete_into_a_soft_delete() {
    let mut c = chain(
        r#"
[[transforms]]
script = 'if op == "d" { op = "u"; after = before; after.deleted = true; }'
"#,
    );
    let delete = event(
        Op::Delete,
        "shop",
        Some(user(4, "a@b", "paid", "5.00")),
        None,
    );
    let out = run(&mut c, &delete);
    let e = &out[0].event;
    assert_eq!(e.op, Op::Update);
    assert_eq!(
        serde_json::to_string(&e.after).unwrap(),
        r#"{"id":4,"email":"a@b","status":"paid","amount":"5.00","deleted":1}"#
    );
    assert_eq!(e.before, delete.before);
    let mut bad = chain("[[transforms]]\nscript = 'op = \"ddl\";'");
    let mut out = Vec::new();
    assert_eq!(
        bad.apply(delete.clone(), &mut out).unwrap_err().error,
        "transforms[0] (script): a script cannot turn a row change into a schema change or marker, or back"
    );
}

#[test]
fn row_steps_leave_schema_changes_alone() {
    let mut c =
        chain("[[transforms]]\nfilter = 'row.id > 100'\n[[transforms]]\nrename_db = \"copy\"");
    let mut ddl = (*insert(1, "x")).clone();
    ddl.op = Op::Ddl;
    ddl.after = None;
    let out = run(&mut c, &Arc::new(ddl));
    assert_eq!(out.len(), 1);
    assert_eq!(&*out[0].event.db, "copy");
}

#[test]
fn runtime_errors_name_the_step_and_the_position() {
    let mut c = chain("[[transforms]]\nkeep = [\"id\", \"amount\"]\n[[transforms]]\nfilter = 'row.id / (row.amount.to_int() - 12) > 0'");
    let mut out = Vec::new();
    let rejected = c.apply(insert(1, "x"), &mut out).unwrap_err();
    assert!(out.is_empty());
    // The change as it came, before `keep` changed it: the failure log keeps that.
    assert_eq!(rejected.event, insert(1, "x"));
    let error = rejected.error;
    assert_eq!(
        error,
        "transforms[1] (filter): line 1, column 8: Division by zero: 1 / 0"
    );
    // A chain that changes nothing before it may fail changes in place, and still gives back
    // the change as it came.
    let mut in_place =
        chain("[[transforms]]\nfilter = 'row.id / 0 > 1'\n[[transforms]]\nmask = [\"email\"]");
    assert!(!in_place.keep_original);
    let rejected = in_place.apply(insert(1, "x"), &mut out).unwrap_err();
    assert_eq!(rejected.event, insert(1, "x"));
    let mut not_bool = chain("[[transforms]]\nfilter = 'row.id'");
    assert_eq!(
        not_bool.apply(insert(1, "x"), &mut out).unwrap_err().error,
        "transforms[0] (filter): the condition must give true or false, not a value of type i64"
    );
    let mut missing = chain("[[transforms]]\nkey = [\"nope\"]");
    assert_eq!(
        missing.apply(insert(1, "x"), &mut out).unwrap_err().error,
        "transforms[0] (key): column `nope` is not in the row"
    );
}

#[test]
fn compile_errors_say_where() {
    let sinks = vec!["main".to_string()];
    let pipeline = || Level::Pipeline { sinks: &sinks };
    assert_eq!(
        errors(
            "[[transforms]]\nfilter = '''row.id > 1 &&\n  (row.x +'''",
            pipeline()
        ),
        ["transforms[0].filter: line 2, column 11: Script is incomplete"]
    );
    assert_eq!(
        errors("[[transforms]]\nfilter = 'rwo.id > 1'", pipeline()),
        ["transforms[0].filter: line 1, column 1: Undefined variable: rwo"]
    );
    assert_eq!(
        errors("[[transforms]]\nroute = [\"main\", \"nope\"]", pipeline()),
        ["transforms[0].route: no sink `nope` (sinks: main)"]
    );
    assert_eq!(
        errors("[[transforms]]\ncopy = \"main\"", Level::Sink),
        ["transforms[0].copy: only the pipeline's transforms route and copy; move this step to [[transforms]]"]
    );
    assert_eq!(
        errors("[[transforms]]\nkeep = [\"a\"]\ndrop = [\"b\"]\n[[transforms]]\nhash = [\"a\"]\n[[transforms]]\ntables = [\"x\"]", pipeline()),
        [
            "transforms[0]: a step has one action; this one has keep, drop: split it into steps",
            "transforms[1].hash: needs a salt: set salt_env or salt_file (an unsalted hash of a short value is easily reversed)",
            "transforms[2].tables[0]: `x` is not a db.table pattern (expected e.g. \"shop.*\" or \"*.orders\")",
            "transforms[2]: a step needs one action: keep, drop, rename, rename_table, rename_db, mask, hash, filter, key, partition, set, route, copy, script, script_file",
        ]
    );
    assert_eq!(
        errors(
            "[[transforms]]\nscript = '''\nlet x = 1;\nafter.y = x +;\n'''",
            pipeline()
        ),
        ["transforms[0].script: line 2, column 14: Unexpected ';'"]
    );
}

/// Not a test: `cargo test --release -p rowbus-transform -- --ignored --nocapture chain_speed`
/// prints the cost of typical steps per change, for profiling.
#[test]
#[ignore]
fn chain_speed() {
    let cases = [
        ("filter", "[[transforms]]\nfilter = 'row.status != \"spam\"'"),
        ("rename", "[[transforms]]\nrename = { email = \"email_address\", id = \"key\" }"),
        ("mask", "[[transforms]]\nmask = [\"email\"]"),
        (
            "filter+rename+mask",
            "[[transforms]]\nfilter = 'row.status != \"spam\"'\n[[transforms]]\nrename = { email = \"email_address\" }\n[[transforms]]\nmask = [\"status\"]",
        ),
    ];
    let event = insert(1, "ok");
    for (name, text) in cases {
        let mut c = chain(text);
        let mut out = Vec::new();
        let n = 1_000_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            out.clear();
            c.apply(event.clone(), &mut out).unwrap();
        }
        println!("{name}: {} ns/change", start.elapsed().as_nanos() / n);
    }
}

/// The native predicate path and Rhai agree on every verdict the native path gives.
#[test]
fn native_predicates_agree_with_rhai() {
    let expressions = [
        r#"row.status != "spam""#,
        r#"row.status == "ok" && row.amount > 10"#,
        "row.amount >= 12.5",
        "row.amount < 12.5",
        "row.id == 1.0",
        "row.id <= 1",
        "row.missing == ()",
        "row.missing != 1",
        "row.note == ()",
        "row.note != ()",
        "row.note <= ()",
        "row.note >= ()",
        "row.status > 1",
        r#"row.id == "1""#,
        r#"row.id != "1""#,
        "row.big > 0",
        "row.year == 2024",
        r#"row.day > "2024-01-01" && row.day < "2024-12-31""#,
        r#"op == "c" && db == "shop" && table == "users""#,
        r#"!(row.id > 1) || table == "users""#,
        "key.id == 1",
        "before.id == 1",
        "after.id == 1",
        r#"row["status"] == "ok""#,
        "true && !false",
        r#"row.tags == "a""#,
    ];
    let extra = |mut r: Row| {
        let mut columns: Vec<Arc<str>> = r.columns.to_vec();
        for (name, value) in [
            ("note", Value::Null),
            ("big", Value::UInt(u64::MAX)),
            ("year", Value::Year(2024)),
            (
                "day",
                Value::Date {
                    year: 2024,
                    month: 5,
                    day: 17,
                },
            ),
            ("tags", Value::Labels(vec![Arc::from("a")].into())),
        ] {
            columns.push(name.into());
            r.values.push(value);
        }
        r.columns = columns.into();
        r
    };
    let events = [
        event(
            Op::Insert,
            "shop",
            None,
            Some(extra(user(1, "a", "ok", "12.50"))),
        ),
        event(
            Op::Update,
            "shop",
            Some(extra(user(1, "a", "ok", "9"))),
            Some(extra(user(1, "a", "spam", "10.00"))),
        ),
        event(
            Op::Delete,
            "crm",
            Some(extra(user(2, "b", "ok", "100"))),
            None,
        ),
    ];
    let engine = crate::script::engine();
    let mut native = 0;
    for text in expressions {
        let mut expr = crate::script::Expr::compile(&engine, text).unwrap();
        for e in &events {
            let fast = expr.native(e);
            let rhai = expr.eval(e, None).map(|v| v.as_bool());
            if let Some(verdict) = fast {
                native += 1;
                assert_eq!(rhai, Ok(Ok(verdict)), "`{text}` on {:?}", e.op);
            }
        }
    }
    // Most verdicts were native; the rest (SETs, absent images) were Rhai's.
    assert!(native >= 60, "{native}");
}

#[test]
fn a_transformed_change_parks_with_its_source_row() {
    use rowbus_core::failure::record::parking_of;
    std::env::set_var("ROWBUS_TEST_SALT", "pepper");
    let mut c = chain(
        r#"
[[transforms]]
rename = { id = "user_id" }
[[transforms]]
rename_table = "people"
[[transforms]]
hash = ["user_id"]
salt_env = "ROWBUS_TEST_SALT"
[[transforms]]
copy = "archive"
"#,
    );
    let update = event(
        Op::Update,
        "shop",
        Some(user(1, "a", "new", "1")),
        Some(user(2, "a", "new", "1")),
    );
    let out = run(&mut c, &update);
    assert_eq!(out.len(), 2);
    assert_eq!(&*out[0].event.table, "people");
    for o in &out {
        // As the change came: the log parks both under shop.users and ids 2 (and 1 before it).
        assert_eq!(parking_of(&o.event), parking_of(&update));
    }
    assert_eq!(parking_of(&update).old_key, r#"shop.users:{"id":1}"#);
}

#[test]
fn whole_images_are_bound_when_an_expression_uses_them() {
    let mut c = chain("[[transforms]]\nfilter = 'before != after'");
    let same = event(
        Op::Update,
        "shop",
        Some(user(1, "a", "new", "1")),
        Some(user(1, "a", "new", "1")),
    );
    let changed = event(
        Op::Update,
        "shop",
        Some(user(1, "a", "new", "1")),
        Some(user(1, "a", "paid", "1")),
    );
    assert_eq!(run(&mut c, &same).len(), 0);
    assert_eq!(run(&mut c, &changed).len(), 1);
    let mut size = chain("[[transforms]]\nfilter = 'row.len() == 4'");
    assert_eq!(run(&mut size, &insert(1, "x")).len(), 1);
}

#[test]
fn conditions_judge_row_changes_only() {
    let mut c = chain("[[transforms]]\nroute = [\"main\"]\nif = 'row.status == \"x\"'");
    let mut ddl = (*insert(1, "x")).clone();
    ddl.op = Op::Ddl;
    ddl.after = None;
    let out = run(&mut c, &Arc::new(ddl));
    assert_eq!(out[0].targets, Targets::All);
    assert_eq!(
        run(&mut c, &insert(1, "x"))[0].targets,
        Targets::Only(vec![0].into())
    );
}

#[test]
fn steps_are_checked_for_their_own_mistakes() {
    let sinks = vec!["main".to_string()];
    assert_eq!(
        errors(
            "[[transforms]]\ncopy = \"main\"\ncopy_key = []\n[[transforms]]\nrename = { a = \"x\", b = \"x\" }\n[[transforms]]\nrename_table = \"t x\"",
            Level::Pipeline { sinks: &sinks }
        ),
        [
            "transforms[0].copy_key: needs at least one column",
            "transforms[1].rename: `a` and `b` are both renamed to `x`",
            "transforms[2].rename_table: `t x` is not a name template (letters, digits, `_`, `$`, `-`, and {db} or {table})",
        ]
    );
}
