//! The dashboard in headless Chromium (tests/browser/dashboard.mjs, playwright-core, Debian's
//! chromium; `scripts/test.sh` installs both): with a steady workload through a pipeline
//! transform to two sinks, the page draws the source, the transforms and both sinks, the
//! delivered count moves, and a paused sink turns red once its oldest change waited
//! `stuck_after`. The screenshot is kept in `$CARGO_TARGET_TMPDIR/artifacts/dashboard.png`.

use crate::support::*;
use rowbus_testkit::MariaDb;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_flow_moving_and_a_stopped_sink_in_red() {
    let modules = browser_dir().join("node_modules/playwright-core");
    assert!(
        modules.exists(),
        "{} is missing: run scripts/test.sh, or `npm ci --prefix {}`",
        modules.display(),
        browser_dir().display()
    );
    let server = MariaDb::shared();
    let db = server.fresh_database("dashboard").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("dashboard");
    let config = config_from_now(server, &dir, &db, "").await;
    let port = free_port();
    let audit = dir.path("audit.jsonl");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"
[sinks.audit]
type = "file"
path = "{}"

[[transforms]]
mask = ["v"]
mask_with = "xx"

[admin]
listen = "127.0.0.1:{port}"
stuck_after = "2s"
"#,
        audit.display()
    ));
    std::fs::write(&config, text).unwrap();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let writer = Writer::start(server, &db);

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let screenshot = shots.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let url = format!("http://127.0.0.1:{port}/");
    let out = tokio::task::block_in_place(|| {
        Command::new("node")
            .arg(browser_dir().join("dashboard.mjs"))
            .args([url.as_str(), "audit"])
            .arg(&screenshot)
            .output()
            .expect("node (scripts/test.sh installs it)")
    });
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(printed.trim()).expect("the script's JSON");
    assert_eq!(seen["error"], Value::Null, "{seen}");
    assert_eq!(
        seen["nodes"],
        serde_json::json!(["source:src", "transforms", "sink:audit", "sink:out"])
    );
    assert_eq!(seen["conn"], "live");
    let (before, after) = (
        seen["delivered"][0].as_u64().unwrap(),
        seen["delivered"][1].as_u64().unwrap(),
    );
    assert!(after > before, "{seen}");
    assert_eq!(seen["pause"], 200);
    // The sinks' states (the source's node may turn red too on a loaded machine: its lag has
    // whole-second commit times).
    let stuck: Vec<&str> = seen["stuck"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str().filter(|n| n.starts_with("sink:")))
        .collect();
    assert_eq!(stuck, ["sink:audit"]);
    assert_eq!(seen["stuck_chart"], serde_json::json!(["audit"]));
    assert_eq!(seen["state"], serde_json::json!(["paused", "running"]));
    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    println!("the dashboard's screenshot: {}", screenshot.display());

    // Resumed, the paused sink gets everything: the dashboard only watched.
    let resume = format!("http://127.0.0.1:{port}/api/v1/sinks/audit/resume");
    tokio::task::block_in_place(|| ureq::post(&resume).call().unwrap());
    let total = writer.finish().await as usize;
    tokio::task::block_in_place(|| {
        let events = wait_for_events(&audit, total);
        assert_eq!(events.len(), total);
        assert!(events.iter().all(|e| e["after"]["v"] == "xx"));
        assert_eq!(wait_for_events(&dir.path("out.jsonl"), total).len(), total);
        // The transforms node's counts: every change passed on once, none failed.
        let url = format!("http://127.0.0.1:{port}/api/v1/status");
        let body = ureq::get(&url).call().unwrap().into_string().unwrap();
        let status: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            status["transforms"],
            serde_json::json!({"out": total, "failures": 0})
        );
    });
    rowbus.stop_cleanly();
}
