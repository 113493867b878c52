//! The database sinks against real servers: MariaDB replicated into PostgreSQL and into another
//! MariaDB database, through inserts, updates, deletes and primary-key changes, with rowbus killed
//! and restarted in between, and TRUNCATE TABLE mid-stream; the targets equal the source row for row. Effectively once: after a
//! SIGKILL that loses the checkpoint, a counter on the target shows no row applied twice.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{MariaDb, Rng};
use std::time::Duration;

const SOURCE_TABLE: &str = "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(10,2), \
    at DATETIME(3), big BIGINT UNSIGNED, raw VARBINARY(8), doc JSON, kind ENUM('a','b'), n INT DEFAULT 0)";

const PG_TABLE: &str =
    "CREATE TABLE t (id integer PRIMARY KEY, name varchar(20), amount numeric(10,2), \
    at timestamp(3), big numeric(20), raw bytea, doc jsonb, kind text, n integer)";

const MY_TABLE: &str = "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(10,2), \
    at DATETIME(3), big BIGINT UNSIGNED, raw VARBINARY(8), doc JSON, kind ENUM('a','b'), n INT DEFAULT 0)";

async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, database test)");
    tokio::spawn(connection);
    client
}

/// A fresh source database with `t`, and a PostgreSQL schema of the same name with its copy.
async fn source_and_pg_target(server: &MariaDb, prefix: &str) -> (String, tokio_postgres::Client) {
    let db = server.fresh_database(prefix).await;
    server
        .conn()
        .await
        .query_drop(format!("USE `{db}`; {SOURCE_TABLE}"))
        .await
        .unwrap();
    let client = pg().await;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{db}\" CASCADE; CREATE SCHEMA \"{db}\"; SET search_path = \"{db}\"; {PG_TABLE}"))
        .await
        .unwrap();
    (db, client)
}

/// A random workload on `db`.t: inserts, updates, deletes and key changes, in transactions.
pub(crate) async fn workload(server: &MariaDb, db: &str, rng: &mut Rng, statements: usize) {
    let mut conn = server.conn().await;
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    for _ in 0..statements / 3 {
        let mut txn = String::from("BEGIN;");
        for _ in 0..3 {
            let id = rng.below(40) as i64 + 1;
            let sql = match rng.below(10) {
                0..=3 => format!(
                    "INSERT INTO t VALUES ({id}, 'n{id}-{}', {}.{:02}, '2024-01-{:02} 10:00:00.{:03}', {}, 0x{:02x}00ff, '{{\"k\": {}}}', '{}', 0) \
                     ON DUPLICATE KEY UPDATE name = VALUES(name), n = n + 1",
                    rng.below(1000),
                    rng.below(10000),
                    rng.below(100),
                    rng.below(28) + 1,
                    rng.below(1000),
                    if rng.below(2) == 0 { 18446744073709551615u64 } else { rng.below(1 << 40) },
                    rng.below(256),
                    rng.below(100),
                    if rng.below(2) == 0 { "a" } else { "b" },
                ),
                4..=6 => format!("UPDATE t SET n = n + 1, amount = -amount WHERE id = {id}"),
                7..=8 => format!("DELETE FROM t WHERE id = {id}"),
                _ => format!(
                    "UPDATE IGNORE t SET id = {} WHERE id = {id}",
                    rng.below(40) + 41
                ),
            };
            txn.push_str(&sql);
            txn.push(';');
        }
        txn.push_str("COMMIT");
        conn.query_drop(txn).await.unwrap();
    }
}

/// The source table as text rows, in key order.
pub(crate) async fn source_rows(server: &MariaDb, db: &str) -> Vec<String> {
    let mut conn = server.conn().await;
    conn.query(format!(
        "SELECT CONCAT_WS('|', id, name, amount, DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), big, HEX(raw), \
         JSON_EXTRACT(doc, '$.k'), kind, n) FROM `{db}`.t ORDER BY id"
    ))
    .await
    .unwrap()
}

