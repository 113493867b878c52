//! The admin API against a running rowbus: /health, the bearer token, /api/v1/status and
//! /metrics (parsed by a Prometheus parser) counting what a real stream delivered, /ready, and
//! `rowbus status`, `rowbus pause` and `rowbus resume`, snapshots and the failure log through the
//! API.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb};
use std::process::Command;

const TOKEN: &str = "s3cret-admin-token";

/// (status code, body) of a GET, with the token or without.
fn get(port: u16, path: &str, token: bool) -> (u16, String) {
    let mut request = ureq::get(&format!("http://127.0.0.1:{port}{path}"));
    if token {
        request = request.set("Authorization", &format!("Bearer {TOKEN}"));
    }
    match request.call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{path}: {e}"),
    }
}

fn post(port: u16, path: &str) -> (u16, String) {
    let request = ureq::post(&format!("http://127.0.0.1:{port}{path}"))
        .set("Authorization", &format!("Bearer {TOKEN}"));
    match request.call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{path}: {e}"),
    }
}

fn post_json(port: u16, path: &str, body: &str) -> (u16, String) {
    let request = ureq::post(&format!("http://127.0.0.1:{port}{path}"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .set("Content-Type", "application/json");
    match request.send_string(body) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{path}: {e}"),
    }
}

/// `rowbus ARGS -c CONFIG` with the admin token; its standard output (it must succeed).
fn cli(args: &[&str], config: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args(args)
        .arg("-c")
        .arg(config)
        .env("ROWBUS_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_reports_what_the_stream_delivered() {
    let server = MariaDb::shared();
    let db = server.fresh_database("admin").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("admin");
    let config = config_from_now(server, &dir, &db, "").await;
    let port = free_port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    // The file sink refuses lines over 600 bytes: a long row goes to its failure log.
    text.push_str("max_event_bytes = 600\n");
    text.push_str(&format!(
        "\n[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken_env = \"ROWBUS_ADMIN_TOKEN\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    let rowbus = Rowbus::start_with_env(&config, &[("ROWBUS_ADMIN_TOKEN", TOKEN)]);
    rowbus.wait_started();
    let expected = write_transactions(server, &db, 1, 5).await;
    assert_eq!(expected.len(), 10);

    tokio::task::block_in_place(|| {
        assert_eq!(get(port, "/health", false), (200, "ok\n".into()));
        let (code, body) = get(port, "/api/v1/status", false);
        assert_eq!(code, 401, "{body}");
        let (code, _) = get(port, "/metrics", false);
        assert_eq!(code, 401);

        let status = wait_for("the status to count 10 delivered changes", DEADLINE, || {
            let (code, body) = get(port, "/api/v1/status", true);
            let status: serde_json::Value = serde_json::from_str(&body).ok()?;
            (code == 200 && status["sinks"][0]["delivered"] == 10).then_some(status)
        });
        assert_eq!(status["source"], "src");
        assert_eq!(status["events_read"], 10);
        assert_eq!(status["sinks"][0]["name"], "out");
        assert_eq!(status["sinks"][0]["failures"], 0);
        assert_eq!(status["sinks"][0]["queued"], 0);

        let (code, body) = get(port, "/metrics", true);
        assert_eq!(code, 200);
        let lines = body.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
        let value = |name: &str, sink: Option<&str>| -> Option<f64> {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && s.labels.get("sink") == sink)
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                    _ => f64::NAN,
                })
        };
        assert_eq!(value("rowbus_source_events_total", None), Some(10.0));
        // Every sink reports the standard set.
        for name in [
            "rowbus_sink_events_delivered_total",
            "rowbus_sink_batches_total",
            "rowbus_sink_failures_total",
            "rowbus_sink_retries_total",
            "rowbus_sink_queue_events",
            "rowbus_sink_lag_seconds",
            "rowbus_sink_failure_log_records",
        ] {
            assert!(
                value(name, Some("out")).is_some(),
                "{name} for sink out in:\n{body}"
            );
        }
        assert_eq!(
            value("rowbus_sink_events_delivered_total", Some("out")),
            Some(10.0)
        );
        assert_eq!(value("rowbus_sink_failures_total", Some("out")), Some(0.0));
        let latency = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "rowbus_sink_latency_seconds" && s.labels.get("sink") == Some("out")
            })
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                _ => f64::NAN,
            });
        assert_eq!(
            latency,
            Some(10.0),
            "the latency histogram counts every change:\n{body}"
        );
        let batches = scrape
            .samples
            .iter()
            .find(|s| s.metric == "rowbus_sink_batch_events" && s.labels.get("sink") == Some("out"))
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                _ => f64::NAN,
            });
        assert_eq!(batches, value("rowbus_sink_batches_total", Some("out")));
        assert!(value("rowbus_source_bytes_total", None).unwrap() > 0.0);
        // The binlog's end is asked for every 2 s: the lag in bytes appears.
        let status = wait_for("the lag in bytes", DEADLINE, || {
            let (_, body) = get(port, "/api/v1/status", true);
            let status: serde_json::Value = serde_json::from_str(&body).ok()?;
            status["lag_bytes"].is_u64().then_some(status)
        });
        assert!(status["bytes_read"].as_u64().unwrap() > 0);
        assert_eq!(status["sinks"][0]["failure_log_records"], 0);
        assert!(status["sinks"][0]["events_per_second"].is_f64());

        wait_for("/ready", DEADLINE, || {
            (get(port, "/ready", true).0 == 200).then_some(())
        });

        let printed = cli(&["status"], &config);
        let sink_line = printed
            .lines()
            .find(|l| l.starts_with("out "))
            .unwrap_or_default();
        let fields: Vec<&str> = sink_line.split_whitespace().collect();
        assert_eq!(
            fields,
            ["out", "10", "0", "0.0s", "0", "0", "running", "-"],
            "{printed}"
        );
        let source_line = printed
            .lines()
            .find(|l| l.starts_with("src "))
            .unwrap_or_default();
        assert!(source_line.trim_end().ends_with(" 10 running"), "{printed}");
    });

    // A paused sink takes nothing: the changes wait in its queue until it is resumed.
    tokio::task::block_in_place(|| {
        assert_eq!(cli(&["pause", "--sink", "out"], &config), "out: paused\n");
    });
    write_transactions(server, &db, 6, 2).await;
    tokio::task::block_in_place(|| {
        let status = wait_for("the source to read 4 more changes", DEADLINE, || {
            let (_, body) = get(port, "/api/v1/status", true);
            let status: serde_json::Value = serde_json::from_str(&body).ok()?;
            (status["events_read"] == 14 && status["sinks"][0]["queued"] == 4).then_some(status)
        });
        assert_eq!(status["sinks"][0]["delivered"], 10);
        assert_eq!(status["sinks"][0]["paused"], true);
        assert_eq!(count_lines(&dir.path("out.jsonl")), 10);
        assert_eq!(cli(&["resume", "--sink", "out"], &config), "out: resumed\n");
        wait_for_events(&dir.path("out.jsonl"), 14);
        // The source pauses and resumes by its name; an unknown sink is named back.
        assert_eq!(cli(&["pause"], &config), "src: paused\n");
        let (_, body) = get(port, "/api/v1/status", true);
        assert!(body.contains("\"paused\":true"), "{body}");
        assert_eq!(cli(&["resume"], &config), "src: resumed\n");
        let (code, body) = post(port, "/api/v1/sinks/nope/pause");
        assert_eq!(
            (code, body.as_str()),
            (404, "no sinks `nope` (source: src; sinks: out)\n")
        );
    });
    // A snapshot asked through the API: every row of the table again, as reads.
    tokio::task::block_in_place(|| {
        let body = format!("{{\"tables\": [\"{db}.t\"]}}");
        assert_eq!(
            post_json(port, "/api/v1/snapshots", &body),
            (202, format!("snapshot requested for {db}.t\n"))
        );
        let events = wait_for("7 snapshot reads", DEADLINE, || {
            let events = read_events(&dir.path("out.jsonl"));
            (events.iter().filter(|e| e["op"] == "r").count() == 7).then_some(events)
        });
        let mut read: Vec<i64> = events
            .iter()
            .filter(|e| e["op"] == "r")
            .map(|e| e["after"]["id"].as_i64().unwrap())
            .collect();
        read.sort();
        assert_eq!(read, [1, 2, 3, 4, 5, 6, 7]);
        let (code, text) = post_json(port, "/api/v1/snapshots", "{\"tables\": [\"other.t\"]}");
        assert_eq!(
            (code, text.as_str()),
            (
                400,
                "`other.t` is not included by sources.src.include/exclude\n"
            )
        );
    });
    // A change the sink refuses is counted, named as the last error, and listed.
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.big (id INT PRIMARY KEY, v TEXT); INSERT INTO `{db}`.big VALUES (1, REPEAT('x', 1000))"
    ))
    .await
    .unwrap();
    tokio::task::block_in_place(|| {
        let status = wait_for("the failure to be counted", DEADLINE, || {
            let (_, body) = get(port, "/api/v1/status", true);
            let status: serde_json::Value = serde_json::from_str(&body).ok()?;
            (status["sinks"][0]["failures"] == 1).then_some(status)
        });
        let error = status["sinks"][0]["last_error"].as_str().unwrap();
        assert!(error.contains("max_event_bytes = 600"), "{error}");
        let (code, body) = get(port, "/api/v1/failures?sink=out", true);
        assert_eq!(code, 200, "{body}");
        let records: serde_json::Value = serde_json::from_str(&body).unwrap();
        let records = records.as_array().unwrap();
        assert_eq!(records.len(), 1, "{body}");
        assert_eq!(records[0]["table"], format!("{db}.big"));
        assert_eq!(records[0]["key"], format!("{db}.big:{{\"id\":1}}"));
        assert_eq!(records[0]["parked"], false);
        assert!(records[0]["error"]
            .as_str()
            .unwrap()
            .contains("max_event_bytes"));
        let (code, body) = get(port, "/api/v1/failures?sink=nope", true);
        assert_eq!(
            (code, body.as_str()),
            (404, "no sink `nope` (sinks: out)\n")
        );
    });
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
}

