//! Hot reload against a running rowbus with writes flowing: a sink added by `rowbus reload`
//! starts from the current position while the old one loses and repeats nothing; an invalid
//! file is refused and the old configuration keeps running; SIGHUP applies a changed sink
//! transform from a transaction boundary on; a changed source restarts it from the checkpoint.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::MariaDb;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The ids of a file sink's inserts, in order.
fn ids(path: &Path) -> Vec<i64> {
    read_events(path)
        .iter()
        .filter(|e| e["op"] == "c")
        .map(|e| e["after"]["id"].as_i64().unwrap())
        .collect()
}

/// `rowbus reload -c CONFIG`: (success, stdout + stderr).
fn reload(config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args(["reload", "-c"])
        .arg(config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn append(config: &Path, text: &str) {
    let mut all = std::fs::read_to_string(config).unwrap();
    all.push_str(text);
    std::fs::write(config, all).unwrap();
}

/// Adds an `[admin]` section on a free port; the port.
fn with_admin(config: &Path) -> u16 {
    let port = free_port();
    append(
        config,
        &format!("\n[admin]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_added_by_reload_starts_at_the_current_position_and_the_old_one_loses_nothing() {
    let server = MariaDb::shared();
    let db = server.fresh_database("reload_add").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("reload-add");
    let config = config_from_now(server, &dir, &db, "").await;
    with_admin(&config);
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let writer = Writer::start(server, &db);
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| wait_for_events(&out, 50));

    let added = dir.path("added.jsonl");
    let sink = format!(
        "\n[sinks.added]\ntype = \"file\"\npath = \"{}\"\n",
        added.display()
    );
    // Sections after [admin] would belong to it: the sink goes before.
    let text = std::fs::read_to_string(&config).unwrap();
    let (head, admin) = text.split_once("\n[admin]").unwrap();
    std::fs::write(&config, format!("{head}{sink}\n[admin]{admin}")).unwrap();
    let (ok, answer) = tokio::task::block_in_place(|| reload(&config));
    let written_at_reply = writer.written();
    assert!(ok, "{answer}");
    assert_eq!(answer, "reloaded: sinks added: added\n");
    tokio::task::block_in_place(|| wait_for_events(&added, 50));
    // Its history, asked for it alone: the other sink gets none of the snapshot's rows.
    let snapshot = |sink: &str| {
        Command::new(env!("CARGO_BIN_EXE_rowbus"))
            .args([
                "snapshot",
                "--table",
                &format!("{db}.t"),
                "--sink",
                sink,
                "-c",
            ])
            .arg(&config)
            .output()
            .unwrap()
    };
    let refused = snapshot("nosuch");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no sink `nosuch` (sinks: added, out)")
    );
    assert!(snapshot("added").status.success());
    let total = writer.finish().await;

    let all: Vec<i64> = (1..=total).collect();
    let delivered = tokio::task::block_in_place(|| {
        wait_for_events(&out, total as usize);
        ids(&out)
    });
    assert_eq!(delivered, all, "the old sink lost or repeated a change");
    let first = tokio::task::block_in_place(|| {
        wait_for_events(&added, 1);
        rowbus_testkit::wait_for("the added sink to catch up", DEADLINE, || {
            let got = ids(&added);
            (got.last() == Some(&total)).then_some(got)
        })
    });
    let start = first[0];
    assert!(start > 1, "the added sink started from the beginning");
    assert!(
        start <= written_at_reply + 1,
        "a row written after the reload answered is missing: starts at {start}, {written_at_reply} written then"
    );
    assert_eq!(first, (start..=total).collect::<Vec<_>>());
    assert!(rowbus.log().contains("configuration reloaded"));
    // With its snapshot, the added sink holds every row; the old one saw no snapshot row.
    tokio::task::block_in_place(|| {
        rowbus_testkit::wait_for("the added sink's snapshot", DEADLINE, || {
            let events = read_events(&added);
            let mut held: Vec<i64> = events
                .iter()
                .filter(|e| e["op"] == "c" || e["op"] == "r")
                .map(|e| e["after"]["id"].as_i64().unwrap())
                .collect();
            held.sort();
            held.dedup();
            (held == all).then_some(())
        })
    });
    assert!(read_events(&out).iter().all(|e| e["op"] != "r"));

    // Restarted, both sinks go on from the one checkpoint: only the new row arrives.
    rowbus.stop_cleanly();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut conn = server.conn().await;
    let next = total + 1;
    conn.query_drop(format!("INSERT INTO `{db}`.t VALUES ({next}, 'x')"))
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        wait_for_events(&out, next as usize);
        rowbus_testkit::wait_for("the added sink to get the new row", DEADLINE, || {
            (ids(&added).last() == Some(&next)).then_some(())
        });
    });
    rowbus.stop_cleanly();
    assert_eq!(ids(&out), (1..=next).collect::<Vec<_>>());
    assert_eq!(ids(&added), (start..=next).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_reload_is_refused_and_sighup_applies_a_changed_transform_and_source() {
    let server = MariaDb::shared();
    let db = server.fresh_database("reload_change").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("reload-change");
    let config = config_from_now(server, &dir, &db, "").await;
    let port = with_admin(&config);
    let only_t = format!("include = [\"{db}.t\"]");
    let text = std::fs::read_to_string(&config).unwrap();
    let good = text.replace(&format!("include = [\"{db}.*\"]"), &only_t);
    std::fs::write(&config, &good).unwrap();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let writer = Writer::start(server, &db);
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| wait_for_events(&out, 20));

    // Invalid: `rowbus reload` names the field and sends nothing; the API and SIGHUP refuse it;
    // the old configuration keeps running.
    std::fs::write(
        &config,
        good.replace("[sinks.out]\n", "[sinks.out]\nbatch = 3\n"),
    )
    .unwrap();
    let (ok, answer) = tokio::task::block_in_place(|| reload(&config));
    assert!(!ok, "{answer}");
    assert!(
        answer.contains("sinks.out.batch: unknown field"),
        "{answer}"
    );
    let url = format!("http://127.0.0.1:{port}/api/v1/reload");
    let (code, text) = tokio::task::block_in_place(|| match ureq::post(&url).call() {
        Err(ureq::Error::Status(code, response)) => (code, response.into_string().unwrap()),
        other => panic!("{other:?}"),
    });
    assert_eq!(code, 400, "{text}");
    assert!(text.starts_with("refused: "), "{text}");
    assert!(text.contains("sinks.out.batch: unknown field"), "{text}");
    rowbus.signal(libc::SIGHUP);
    tokio::task::block_in_place(|| {
        rowbus_testkit::wait_for("SIGHUP's refusal in the log", DEADLINE, || {
            (rowbus.log().matches("reload refused").count() == 2).then_some(())
        })
    });
    let seen = writer.written();
    tokio::task::block_in_place(|| wait_for_events(&out, seen as usize + 20));

    // SIGHUP with a transform on the sink: masked from a boundary on, nothing lost or repeated.
    let masked = good.replace(
        "\n[admin]",
        "\n[[sinks.out.transforms]]\nmask = [\"v\"]\nmask_with = \"xx\"\n\n[admin]",
    );
    std::fs::write(&config, &masked).unwrap();
    rowbus.signal(libc::SIGHUP);
    let events = tokio::task::block_in_place(|| {
        rowbus_testkit::wait_for("masked rows", DEADLINE, || {
            let events = read_events(&out);
            let masked = events.iter().filter(|e| e["after"]["v"] == "xx").count();
            (masked >= 20).then_some(())
        });
        read_events(&out)
    });
    assert!(
        rowbus.log().contains("sinks changed: out"),
        "{}",
        rowbus.log_tail()
    );
    let is_masked: Vec<bool> = events.iter().map(|e| e["after"]["v"] == "xx").collect();
    let cut = is_masked.iter().position(|m| *m).unwrap();
    assert!(
        is_masked[cut..].iter().all(|m| *m),
        "an unmasked row after the cut"
    );

    // A changed source (a second table included) restarts it from the checkpoint.
    let mut conn = server.conn().await;
    conn.query_drop(format!("CREATE TABLE `{db}`.u (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    std::fs::write(
        &config,
        masked.replace(&only_t, &format!("include = [\"{db}.t\", \"{db}.u\"]")),
    )
    .unwrap();
    let (ok, answer) = tokio::task::block_in_place(|| reload(&config));
    assert!(ok, "{answer}");
    assert_eq!(
        answer,
        "reloaded: the source or [pipeline] changed: restarting the source\n"
    );
    conn.query_drop(format!("INSERT INTO `{db}`.u VALUES (7)"))
        .await
        .unwrap();
    let total = writer.finish().await;
    let events = tokio::task::block_in_place(|| {
        rowbus_testkit::wait_for("every row and the row of u", DEADLINE, || {
            let events = read_events(&out);
            let rows_of_t = events.iter().filter(|e| e["table"] == "t").count();
            let u = events.iter().any(|e| e["table"] == "u" && e["op"] == "c");
            (rows_of_t >= total as usize && u).then_some(events)
        })
    });
    let of_t: Vec<i64> = events
        .iter()
        .filter(|e| e["table"] == "t")
        .map(|e| e["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(of_t, (1..=total).collect::<Vec<_>>());
    let u: Vec<&Value> = events
        .iter()
        .filter(|e| e["table"] == "u" && e["op"] == "c")
        .collect();
    assert_eq!(u.len(), 1);
    assert_eq!(u[0]["after"]["id"], 7);
    rowbus.stop_cleanly();
}

/// The ids in the order they first came (a restart may repeat the ones after the checkpoint).
fn first_seen(ids: Vec<i64>) -> Vec<i64> {
    let mut seen = std::collections::BTreeSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_cannot_open_is_refused_and_a_paused_one_makes_the_reload_restart_the_source() {
    let server = MariaDb::shared();
    let db = server.fresh_database("reload_refuse").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("reload-refuse");
    let config = config_from_now(server, &dir, &db, "").await;
    let port = free_port();
    let held = dir.path("held.jsonl");
    append(
        &config,
        &format!(
            "\n[sinks.held]\ntype = \"file\"\npath = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:{port}\"\nstuck_after = \"1h\"\n",
            held.display()
        ),
    );
    let good = std::fs::read_to_string(&config).unwrap();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let writer = Writer::start(server, &db);
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| wait_for_events(&out, 20));

    // `out` moved under a file: it cannot open, so the reload is refused and `out` goes on.
    let blocked = dir.path("not-a-dir");
    std::fs::write(&blocked, "").unwrap();
    let moved = good.replace(
        &format!("path = \"{}\"", out.display()),
        &format!("path = \"{}/out.jsonl\"", blocked.display()),
    );
    std::fs::write(&config, &moved).unwrap();
    let (ok, answer) = tokio::task::block_in_place(|| reload(&config));
    assert!(!ok, "{answer}");
    assert!(
        answer.contains("answered 400: refused: sink `out`"),
        "{answer}"
    );
    assert!(
        answer.contains("the running configuration is kept"),
        "{answer}"
    );
    let seen = writer.written();
    tokio::task::block_in_place(|| wait_for_events(&out, seen as usize + 20));

    // `held` paused with changes waiting: the drain would wait for it, so the source restarts.
    let pause = format!("http://127.0.0.1:{port}/api/v1/sinks/held/pause");
    tokio::task::block_in_place(|| ureq::post(&pause).call().unwrap());
    let status = format!("http://127.0.0.1:{port}/api/v1/status");
    tokio::task::block_in_place(|| {
        rowbus_testkit::wait_for("the paused sink to hold changes", DEADLINE, || {
            let body = ureq::get(&status).call().ok()?.into_string().ok()?;
            let status: Value = serde_json::from_str(&body).ok()?;
            (status["sinks"][0]["queued"].as_i64()? > 0).then_some(())
        })
    });
    let batched = good.replace("[sinks.out]\n", "[sinks.out]\nbatch_max_events = 100\n");
    std::fs::write(&config, &batched).unwrap();
    let (ok, answer) = tokio::task::block_in_place(|| reload(&config));
    assert!(ok, "{answer}");
    assert_eq!(answer, "reloaded: sinks changed: out\n");
    assert!(
        rowbus.log().contains("restarting the source instead"),
        "{}",
        rowbus.log_tail()
    );
    let resume = format!("http://127.0.0.1:{port}/api/v1/sinks/held/resume");
    tokio::task::block_in_place(|| ureq::post(&resume).call().unwrap());
    let total = writer.finish().await;
    let all: Vec<i64> = (1..=total).collect();
    tokio::task::block_in_place(|| {
        for path in [&out, &held] {
            rowbus_testkit::wait_for("every row", DEADLINE, || {
                (first_seen(ids(path)) == all).then_some(())
            });
        }
    });
    rowbus.stop_cleanly();
}
