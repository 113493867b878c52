//! The schema history against a real server: rows written around ALTERs arrive with the names and
//! types of their own moment (with MINIMAL row metadata, where only the history knows the names,
//! and with FULL), a replay from an old checkpoint reads old rows with old names, gh-ost and
//! pt-online-schema-change swaps leave the right names, and DDL the history cannot follow stops the
//! stream or refreshes as configured, but never on excluded tables.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb, MariaDbOptions, RowMetadata};
use serde_json::{json, Value};
use std::time::Duration;

async fn server_with(metadata: RowMetadata) -> MariaDb {
    MariaDb::start(MariaDbOptions {
        row_metadata: metadata,
        ..Default::default()
    })
}

/// Runs statements in `db`, one after another.
async fn sql(server: &MariaDb, db: &str, statements: &[&str]) {
    let mut conn = server.conn().await;
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    for s in statements {
        conn.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// The `after` images of the row events, in order.
fn afters(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["op"] == "c" || e["op"] == "u")
        .map(|e| e["after"].clone())
        .collect()
}

const ALTERS: &[&str] = &[
    "INSERT INTO t VALUES (1, 10, 'one')",
    "ALTER TABLE t ADD COLUMN c INT AFTER a",
    "INSERT INTO t VALUES (2, 20, 200, 'two')",
    "ALTER TABLE t DROP COLUMN b",
    "INSERT INTO t VALUES (3, 30, 300)",
    "ALTER TABLE t RENAME COLUMN a TO a2",
    "INSERT INTO t VALUES (4, 40, 400)",
    "ALTER TABLE t MODIFY a2 BIGINT UNSIGNED, CHANGE c c2 VARCHAR(5) CHARACTER SET latin1 FIRST",
    "INSERT INTO t (id, a2, c2) VALUES (5, 18446744073709551615, 'é')",
];

fn expected_after_alters() -> Vec<Value> {
    vec![
        json!({"id": 1, "a": 10, "b": "one"}),
        json!({"id": 2, "a": 20, "c": 200, "b": "two"}),
        json!({"id": 3, "a": 30, "c": 300}),
        json!({"id": 4, "a2": 40, "c": 400}),
        json!({"c2": "é", "id": 5, "a2": 18446744073709551615u64}),
    ]
}

async fn rows_follow_alters(metadata: RowMetadata) {
    let server = server_with(metadata).await;
    let db = server.fresh_database("alters").await;
    sql(
        &server,
        &db,
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10))"],
    )
    .await;
    let dir = TestDir::new("alters");
    let config = config_from_now(&server, &dir, &db, "").await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&config)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"schema_changes = true\n"))
        .unwrap();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    sql(&server, &db, ALTERS).await;
    sql(&server, &db, &["TRUNCATE TABLE t"]).await;
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 10));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());

    let got = afters(&events);
    assert_eq!(got, expected_after_alters(), "{metadata:?}");
    // Column order too: the output keeps the table's order after `CHANGE ... FIRST`.
    let text = std::fs::read_to_string(dir.path("out.jsonl")).unwrap();
    assert!(
        text.contains(r#""after":{"c2":"é","id":5,"a2":18446744073709551615}"#),
        "{text}"
    );
    assert_eq!(events[8]["key"], json!({"id": 5}));
    // The schema changes, in place, with the new column lists.
    let ddl: Vec<&Value> = events.iter().filter(|e| e["op"] == "ddl").collect();
    assert_eq!(ddl.len(), 4);
    assert_eq!(ddl[0]["ddl"]["kind"], "alter");
    assert_eq!(ddl[0]["ddl"]["sql"], ALTERS[1]);
    assert_eq!(
        ddl[3]["ddl"]["columns"],
        json!([{"name": "c2", "type": "VARCHAR(5)"}, {"name": "id", "type": "int(11)"}, {"name": "a2", "type": "BIGINT UNSIGNED"}])
    );
    assert_eq!(ddl[3]["ddl"]["primary_key"], json!(["id"]));
    let last = events.last().unwrap();
    assert_eq!((&last["op"], &last["table"]), (&json!("t"), &json!("t")));
    assert_eq!(last["ddl"]["kind"], "truncate");
    assert_eq!(last["ddl"]["sql"], "TRUNCATE TABLE t");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_follow_alters_with_minimal_metadata() {
    rows_follow_alters(RowMetadata::Minimal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_follow_alters_with_full_metadata() {
    rows_follow_alters(RowMetadata::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_from_an_old_checkpoint_reads_old_rows_with_old_names() {
    let server = server_with(RowMetadata::Minimal).await;
    let db = server.fresh_database("replay").await;
    sql(
        &server,
        &db,
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(10))"],
    )
    .await;
    let dir = TestDir::new("replay");
    let config = config_from_now(&server, &dir, &db, "").await;
    let out = dir.path("out.jsonl");
    // A checkpoint before any change.
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| {
        wait_for("an idle checkpoint", Duration::from_secs(20), || {
            checkpoint(&dir)
        });
        rowbus.stop_cleanly()
    });
    let before_alters = std::fs::read(dir.path("data/checkpoints/src.json")).unwrap();

    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    sql(&server, &db, ALTERS).await;
    tokio::task::block_in_place(|| wait_for_events(&out, 5));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(afters(&read_events(&out)), expected_after_alters());

    // Back to the old checkpoint: the history on disk has seen every ALTER already.
    std::fs::write(dir.path("data/checkpoints/src.json"), before_alters).unwrap();
    std::fs::remove_file(&out).unwrap();
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| wait_for_events(&out, 5));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(afters(&read_events(&out)), expected_after_alters());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gh_ost_and_pt_online_schema_change_leave_the_right_names() {
    let server = server_with(RowMetadata::Minimal).await;
    let db = server.fresh_database("osc").await;
    sql(
        &server,
        &db,
        &[
            "CREATE TABLE t (id INT PRIMARY KEY, a INT)",
            "INSERT INTO t VALUES (1, 1)",
        ],
    )
    .await;
    let dir = TestDir::new("osc");
    let config = config_from_now(&server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let q = |s: &str| s.replace("DB", &db);
    // gh-ost's sequence: changelog and ghost tables, row copy, cut-over by an atomic RENAME.
    let gh_ost = [
        q("DROP TABLE IF EXISTS `DB`.`_t_ghc`"),
        q("CREATE TABLE `DB`.`_t_ghc` (id bigint auto_increment, last_update timestamp not null DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, hint varchar(64) charset ascii not null, value varchar(4096) charset ascii not null, primary key(id), unique key hint_uidx(hint)) auto_increment=256"),
        q("CREATE TABLE `DB`.`_t_gho` LIKE `DB`.`t`"),
        q("ALTER TABLE `DB`.`_t_gho` ADD COLUMN b VARCHAR(10) DEFAULT 'x'"),
        q("INSERT INTO `DB`.`_t_ghc` (id, hint, value) VALUES (2, 'state', 'GhostTableMigrated')"),
        q("INSERT IGNORE INTO `DB`.`_t_gho` (`id`, `a`) (SELECT `id`, `a` FROM `DB`.`t` FORCE INDEX (`PRIMARY`))"),
        q("RENAME TABLE `DB`.`t` TO `DB`.`_t_del`, `DB`.`_t_gho` TO `DB`.`t`"),
        q("DROP TABLE IF EXISTS `DB`.`_t_del`"),
        q("DROP TABLE IF EXISTS `DB`.`_t_ghc`"),
        q("INSERT INTO `DB`.`t` VALUES (2, 2, 'gh')"),
    ];
    // pt-online-schema-change's: _t_new, triggers, chunked copy, swap, drop.
    let pt_osc = [
        q("CREATE TABLE `DB`.`_t_new` (id INT PRIMARY KEY, a INT, b VARCHAR(10) DEFAULT 'x', c DATE)"),
        q("CREATE TRIGGER `pt_osc_DB_t_ins` AFTER INSERT ON `DB`.`t` FOR EACH ROW REPLACE INTO `DB`.`_t_new` (`id`, `a`, `b`) VALUES (NEW.`id`, NEW.`a`, NEW.`b`)"),
        q("INSERT LOW_PRIORITY IGNORE INTO `DB`.`_t_new` (`id`, `a`, `b`) SELECT `id`, `a`, `b` FROM `DB`.`t` LOCK IN SHARE MODE"),
        q("INSERT INTO `DB`.`t` VALUES (3, 3, 'during')"),
        q("RENAME TABLE `DB`.`t` TO `DB`.`_t_old`, `DB`.`_t_new` TO `DB`.`t`"),
        q("DROP TABLE IF EXISTS `DB`.`_t_old`"),
        q("DROP TRIGGER IF EXISTS `DB`.`pt_osc_DB_t_ins`"),
        q("INSERT INTO `DB`.`t` VALUES (4, 4, 'pt', '2024-01-31')"),
    ];
    let all: Vec<&str> = gh_ost.iter().chain(&pt_osc).map(String::as_str).collect();
    sql(&server, &db, &all).await;
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| wait_for_events(&out, 3));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let events = read_events(&out);
    let tables: Vec<&str> = events
        .iter()
        .map(|e| e["table"].as_str().unwrap())
        .collect();
    assert!(
        tables.iter().all(|t| *t == "t"),
        "helper tables delivered: {tables:?}"
    );
    assert_eq!(
        afters(&events),
        [
            json!({"id": 2, "a": 2, "b": "gh"}),
            json!({"id": 3, "a": 3, "b": "during"}),
            json!({"id": 4, "a": 4, "b": "pt", "c": "2024-01-31"}),
        ]
    );
}

/// A table the history cannot know: created with the binlog off for the session.
async fn create_unlogged(server: &MariaDb, db: &str, table: &str) {
    sql(
        server,
        db,
        &[
            "SET SESSION sql_log_bin = 0",
            &format!("CREATE TABLE {table} (id INT PRIMARY KEY, a INT)"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_the_history_cannot_follow_stops_or_refreshes_but_never_on_excluded_tables() {
    let server = server_with(RowMetadata::Minimal).await;
    let db = server.fresh_database("unknown_ddl").await;
    sql(&server, &db, &["CREATE TABLE t (id INT PRIMARY KEY)"]).await;

    // Excluded table: ignored, the stream goes on.
    let dir = TestDir::new("unknown-ddl-excluded");
    let config = config_from_now(&server, &dir, &db, &format!("exclude = [\"{db}.hidden\"]")).await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    create_unlogged(&server, &db, "hidden").await;
    sql(
        &server,
        &db,
        &["ALTER TABLE hidden ADD b INT", "INSERT INTO t VALUES (1)"],
    )
    .await;
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 1));
    assert_eq!(events[0]["after"], json!({"id": 1}));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());

    // Included table, on_unknown_ddl = "stop" (the default): stops, naming statement and position.
    let dir = TestDir::new("unknown-ddl-stop");
    let config = config_from_now(&server, &dir, &db, "").await;
    let mut rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    create_unlogged(&server, &db, "u1").await;
    sql(&server, &db, &["ALTER TABLE u1 ADD b INT"]).await;
    let status = tokio::task::block_in_place(|| rowbus.wait());
    assert!(!status.success());
    let log = rowbus.log();
    assert!(
        log.contains("cannot follow the DDL statement at ")
            && log.contains(&format!(
                "on {db}.u1: `{db}`.`u1` is not in the history: `ALTER TABLE u1 ADD b INT`"
            ))
            && log.contains("on_unknown_ddl = \"refresh\""),
        "{log}"
    );

    // on_unknown_ddl = "refresh": re-read from information_schema, rows keep their names.
    let dir = TestDir::new("unknown-ddl-refresh");
    let config = config_from_now(&server, &dir, &db, "on_unknown_ddl = \"refresh\"").await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    create_unlogged(&server, &db, "u2").await;
    sql(
        &server,
        &db,
        &[
            "ALTER TABLE u2 ADD b INT",
            "INSERT INTO u2 VALUES (1, 2, 3)",
        ],
    )
    .await;
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 1));
    assert_eq!(events[0]["after"], json!({"id": 1, "a": 2, "b": 3}));
    wait_for("the refresh to be logged", Duration::from_secs(10), || {
        rowbus
            .log()
            .contains("tables re-read from information_schema")
            .then_some(())
    });
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_uuid_and_inet_columns_arrive_as_text() {
    let server = MariaDb::shared();
    let db = server.fresh_database("uuid_inet").await;
    let dir = TestDir::new("uuid-inet");
    let config = config_from_now(server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    // Created after the start: the types come from the CREATE TABLE the history follows.
    sql(
        server,
        &db,
        &[
            "CREATE TABLE n (id INT PRIMARY KEY, u UUID, i6 INET6, i4 INET4)",
            "INSERT INTO n VALUES (1, '12345678-9abc-1def-8123-456789abcdef', '2001:db8::1', '10.0.0.1'),
               (2, '01890a5d-ac96-774b-bcce-b302099a8057', '::ffff:1.2.3.4', '0.0.0.0'),
               (3, '00000000-0000-0000-0000-000000000000', '::', '255.255.255.255'),
               (4, NULL, '::1.2.3.4', NULL)",
        ],
    )
    .await;
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 4));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(
        afters(&events),
        [
            json!({"id": 1, "u": "12345678-9abc-1def-8123-456789abcdef", "i6": "2001:db8::1", "i4": "10.0.0.1"}),
            json!({"id": 2, "u": "01890a5d-ac96-774b-bcce-b302099a8057", "i6": "::ffff:1.2.3.4", "i4": "0.0.0.0"}),
            json!({"id": 3, "u": "00000000-0000-0000-0000-000000000000", "i6": "::", "i4": "255.255.255.255"}),
            json!({"id": 4, "u": null, "i6": "::1.2.3.4", "i4": null}),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_select_is_followed_inside_its_transaction() {
    let server = server_with(RowMetadata::Minimal).await;
    let db = server.fresh_database("ctas").await;
    sql(
        &server,
        &db,
        &[
            "CREATE TABLE src (id INT PRIMARY KEY, v VARCHAR(5))",
            "INSERT INTO src VALUES (1, 'a')",
        ],
    )
    .await;
    let dir = TestDir::new("ctas");
    let config = config_from_now(&server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    // Logged in ROW format as BEGIN, CREATE TABLE (with its columns), the copied rows, COMMIT.
    sql(
        &server,
        &db,
        &[
            "CREATE TABLE copy (PRIMARY KEY (id)) SELECT id, v FROM src",
            "INSERT INTO copy VALUES (2, 'b')",
            "ALTER TABLE copy ADD w INT UNSIGNED",
            "INSERT INTO copy VALUES (3, 'c', 4294967295)",
        ],
    )
    .await;
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 3));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(
        afters(&events),
        [
            json!({"id": 1, "v": "a"}),
            json!({"id": 2, "v": "b"}),
            json!({"id": 3, "v": "c", "w": 4294967295u32}),
        ]
    );
    assert!(events.iter().all(|e| e["table"] == "copy"));
    assert_eq!(events[2]["key"], json!({"id": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_of_another_server_starts_again_from_this_one() {
    let server = server_with(RowMetadata::Minimal).await;
    let db = server.fresh_database("other_server").await;
    sql(
        &server,
        &db,
        &["CREATE TABLE t (id INT PRIMARY KEY, a INT)"],
    )
    .await;
    let dir = TestDir::new("other-server");
    let config = config_from_now(&server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    // As after a failover: the saved history's positions belong to another server, whose
    // schema had other column names.
    let path = dir.path("data/schema/src.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let ours = text
        .split("\"server\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        &path,
        text.replace(&ours, "99:/elsewhere/mysql-bin")
            .replace("\"name\":\"a\"", "\"name\":\"stale\""),
    )
    .unwrap();
    sql(&server, &db, &["INSERT INTO t VALUES (1, 2)"]).await;
    let rowbus = Rowbus::start(&config);
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 1));
    assert_eq!(afters(&events), [json!({"id": 1, "a": 2})]);
    assert!(
        rowbus.log().contains("holds another server's positions"),
        "{}",
        rowbus.log()
    );
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert!(std::fs::read_to_string(&path).unwrap().contains(&ours));
}
