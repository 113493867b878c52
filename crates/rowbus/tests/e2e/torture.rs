//! The crash torture test: a random workload of inserts, updates and deletes in transactions of
//! random size over several tables, streamed to two file sinks (one with every table, one with a
//! subset), while rowbus is killed with SIGKILL at random moments 20 times and restarted. At the
//! end each sink's output, applied in order to a model, equals the source tables row for row.
//! The seed is printed; ROWBUS_TORTURE_SEED replays a run.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb, MariaDbOptions, Rng};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

const KILLS: usize = 20;
const TRANSACTIONS: usize = 1500;

const SCHEMA: &str = "
CREATE TABLE a (id INT PRIMARY KEY, n BIGINT NOT NULL, s VARCHAR(40) NOT NULL, d DECIMAL(12,3) NOT NULL);
CREATE TABLE b (id INT PRIMARY KEY, t DATETIME(3) NOT NULL, f DOUBLE NOT NULL, u BIGINT UNSIGNED NOT NULL,
                txt TEXT NOT NULL) DEFAULT CHARSET=utf8mb4;
CREATE TABLE c (id INT PRIMARY KEY, e ENUM('x','y','z') NOT NULL, bits BIT(8) NOT NULL, bin VARBINARY(8) NOT NULL);";

/// SQL for the columns of each table, as the strings the model's JSON values normalize to.
const SELECTS: [(&str, &str); 3] = [
    ("a", "SELECT id, CAST(n AS CHAR), s, CAST(d AS CHAR) FROM a"),
    ("b", "SELECT id, LEFT(DATE_FORMAT(t, '%Y-%m-%dT%H:%i:%s.%f'), 23), CAST(f AS CHAR), CAST(u AS CHAR), txt FROM b"),
    ("c", "SELECT id, CAST(e AS CHAR), CAST(bits + 0 AS CHAR), TO_BASE64(bin) FROM c"),
];

fn random_values(rng: &mut Rng, table: &str, id: u64) -> String {
    match table {
        "a" => format!(
            "{id}, {}, 'name {} ünï', {}.{:03}",
            rng.next_u64() as i64 >> 1,
            rng.below(1_000_000),
            rng.below(1_000_000_000),
            rng.below(1000)
        ),
        "b" => format!(
            "{id}, '2024-{:02}-{:02} {:02}:{:02}:{:02}.{:03}', {}, {}, 'text {} 😀'",
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60),
            rng.below(1000),
            rng.below(100_000) as f64 * 0.25 - 1000.0,
            rng.next_u64(),
            rng.below(1 << 20)
        ),
        _ => format!(
            "{id}, '{}', {}, 0x{:016x}",
            ["x", "y", "z"][rng.below(3) as usize],
            rng.below(256),
            rng.next_u64()
        ),
    }
}

/// The random workload; returns after committing every transaction.
async fn workload(server_port: u16, db: String, seed: u64) {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(server_port)
        .user(Some("root"))
        .db_name(Some(db))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    let mut rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut live: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut next_id = 1u64;
    for _ in 0..TRANSACTIONS {
        let mut sql = String::from("BEGIN;");
        for _ in 0..1 + rng.below(12) {
            let table = ["a", "b", "c"][rng.below(3) as usize];
            let ids = live.entry(table).or_default();
            match rng.below(10) {
                0..=4 => {
                    sql.push_str(&format!(
                        "INSERT INTO {table} VALUES ({});",
                        random_values(&mut rng, table, next_id)
                    ));
                    ids.push(next_id);
                    next_id += 1;
                }
                5..=7 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len() as u64) as usize];
                    sql.push_str(&format!(
                        "REPLACE INTO {table} VALUES ({});",
                        random_values(&mut rng, table, id)
                    ));
                }
                _ if !ids.is_empty() => {
                    let id = ids.swap_remove(rng.below(ids.len() as u64) as usize);
                    sql.push_str(&format!("DELETE FROM {table} WHERE id = {id};"));
                }
                _ => {}
            }
        }
        sql.push_str("COMMIT");
        conn.query_drop(sql).await.unwrap();
    }
    conn.disconnect().await.ok();
}