async fn pg_rows(client: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    client
        .query(
            &format!(
                "SELECT concat_ws('|', id, name, amount, to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'), big, \
                 upper(encode(raw, 'hex')), doc->>'k', kind, n) FROM \"{schema}\".t ORDER BY id"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

pub(crate) fn add_sink(config: &std::path::Path, sink: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, format!("{text}\n{sink}\n")).unwrap();
}

/// Runs the workload in rounds with rowbus killed between some (and, with `truncate`, the table
/// emptied in two of them), then waits for `equal`.
pub(crate) async fn replicate_with_kills<F, Fut>(
    server: &MariaDb,
    db: &str,
    config: &std::path::Path,
    truncate: bool,
    equal: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let seed = Rng::seed_from_env("ROWBUS_TORTURE_SEED");
    println!("database sink workload seed {seed}");
    let mut rng = Rng::new(seed);
    for round in 0..4 {
        let rowbus = Rowbus::start(config);
        rowbus.wait_started();
        workload(server, db, &mut rng, 30).await;
        if truncate && (round == 1 || round == 2) {
            // Emptied mid-stream: the target must be emptied at the same point.
            let mut conn = server.conn().await;
            conn.query_drop(format!("TRUNCATE TABLE `{db}`.t"))
                .await
                .unwrap();
        }
        workload(server, db, &mut rng, 30).await;
        if round % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            rowbus.kill();
        } else {
            tokio::task::block_in_place(|| rowbus.stop_cleanly());
        }
    }
    let rowbus = Rowbus::start(config);
    eventually(&equal, || async {
        format!("the target never caught up (seed {seed})\n{}", rowbus.log())
    })
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_into_postgresql_equals_the_source_after_kills() {
    let server = MariaDb::shared();
    let (db, client) = source_and_pg_target(server, "to_pg").await;
    let dir = TestDir::new("to-pg");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(&config, "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\nworkers = 3\nschema_changes = true\neffectively_once = true");
    replicate_with_kills(server, &db, &config, true, || async {
        source_rows(server, &db).await == pg_rows(&client, &db).await
    })
    .await;
    let rows = pg_rows(&client, &db).await;
    assert!(!rows.is_empty());
    client
        .batch_execute(&format!("DROP SCHEMA \"{db}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_into_another_mariadb_database_equals_the_source_after_kills() {
    let server = MariaDb::shared();
    let db = server.fresh_database("to_my").await;
    let target = server.fresh_database("to_my_target").await;
    server
        .conn()
        .await
        .query_drop(format!(
            "USE `{db}`; {SOURCE_TABLE}; USE `{target}`; {MY_TABLE}"
        ))
        .await
        .unwrap();
    let dir = TestDir::new("to-my");
    // Only the source database: the target's own binlog events are not read back.
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &format!("[sinks.my]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{}\"\nschema = \"{target}\"\nworkers = 2\nschema_changes = true", server.port),
    );
    replicate_with_kills(server, &db, &config, true, || async {
        source_rows(server, &db).await == source_rows(server, &target).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effectively_once_applies_no_row_twice_after_a_lost_checkpoint() {
    let server = MariaDb::shared();
    let db = server.fresh_database("once").await;
    server
        .conn()
        .await
        .query_drop(format!("USE `{db}`; {SOURCE_TABLE}"))
        .await
        .unwrap();
    let client = pg().await;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{db}\" CASCADE; CREATE SCHEMA \"{db}\"; SET search_path = \"{db}\"; {PG_TABLE};
             CREATE TABLE applied (id integer, at timestamptz DEFAULT now());
             CREATE FUNCTION count_apply() RETURNS trigger AS $$ BEGIN INSERT INTO \"{db}\".applied (id) VALUES (NEW.id); RETURN NEW; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER count_apply BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION count_apply();"
        ))
        .await
        .unwrap();
    let dir = TestDir::new("once");
    let config = config_from_now(server, &dir, &db, "").await;
    // The checkpoint is saved once at the start and then only an hour later: a SIGKILL loses it.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "checkpoint_interval = \"200ms\"",
        "checkpoint_interval = \"1h\"",
    );
    std::fs::write(&config, text).unwrap();
    add_sink(&config, "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\nworkers = 2\neffectively_once = true\nbatch_max_events = 5");
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut conn = server.conn().await;
    for id in 1..=30 {
        conn.query_drop(format!(
            "INSERT INTO `{db}`.t (id, name) VALUES ({id}, 'x')"
        ))
        .await
        .unwrap();
    }
    let applied = || async {
        client
            .query_one(&format!("SELECT count(*) FROM \"{db}\".applied"), &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    eventually(
        || async { applied().await >= 30 },
        || async { rowbus.log() },
    )
    .await;
    rowbus.kill();
    // The restart reads all 30 inserts again; the markers of the workers skip them.
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t (id, name) VALUES (31, 'last')"
    ))
    .await
    .unwrap();
    eventually(
        || async { applied().await >= 31 },
        || async { rowbus.log() },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(applied().await, 31, "each row applied once");
    let distinct = client
        .query_one(
            &format!("SELECT count(DISTINCT id) FROM \"{db}\".applied"),
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(distinct, 31);
    // This run's markers (keyed by the data directory's instance id) go too.
    let owner = std::fs::read_to_string(dir.path("data/instance-id")).unwrap();
    let owner = owner.split_whitespace().next().unwrap().to_string();
    client
        .execute(
            "DELETE FROM public.rowbus_applied WHERE sink LIKE $1",
            &[&format!("{owner}:%")],
        )
        .await
        .unwrap();
    client
        .batch_execute(&format!("DROP SCHEMA \"{db}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_are_renamed_and_excluded_on_the_way() {
    let server = MariaDb::shared();
    let db = server.fresh_database("mapping").await;
    server
        .conn()
        .await
        .query_drop(format!(
            "USE `{db}`; CREATE TABLE t (id INT PRIMARY KEY, secret VARCHAR(20), name VARCHAR(20))"
        ))
        .await
        .unwrap();
    let client = pg().await;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"copy_{db}\" CASCADE; CREATE SCHEMA \"copy_{db}\"; \
             CREATE TABLE \"copy_{db}\".people (person_id integer PRIMARY KEY, full_name text)"
        ))
        .await
        .unwrap();
    let dir = TestDir::new("mapping");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &format!(
            "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\n\
             schema = \"copy_{{db}}\"\ntable = \"people\"\nexclude_columns = [\"secret\"]\n\
             rename_columns = {{ \"{db}.t.id\" = \"person_id\", name = \"full_name\" }}"
        ),
    );
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "USE `{db}`; INSERT INTO t VALUES (1, 'pw1', 'Ada'), (2, 'pw2', 'Bob'); UPDATE t SET name = 'Ada L.' WHERE id = 1; \
         UPDATE t SET id = 3 WHERE id = 2; DELETE FROM t WHERE id = 1; INSERT INTO t VALUES (4, 'pw4', 'Cy')"
    ))
    .await
    .unwrap();
    let rows = || async {
        client
            .query(
                &format!("SELECT person_id, full_name FROM \"copy_{db}\".people ORDER BY 1"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, i32>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    };
    let want = vec![(3, "Bob".to_string()), (4, "Cy".to_string())];
    eventually(
        || async { rows().await == want },
        || async { format!("{:?}\n{}", rows().await, rowbus.log()) },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    client
        .batch_execute(&format!("DROP SCHEMA \"copy_{db}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_two_layouts_in_one_batch_and_a_value_too_long() {
    let server = MariaDb::shared();
    let db = server.fresh_database("layouts").await;
    server
        .conn()
        .await
        .query_drop(format!(
            "USE `{db}`; CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10))"
        ))
        .await
        .unwrap();
    let client = pg().await;
    // The target already has the column the source is about to get, and a short `a`.
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{db}\" CASCADE; CREATE SCHEMA \"{db}\"; \
             CREATE TABLE \"{db}\".t (id integer PRIMARY KEY, a varchar(3), x integer)"
        ))
        .await
        .unwrap();
    let dir = TestDir::new("layouts");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(&config, "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\nworkers = 1");
    let mut conn = server.conn().await;
    // Written before rowbus starts: one batch holds both layouts.
    conn.query_drop(format!(
        "USE `{db}`; INSERT INTO t VALUES (1, 'one'), (2, 'two'); ALTER TABLE t ADD x INT AFTER id; \
         INSERT INTO t VALUES (3, 30, 'thr'), (4, 40, 'toolong'); UPDATE t SET a = 'uno' WHERE id = 1"
    ))
    .await
    .unwrap();
    let rowbus = Rowbus::start(&config);
    let rows = || async {
        client
            .query(&format!("SELECT id, a, x FROM \"{db}\".t ORDER BY id"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<_, i32>(0),
                    r.get::<_, Option<String>>(1),
                    r.get::<_, Option<i32>>(2),
                )
            })
            .collect::<Vec<_>>()
    };
    let want = vec![
        (1, Some("uno".to_string()), None),
        (2, Some("two".to_string()), None),
        (3, Some("thr".to_string()), Some(30)),
    ];
    eventually(
        || async { rows().await == want && rowbus.log().contains("event sent to the failure log") },
        || async { format!("{:?}\n{}", rows().await, rowbus.log()) },
    )
    .await;
    // The long value was refused by the column, not cut: its row is in the failure log.
    assert!(rowbus.log().contains("value too long"), "{}", rowbus.log());
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    client
        .batch_execute(&format!("DROP SCHEMA \"{db}\" CASCADE"))
        .await
        .unwrap();
}

/// A database's tables: each with its columns (name and type, in order) and rows as text.
async fn tables_of(server: &MariaDb, db: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut conn = server.conn().await;
    let tables: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME <> 'rowbus_applied' ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let columns: Vec<(String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (db, &table),
            )
            .await
            .unwrap();
        let names: Vec<String> = columns.iter().map(|(n, _)| format!("`{n}`")).collect();
        if names.is_empty() {
            continue; // being created or dropped right now
        }
        let rows: Vec<String> = conn
            .query(format!(
                "SELECT CONCAT_WS('|', {}) FROM `{db}`.`{table}` ORDER BY 1",
                names.join(", ")
            ))
            .await
            // Renamed or dropped between the two reads: not equal yet.
            .unwrap_or_else(|e| vec![format!("(changing: {e})")]);
        let columns = columns
            .into_iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect();
        out.push((table, columns, rows));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_run_on_a_mysql_target_and_the_tables_end_equal() {
    let server = MariaDb::shared();
    let db = server.fresh_database("ddl_src").await;
    let target = server.fresh_database("ddl_target").await;
    let dir = TestDir::new("ddl");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &format!(
            "[sinks.my]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{}\"\nschema = \"{target}\"\n\
             workers = 2\nschema_changes = true\napply_ddl = true\neffectively_once = true\nstate_database = \"{target}\"",
            server.port
        ),
    );
    let mut conn = server.conn().await;
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    let steps = [
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), n INT)",
        "INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)",
        "ALTER TABLE t ADD COLUMN note VARCHAR(10) NOT NULL DEFAULT 'x'",
        "UPDATE t SET note = CONCAT('n', id) WHERE id < 3",
        "ALTER TABLE t DROP COLUMN name, MODIFY n BIGINT",
        "INSERT INTO t VALUES (4, 40, 'four')",
        "RENAME TABLE t TO t2",
        "CREATE TABLE u (k VARCHAR(5) PRIMARY KEY); CREATE TABLE gone (k INT PRIMARY KEY)",
        "INSERT INTO u VALUES ('p'), ('q'); DELETE FROM t2 WHERE id = 1",
        "DROP TABLE gone; TRUNCATE TABLE u; INSERT INTO u VALUES ('r')",
        // One statement, three tables: run once (twice would swap them back).
        "RENAME TABLE t2 TO tmp, u TO t2, tmp TO u",
    ];
    // Killed after the steps that only change rows, with the checkpoint maybe before earlier
    // schema changes: those are not run twice, nor skipped. (A kill in the moment between a
    // schema change and the record of its position runs it again: see the README.)
    for step in steps {
        let rowbus = Rowbus::start(&config);
        rowbus.wait_started();
        conn.query_drop(step).await.unwrap();
        let expected = tables_of(server, &db).await;
        eventually(
            || async { tables_of(server, &target).await == expected },
            || async { format!("after `{step}`: {}", rowbus.log_tail()) },
        )
        .await;
        let rows_only = step.starts_with("INSERT") || step.starts_with("UPDATE");
        if rows_only {
            rowbus.kill();
        } else {
            tokio::task::block_in_place(|| rowbus.stop_cleanly());
        }
    }
    let tables = tables_of(server, &target).await;
    let names: Vec<&str> = tables.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(names, ["t2", "u"]);
    assert_eq!(tables[0].1, ["k varchar(5)"]);
    assert_eq!(tables[0].2, ["r"]);
    assert_eq!(
        tables[1].1,
        ["id int(11)", "n bigint(20)", "note varchar(10)"]
    );
    assert_eq!(tables[1].2, ["2|2|n2", "3|3|x", "4|40|four"]);
}

/// A batch of 300 rows in one statement's arrays: text with tabs, newlines, carriage returns and
/// backslashes, NULLs, and bytes with those codes arrive exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_of_awkward_text_arrives_exactly() {
    let server = MariaDb::shared();
    let (db, client) = source_and_pg_target(server, "to_pg_copy").await;
    let dir = TestDir::new("to-pg-copy");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(&config, "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\nworkers = 1\nbatch_max_events = 5000");
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t SELECT seq, IF(seq % 3 = 0, NULL, CONCAT('a\\tb\\\\c\\nd\\re', seq)), seq / 100,
         '2024-01-31 12:00:00.123' + INTERVAL seq SECOND, seq, UNHEX(CONCAT('5C090A0D', LPAD(HEX(seq), 4, '0'))),
         JSON_OBJECT('k', seq), IF(seq % 2, 'a', 'b'), 0 FROM `{db}`.seq_1_to_300"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("UPDATE `{db}`.t SET n = n + 1 WHERE id <= 250"))
        .await
        .unwrap();
    let want = source_rows(server, &db).await;
    eventually(
        || async { pg_rows(&client, &db).await == want },
        || async { rowbus.log() },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(want.len(), 300);
    assert!(want[0].contains("a\tb\\c\nd\re1"), "{:?}", want[0]);
    client
        .batch_execute(&format!("DROP SCHEMA \"{db}\" CASCADE"))
        .await
        .unwrap();
}

/// Rows 1 to 300, then 301 to 400, inserted into `db`.t in two transactions, with `name` and the
/// hex of `raw` as SQL expressions of `seq`.
async fn insert_400_rows(server: &MariaDb, db: &str, name: &str, raw_hex: &str) {
    let mut conn = server.conn().await;
    for (from, to) in [(1, 300), (301, 400)] {
        conn.query_drop(format!(
            "INSERT INTO `{db}`.t SELECT seq, {name}, seq / 100, '2024-01-31 12:00:00.123' + INTERVAL seq SECOND, \
             seq, UNHEX({raw_hex}), JSON_OBJECT('k', seq), 'a', 0 FROM `{db}`.seq_{from}_to_{to}"
        ))
        .await
        .unwrap();
    }
}

/// Inserted rows go to PostgreSQL by `COPY`; when the target holds some of them already (here
/// stale copies, as after a replay), the `COPY` is undone and the rows are upserted: the target
/// ends equal to the source, stale values replaced, nothing doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserted_rows_the_target_already_has_are_upserted() {
    let server = MariaDb::shared();
    let (db, client) = source_and_pg_target(server, "to_pg_again").await;
    client
        .batch_execute(&format!(
            "INSERT INTO \"{db}\".t (id, name, n) SELECT g, 'stale', 99 FROM generate_series(1, 300, 7) g"
        ))
        .await
        .unwrap();
    let dir = TestDir::new("to-pg-again");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(&config, "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\nworkers = 2\nbatch_max_events = 5000");
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    insert_400_rows(server, &db, "CONCAT('n', seq)", "LPAD(HEX(seq), 4, '0')").await;
    let want = source_rows(server, &db).await;
    eventually(
        || async { pg_rows(&client, &db).await == want },
        || async { rowbus.log() },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(want.len(), 400);
    assert_eq!(want[0], "1|n1|0.01|2024-01-31 12:00:01.123000|1|0001|1|a|0");
    client
        .batch_execute(&format!("DROP SCHEMA \"{db}\" CASCADE"))
        .await
        .unwrap();
}

/// The same into MariaDB, whose inserted rows go by `LOAD DATA LOCAL INFILE`: it skips the rows
/// the target has (stale copies here), and the sink then upserts them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserted_rows_a_mysql_target_already_has_are_upserted() {
    let server = MariaDb::shared();
    let db = server.fresh_database("to_my_again").await;
    let target = server.fresh_database("to_my_again_target").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "USE `{db}`; {SOURCE_TABLE}; USE `{target}`; {MY_TABLE}; \
         INSERT INTO `{target}`.t (id, name, n) SELECT seq, 'stale', 99 FROM seq_1_to_300_step_7"
    ))
    .await
    .unwrap();
    let dir = TestDir::new("to-my-again");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &format!("[sinks.my]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{}\"\nschema = \"{target}\"\nworkers = 2\nbatch_max_events = 5000", server.port),
    );
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    insert_400_rows(
        server,
        &db,
        "CONCAT('n\\t\\\\', seq)",
        "CONCAT('005C0A', LPAD(HEX(seq), 4, '0'))",
    )
    .await;
    let want = source_rows(server, &db).await;
    eventually(
        || async { source_rows(server, &target).await == want },
        || async { rowbus.log() },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(want.len(), 400);
    assert_eq!(
        want[0],
        "1|n\t\\1|0.01|2024-01-31 12:00:01.123000|1|005C0A0001|1|a|0"
    );
}
