//! Stopping and starting rowbus mid-stream: SIGTERM loses and repeats nothing; SIGKILL loses
//! nothing and repeats only changes after the last saved checkpoint.

use crate::support::*;
use rowbus_testkit::{wait_for, MariaDb};
use std::collections::HashMap;

/// Starts a background writer of `count` transactions (two events each) into `db`.t.
fn spawn_writer(db: &str, count: i64) -> tokio::task::JoinHandle<Vec<(String, String, i64)>> {
    let db = db.to_string();
    tokio::spawn(async move { write_transactions(MariaDb::shared(), &db, 1, count).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_then_restart_delivers_each_change_exactly_once() {
    let server = MariaDb::shared();
    let db = server.fresh_database("sigterm").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("sigterm");
    let config = config_from_now(server, &dir, &db, "").await;
    let out = dir.path("out.jsonl");

    let rowbus = Rowbus::start(&config);
    let writer = spawn_writer(&db, 300);
    tokio::task::block_in_place(|| wait_for_events(&out, 100));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let first_run = read_events(&out).len();
    // Changes made while rowbus is down are picked up after the restart.
    let mut expected = writer.await.unwrap();
    expected.extend(write_transactions(server, &db, 301, 50).await);

    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| wait_for_events(&out, expected.len()));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());

    let events = read_events(&out);
    assert!(
        first_run < events.len(),
        "the second run delivered the rest"
    );
    assert_eq!(
        summary(&events),
        expected,
        "every change exactly once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restart_repeats_only_after_the_checkpoint() {
    let server = MariaDb::shared();
    let db = server.fresh_database("sigkill").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("sigkill");
    let config = config_from_now(server, &dir, &db, "").await;
    let out = dir.path("out.jsonl");

    let rowbus = Rowbus::start(&config);
    let writer = spawn_writer(&db, 300);
    tokio::task::block_in_place(|| {
        wait_for_events(&out, 100);
        wait_for("a saved checkpoint", DEADLINE, || checkpoint(&dir));
    });
    rowbus.kill();
    let saved = checkpoint(&dir).unwrap();
    let saved_file = saved["position"]["file"].as_str().unwrap().to_string();
    let saved_pos = saved["position"]["pos"].as_u64().unwrap();
    let mut expected = writer.await.unwrap();
    expected.extend(write_transactions(server, &db, 301, 50).await);

    let rowbus = Rowbus::start(&config);
    let events = tokio::task::block_in_place(|| {
        wait_for("every change delivered", DEADLINE, || {
            let events = read_events(&out);
            let distinct: std::collections::HashSet<_> = events.iter().map(identity).collect();
            (distinct.len() >= expected.len()).then_some(events)
        })
    });
    tokio::task::block_in_place(|| rowbus.stop_cleanly());

    // At least once: the first occurrences, in order, are exactly the changes made.
    let mut seen = HashMap::new();
    let mut firsts = Vec::new();
    for event in &events {
        let id = identity(event);
        *seen.entry(id.clone()).or_insert(0) += 1;
        if seen[&id] == 1 {
            firsts.push(event.clone());
        }
    }
    assert_eq!(summary(&firsts), expected);
    // Repeats only of changes after the last saved checkpoint.
    for ((file, pos, _), count) in &seen {
        if *count > 1 {
            assert_eq!(*file, saved_file);
            assert!(
                *pos >= saved_pos,
                "change at {pos} repeated, but the checkpoint was {saved_pos}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_right_after_sigkill_is_not_refused_as_a_duplicate_replica() {
    let server = MariaDb::shared();
    let db = server.fresh_database("rekill").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("rekill");
    let config = config_from_now(server, &dir, &db, "").await;
    for _ in 0..3 {
        let rowbus = Rowbus::start(&config);
        tokio::task::block_in_place(|| rowbus.wait_started());
        rowbus.kill();
    }
    let rowbus = Rowbus::start(&config);
    let expected = write_transactions(server, &db, 1, 5).await;
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| wait_for_events(&out, expected.len()));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(summary(&read_events(&out)), expected);
}