/// Applies the events of a sink's output in order; the last change of each row wins.
fn model(events: &[Value]) -> BTreeMap<(String, i64), Value> {
    let mut rows = BTreeMap::new();
    for e in events {
        let table = e["table"].as_str().unwrap().to_string();
        match e["op"].as_str().unwrap() {
            "d" => {
                rows.remove(&(table, e["before"]["id"].as_i64().unwrap()));
            }
            _ => {
                rows.insert(
                    (table, e["after"]["id"].as_i64().unwrap()),
                    e["after"].clone(),
                );
            }
        }
    }
    rows
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn same(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

async fn source_rows(
    server: &MariaDb,
    db: &str,
    tables: &[&str],
) -> BTreeMap<(String, i64), Vec<String>> {
    let mut conn = server.conn().await;
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    let mut rows = BTreeMap::new();
    for (table, sql) in SELECTS.iter().filter(|(t, _)| tables.contains(t)) {
        let result: Vec<mysql_async::Row> = conn.query(*sql).await.unwrap();
        for row in result {
            let id: i64 = row.get(0).unwrap();
            let values: Vec<String> = (0..row.len())
                .map(|i| row.get::<String, _>(i).unwrap())
                .collect();
            rows.insert((table.to_string(), id), values);
        }
    }
    rows
}

fn compare(
    sink: &str,
    modelled: &BTreeMap<(String, i64), Value>,
    source: &BTreeMap<(String, i64), Vec<String>>,
    seed: u64,
) {
    assert_eq!(
        modelled.keys().collect::<Vec<_>>(),
        source.keys().collect::<Vec<_>>(),
        "sink {sink}: the same rows exist (seed {seed})"
    );
    for (key, values) in source {
        let image = modelled[key].as_object().unwrap();
        let got: Vec<String> = image.values().map(text).collect();
        // serde_json's map is ordered by name; compare by column name order of the SELECT instead.
        let ordered: Vec<String> = match key.0.as_str() {
            "a" => ["id", "n", "s", "d"]
                .iter()
                .map(|c| text(&image[*c]))
                .collect(),
            "b" => ["id", "t", "f", "u", "txt"]
                .iter()
                .map(|c| text(&image[*c]))
                .collect(),
            _ => ["id", "e", "bits", "bin"]
                .iter()
                .map(|c| text(&image[*c]))
                .collect(),
        };
        assert_eq!(got.len(), values.len(), "sink {sink}: columns of {key:?}");
        for (column, (ours, theirs)) in ordered.iter().zip(values).enumerate() {
            assert!(
                same(ours, theirs),
                "sink {sink}: {key:?} column {column}: {ours} != {theirs} (seed {seed})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_twenty_sigkills_without_losing_a_change() {
    let seed = Rng::seed_from_env("ROWBUS_TORTURE_SEED");
    println!("torture seed {seed} (replay with ROWBUS_TORTURE_SEED={seed})");
    let server = MariaDb::start(MariaDbOptions::default());
    let db = server.fresh_database("torture").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!("USE `{db}`; {SCHEMA}"))
        .await
        .unwrap();
    let dir = TestDir::new("torture");
    let config = config_from_now(&server, &dir, &db, "").await;
    let text_config = std::fs::read_to_string(&config).unwrap()
        + &format!(
            "\n[sinks.ab]\ntype = \"file\"\npath = \"{}\"\ntables = [\"{db}.a\", \"{db}.b\"]\n",
            dir.path("ab.jsonl").display()
        );
    std::fs::write(&config, text_config).unwrap();
    let all = dir.path("out.jsonl");

    let writer = tokio::spawn(workload(server.port, db.clone(), seed));
    let mut rng = Rng::new(seed);
    for round in 0..KILLS {
        let rowbus = Rowbus::start(&config);
        let before = count_lines(&all);
        let grow = 1 + rng.below(400) as usize;
        let writer = &writer;
        let deadline = std::time::Instant::now() + DEADLINE;
        tokio::task::block_in_place(|| loop {
            let grown = count_lines(&all) >= before + grow;
            let idle = writer.is_finished() && rowbus.log().contains("starting to read");
            if grown || idle {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no {grow} more lines (seed {seed}, writer done: {}); rowbus log:\n{}",
                writer.is_finished(),
                rowbus.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        });
        rowbus.kill();
    }
    writer.await.unwrap();
    let end = binlog_end(&server).await;
    let end_pos: u64 = end.rsplit(':').next().unwrap().parse().unwrap();
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| {
        wait_for(
            "the checkpoint to reach the end of the workload",
            DEADLINE,
            || {
                let saved = checkpoint(&dir)?;
                (saved["position"]["file"] == end.split(':').next().unwrap()
                    && saved["position"]["pos"].as_u64()? >= end_pos)
                    .then_some(())
            },
        );
        rowbus.stop_cleanly();
    });

    let everything = source_rows(&server, &db, &["a", "b", "c"]).await;
    compare("out", &model(&read_events(&all)), &everything, seed);
    let subset = source_rows(&server, &db, &["a", "b"]).await;
    compare(
        "ab",
        &model(&read_events(&dir.path("ab.jsonl"))),
        &subset,
        seed,
    );
}