/// A POST without the token, as a local tool or (with `origin`) a web page would send it.
fn post_untokened(port: u16, path: &str, origin: Option<&str>) -> (u16, String) {
    let mut request = ureq::post(&format!("http://127.0.0.1:{port}{path}"));
    if let Some(origin) = origin {
        request = request.set("Origin", origin);
    }
    match request.call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{path}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_with_a_paused_sink_leaves_its_changes_for_the_next_start() {
    let server = MariaDb::shared();
    let db = server.fresh_database("admin_paused").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("admin_paused");
    let config = config_from_now(server, &dir, &db, "").await;
    let port = free_port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[admin]\nlisten = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&config, text).unwrap();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    write_transactions(server, &db, 1, 1).await;
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| {
        wait_for_events(&out, 2);
        // Without a token, a web page's request is refused; a local tool's is served.
        let (code, _) =
            post_untokened(port, "/api/v1/sinks/out/pause", Some("http://evil.example"));
        assert_eq!(code, 403);
        let paused = post_untokened(port, "/api/v1/sinks/out/pause", None);
        assert_eq!(paused, (200, "out: paused\n".to_string()));
    });
    write_transactions(server, &db, 2, 1).await;
    tokio::task::block_in_place(|| {
        wait_for("the paused sink to hold 2 changes", DEADLINE, || {
            let (_, body) = get(port, "/api/v1/status", false);
            let status: serde_json::Value = serde_json::from_str(&body).ok()?;
            (status["sinks"][0]["queued"] == 2).then_some(())
        });
        // A clean stop leaves them unacknowledged: the next start delivers them.
        rowbus.stop_cleanly();
        assert_eq!(count_lines(&out), 2);
        let rowbus = Rowbus::start(&config);
        let events = wait_for_events(&out, 4);
        rowbus.stop_cleanly();
        let ids: Vec<i64> = events
            .iter()
            .map(|e| e["after"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [1, 1, 2, 2]);
    });
}
