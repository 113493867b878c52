//! Each server-side problem stops rowbus with one clear message naming the cause and the fix, or
//! (for an unreachable host) is retried with backoff and reported.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb, MariaDbOptions};

/// Runs rowbus until it exits by itself; returns its exit code and log.
fn run_to_exit(config: &std::path::Path, env: &[(&str, &str)]) -> (i32, String) {
    let mut rowbus = Rowbus::start_with_env(config, env);
    let status = rowbus.wait();
    (status.code().unwrap_or(-1), rowbus.log())
}

async fn create_user(server: &MariaDb, user: &str, password: &str, grants: &str) {
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"
    ))
    .await
    .unwrap();
    if !grants.is_empty() {
        conn.query_drop(format!("GRANT {grants} ON *.* TO '{user}'@'%'"))
            .await
            .unwrap();
    }
}

fn config_for_user(dir: &TestDir, port: u16, user: &str) -> std::path::PathBuf {
    let path = write_config(
        dir,
        port,
        "x",
        "earliest",
        server_id(),
        "password_env = \"ROWBUS_TEST_PW\"",
    );
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("mysql://root@", &format!("mysql://{user}@"));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn wrong_password() {
    let server = MariaDb::shared();
    create_user(
        server,
        "rb_pw",
        "right-password",
        "REPLICATION SLAVE, REPLICATION CLIENT",
    )
    .await;
    let dir = TestDir::new("password");
    let config = config_for_user(&dir, server.port, "rb_pw");
    let (code, log) = run_to_exit(&config, &[("ROWBUS_TEST_PW", "wrong-password")]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("refused user 'rb_pw': access denied"), "{log}");
    assert!(
        log.contains("password_env"),
        "the message says how to fix it: {log}"
    );
    assert!(
        !log.contains("wrong-password"),
        "the password never appears in logs: {log}"
    );
}

#[tokio::test]
async fn user_without_replication_slave() {
    let server = MariaDb::shared();
    create_user(server, "rb_noslave", "pw", "SELECT, REPLICATION CLIENT").await;
    let dir = TestDir::new("noslave");
    let config = config_for_user(&dir, server.port, "rb_noslave");
    let (code, log) = run_to_exit(&config, &[("ROWBUS_TEST_PW", "pw")]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("user 'rb_noslave' lacks the REPLICATION SLAVE privilege"),
        "{log}"
    );
    assert!(log.contains("GRANT REPLICATION SLAVE"), "{log}");
}

async fn settings_error(options: MariaDbOptions, expected: &str) {
    let server = MariaDb::start(options);
    let dir = TestDir::new("settings");
    let config = write_config(&dir, server.port, "x", "earliest", server_id(), "");
    let (code, log) = run_to_exit(&config, &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains(expected), "expected `{expected}` in:\n{log}");
}

#[tokio::test]
async fn binlog_off() {
    let options = MariaDbOptions {
        log_bin: false,
        ..Default::default()
    };
    settings_error(options, "binary logging is off on 127.0.0.1:").await;
}

#[tokio::test]
async fn binlog_not_row_format() {
    let options = MariaDbOptions {
        binlog_format: "STATEMENT",
        ..Default::default()
    };
    settings_error(options, "binlog_format is STATEMENT on 127.0.0.1:").await;
}

#[tokio::test]
async fn binlog_row_image_not_full() {
    let options = MariaDbOptions {
        row_image: "MINIMAL",
        ..Default::default()
    };
    settings_error(options, "binlog_row_image is MINIMAL on 127.0.0.1:").await;
}

#[tokio::test]
async fn server_id_used_by_another_replica() {
    let server = MariaDb::shared();
    let db = server.fresh_database("dup_id").await;
    let id = server_id();
    let first_dir = TestDir::new("dup-id-1");
    let first = Rowbus::start(&write_config(
        &first_dir,
        server.port,
        &db,
        "latest",
        id,
        "",
    ));
    wait_for("the first replica to stream", DEADLINE, || {
        checkpoint(&first_dir)
    });
    let second_dir = TestDir::new("dup-id-2");
    let (code, log) = run_to_exit(
        &write_config(&second_dir, server.port, &db, "latest", id, ""),
        &[],
    );
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!(
            "server_id {id} is already used by another replica"
        )),
        "{log}"
    );
    assert!(
        first.terminate().success(),
        "the first replica is unaffected"
    );
}

#[tokio::test]
async fn unreachable_host_is_retried_with_backoff() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TestDir::new("unreachable");
    let config = write_config(&dir, port, "x", "earliest", server_id(), "");
    let rowbus = Rowbus::start(&config);
    wait_for("three reported attempts", DEADLINE, || {
        let log = rowbus.log();
        (log.matches("retrying with backoff").count() >= 3).then_some(())
    });
    let log = rowbus.log();
    assert!(
        log.contains(&format!("127.0.0.1:{port}")),
        "names the server: {log}"
    );
    assert!(
        log.contains("retry_in_ms=500") && log.contains("retry_in_ms=1000"),
        "backs off: {log}"
    );
    assert!(
        rowbus.terminate().success(),
        "stops promptly while retrying"
    );
}
