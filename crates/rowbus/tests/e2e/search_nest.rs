//! Nested child documents against a real OpenSearch API (osmem-server): orders with their items as
//! an array field, snapshotted, then changed at random (items inserted, updated, moved between
//! orders, re-keyed and deleted; orders updated and deleted with their items) with rowbus killed
//! and restarted; at the end each order's document equals its row and its items, and there is one
//! document per order. A reindex of a nested table is refused.

use crate::database_sinks::add_sink;
use crate::search_sink::documents;
use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{MariaDb, Osmem, Rng};
use serde_json::{json, Value};
use std::time::Duration;

const TABLES: &str = "CREATE TABLE orders (id INT PRIMARY KEY, who VARCHAR(20), total INT); \
    CREATE TABLE items (id INT PRIMARY KEY, order_id INT NOT NULL, sku VARCHAR(20), qty INT)";

/// The ids handed out so far, so that every insert takes a new one.
struct Ids {
    orders: i64,
    items: i64,
}

/// One random transaction over orders and items, keeping every item's order in existence.
async fn step(conn: &mut mysql_async::Conn, rng: &mut Rng, ids: &mut Ids) {
    let order = rng.below(ids.orders as u64) as i64 + 1;
    let other = rng.below(ids.orders as u64) as i64 + 1;
    let item = rng.below(ids.items.max(1) as u64) as i64 + 1;
    let n = rng.below(1000);
    let sql = match rng.below(12) {
        0 | 1 => {
            ids.orders += 1;
            format!("INSERT INTO orders VALUES ({}, 'w{n}', 0)", ids.orders)
        }
        2 => format!("UPDATE orders SET who = 'u{n}', total = total + 1 WHERE id = {order}"),
        3 => format!(
            "BEGIN; DELETE FROM items WHERE order_id = {order}; DELETE FROM orders WHERE id = {order}; COMMIT"
        ),
        4..=6 => {
            ids.items += 1;
            format!(
                "INSERT INTO items SELECT {}, id, 's{n}', {n} FROM orders WHERE id = {order}",
                ids.items
            )
        }
        7 => format!("UPDATE items SET qty = qty + 1, sku = 'q{n}' WHERE id = {item}"),
        8 => format!(
            "UPDATE items SET order_id = {other} WHERE id = {item} AND EXISTS (SELECT 1 FROM orders WHERE id = {other})"
        ),
        9 => {
            ids.items += 1;
            format!("UPDATE items SET id = {} WHERE id = {item}", ids.items)
        }
        10 => format!("DELETE FROM items WHERE id = {item}"),
        _ => format!(
            "BEGIN; UPDATE items SET qty = qty * 2 WHERE order_id = {order}; UPDATE orders SET total = total + 2 WHERE id = {order}; COMMIT"
        ),
    };
    conn.query_drop(sql).await.unwrap();
}

/// Each order as its document should be: its columns and its items (sorted by id), by id.
async fn expected(server: &MariaDb, db: &str) -> Vec<Value> {
    let mut conn = server.conn().await;
    let orders: Vec<(i64, String, i64)> = conn
        .query(format!(
            "SELECT id, who, total FROM `{db}`.orders ORDER BY id"
        ))
        .await
        .unwrap();
    let items: Vec<(i64, i64, String, i64)> = conn
        .query(format!(
            "SELECT id, order_id, sku, qty FROM `{db}`.items ORDER BY id"
        ))
        .await
        .unwrap();
    orders
        .into_iter()
        .map(|(id, who, total)| {
            let mine: Vec<Value> = items
                .iter()
                .filter(|i| i.1 == id)
                .map(|(i, o, sku, qty)| json!({"id": i, "order_id": o, "sku": sku, "qty": qty}))
                .collect();
            json!({"id": id, "who": who, "total": total, "items": mine})
        })
        .collect()
}

/// The order documents without rowbus's versions, items sorted by id, by id.
fn order_documents(osmem: &Osmem, index: &str) -> Vec<Value> {
    documents(osmem, index)
        .into_iter()
        .map(|(_, mut doc)| {
            let fields = doc.as_object_mut().unwrap();
            fields.remove("@rowbus");
            if let Some(Value::Array(items)) = fields.get_mut("items") {
                items.sort_by_key(|i| i["id"].as_i64());
            }
            doc
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_items_stay_exact_in_their_orders_through_random_changes_and_kills() {
    let server = MariaDb::shared();
    let osmem = Osmem::shared();
    let db = server.fresh_database("nest").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!("USE `{db}`; {TABLES}"))
        .await
        .unwrap();
    let seed = Rng::seed_from_env("ROWBUS_TORTURE_SEED");
    println!("nested workload seed {seed}");
    let mut rng = Rng::new(seed);
    // Rows from before rowbus: the initial snapshot reads them into the documents.
    let mut ids = Ids {
        orders: 0,
        items: 0,
    };
    for _ in 0..5 {
        ids.orders += 1;
        conn.query_drop(format!(
            "INSERT INTO orders VALUES ({}, 'first', 0)",
            ids.orders
        ))
        .await
        .unwrap();
    }
    for _ in 0..12 {
        step(&mut conn, &mut rng, &mut ids).await;
    }
    let dir = TestDir::new("nest");
    let config = config_from_now(server, &dir, &db, "snapshot = \"initial\"").await;
    let nest = format!(
        "batch_max_events = 9\nnest = [{{ table = \"{db}.items\", into = \"{db}.orders\", field = \"items\", parent_key = \"order_id\" }}]"
    );
    add_sink(
        &config,
        &format!(
            "[sinks.search]\ntype = \"opensearch\"\nurl = \"{}\"\nindex = \"{{db}}-{{table}}\"\n{nest}",
            osmem.url
        ),
    );
    let index = format!("{db}-orders").to_lowercase();
    for round in 0..4 {
        let rowbus = Rowbus::start(&config);
        rowbus.wait_started();
        for _ in 0..40 {
            step(&mut conn, &mut rng, &mut ids).await;
        }
        if round % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            rowbus.kill();
        } else {
            tokio::task::block_in_place(|| rowbus.stop_cleanly());
        }
    }
    let rowbus = Rowbus::start(&config);
    let want = expected(server, &db).await;
    eventually(
        || async { order_documents(osmem, &index) == want },
        || async {
            format!(
                "the documents never matched (seed {seed})\nwant {want:?}\nhave {:?}\n{}",
                order_documents(osmem, &index),
                rowbus.log()
            )
        },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert!(want.len() > 5, "{want:?}");
    let items: usize = want
        .iter()
        .map(|o| o["items"].as_array().unwrap().len())
        .sum();
    assert!(items > 5, "too few items to prove anything: {want:?}");
    println!("{} orders with {items} items", want.len());
    // No document for an item, or for a deleted order.
    let count = tokio::task::block_in_place(|| {
        ureq::get(&format!("{}/{index}/_count", osmem.url))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    });
    let count: Value = serde_json::from_str(&count).unwrap();
    assert_eq!(count["count"], want.len());
    let no_items_index = tokio::task::block_in_place(|| {
        ureq::get(&format!("{}/{db}-items/_count", osmem.url))
            .call()
            .is_err()
    });
    assert!(no_items_index, "the child table got an index of its own");

    // A reindex cannot rebuild nested documents: refused, naming the nest.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args([
            "snapshot",
            "--reindex",
            "--table",
            &format!("{db}.items"),
            "-c",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "`{db}.items` is nested in sink `search` (sinks.search.nest)"
        )),
        "{stderr}"
    );
}
