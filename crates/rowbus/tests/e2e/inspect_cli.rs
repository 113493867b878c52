//! `rowbus inspect binlog`: JSON lines on stdout, and for a corrupt file an error naming the file
//! and offset with exit code 1, after the files before it were printed.

use std::process::Command;

fn fixture(name: &str) -> String {
    format!(
        "{}/../../../shared/fixtures/mysql-binlogs/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn prints_events_and_rows_then_reports_a_corrupt_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args(["inspect", "binlog", "--table", "toddy_test.*"])
        .arg(fixture("mariadb-bin.000001"))
        .arg(fixture("binlog_truncated_event.000001"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 15);
    assert_eq!(lines[0]["type"], "FORMAT_DESCRIPTION_EVENT");
    let rows: Vec<_> = lines.iter().filter(|l| l.get("op").is_some()).collect();
    assert_eq!(rows.len(), 2);
    assert!(
        stdout.contains(r#""after":{"id":62,"topic":"foo","event_type":"JSON""#),
        "columns keep table order"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("binlog_truncated_event.000001: offset 4: truncated event header"),
        "{stderr}"
    );
}
