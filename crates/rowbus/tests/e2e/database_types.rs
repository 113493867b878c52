//! Every column of the decoder's type matrix replicated into PostgreSQL (with the documented type
//! mapping) and into MariaDB, value by value: each column is read back from the source and from the
//! target in one canonical text form, and compared (floats, times and JSON by value).

use crate::support::*;
use crate::type_matrix::{GEOMETRY_FIRST, INSERTS, TABLE};
use mysql_async::prelude::Queryable;
use rowbus_testkit::MariaDb;
use std::time::Duration;

/// How a column's canonical text is compared.
#[derive(Clone, Copy)]
enum Cmp {
    Text,
    Float,
    Seconds,
    Json,
}

/// (column, comparison, MySQL expression, PostgreSQL expression, PostgreSQL type).
const COLUMNS: &[(&str, Cmp, &str, &str, &str)] = &[
    (
        "id",
        Cmp::Text,
        "CAST(id AS CHAR)",
        "id::text",
        "integer PRIMARY KEY",
    ),
    ("ti", Cmp::Text, "CAST(ti AS CHAR)", "ti::text", "smallint"),
    ("tu", Cmp::Text, "CAST(tu AS CHAR)", "tu::text", "smallint"),
    ("si", Cmp::Text, "CAST(si AS CHAR)", "si::text", "smallint"),
    ("su", Cmp::Text, "CAST(su AS CHAR)", "su::text", "integer"),
    ("mi", Cmp::Text, "CAST(mi AS CHAR)", "mi::text", "integer"),
    ("mu", Cmp::Text, "CAST(mu AS CHAR)", "mu::text", "integer"),
    ("i", Cmp::Text, "CAST(i AS CHAR)", "i::text", "integer"),
    ("iu", Cmp::Text, "CAST(iu AS CHAR)", "iu::text", "bigint"),
    ("bi", Cmp::Text, "CAST(bi AS CHAR)", "bi::text", "bigint"),
    (
        "bu",
        Cmp::Text,
        "CAST(bu AS CHAR)",
        "bu::text",
        "numeric(20)",
    ),
    (
        "d1",
        Cmp::Text,
        "CAST(d1 AS CHAR)",
        "d1::text",
        "numeric(10,2)",
    ),
    (
        "d2",
        Cmp::Text,
        "CAST(d2 AS CHAR)",
        "d2::text",
        "numeric(65,30)",
    ),
    (
        "d3",
        Cmp::Text,
        "CAST(d3 AS CHAR)",
        "d3::text",
        "numeric(5,0)",
    ),
    ("f", Cmp::Float, "CAST(f AS CHAR)", "f::text", "real"),
    (
        "db",
        Cmp::Float,
        "CAST(db AS CHAR)",
        "db::text",
        "double precision",
    ),
    (
        "dt",
        Cmp::Text,
        "IF(dt < '0001-01-01', NULL, DATE_FORMAT(dt, '%Y-%m-%d'))",
        "to_char(dt, 'YYYY-MM-DD')",
        "date",
    ),
    (
        "dtm",
        Cmp::Text,
        "IF(dtm < '0001-01-01', NULL, DATE_FORMAT(dtm, '%Y-%m-%d %H:%i:%s.%f'))",
        "to_char(dtm, 'YYYY-MM-DD HH24:MI:SS.US')",
        "timestamp(0)",
    ),
    (
        "dtm3",
        Cmp::Text,
        "DATE_FORMAT(dtm3, '%Y-%m-%d %H:%i:%s.%f')",
        "to_char(dtm3, 'YYYY-MM-DD HH24:MI:SS.US')",
        "timestamp(3)",
    ),
    (
        "dtm6",
        Cmp::Text,
        "DATE_FORMAT(dtm6, '%Y-%m-%d %H:%i:%s.%f')",
        "to_char(dtm6, 'YYYY-MM-DD HH24:MI:SS.US')",
        "timestamp(6)",
    ),
    (
        "ts",
        Cmp::Float,
        "CAST(UNIX_TIMESTAMP(ts) AS CHAR)",
        "extract(epoch from ts)::text",
        "timestamptz(0)",
    ),
    (
        "ts1",
        Cmp::Float,
        "CAST(UNIX_TIMESTAMP(ts1) AS CHAR)",
        "extract(epoch from ts1)::text",
        "timestamptz(1)",
    ),
    (
        "ts6",
        Cmp::Float,
        "CAST(UNIX_TIMESTAMP(ts6) AS CHAR)",
        "extract(epoch from ts6)::text",
        "timestamptz(6)",
    ),
    (
        "tm",
        Cmp::Seconds,
        "CAST(tm AS CHAR)",
        "tm::text",
        "interval",
    ),
    (
        "tm2",
        Cmp::Seconds,
        "CAST(tm2 AS CHAR)",
        "tm2::text",
        "interval",
    ),
    (
        "tm6",
        Cmp::Seconds,
        "CAST(tm6 AS CHAR)",
        "tm6::text",
        "interval",
    ),
    ("y", Cmp::Text, "CAST(y + 0 AS CHAR)", "y::text", "smallint"),
    ("c", Cmp::Text, "c", "c::text", "char(10)"),
    ("vc", Cmp::Text, "vc", "vc", "varchar(300)"),
    ("tx", Cmp::Text, "tx", "tx", "text"),
    (
        "l1",
        Cmp::Text,
        "CONVERT(l1 USING utf8mb4)",
        "l1",
        "varchar(20)",
    ),
    (
        "vb",
        Cmp::Text,
        "HEX(vb)",
        "upper(encode(vb, 'hex'))",
        "bytea",
    ),
    (
        "bn",
        Cmp::Text,
        "HEX(bn)",
        "upper(encode(bn, 'hex'))",
        "bytea",
    ),
    (
        "bl",
        Cmp::Text,
        "HEX(bl)",
        "upper(encode(bl, 'hex'))",
        "bytea",
    ),
    (
        "mb",
        Cmp::Text,
        "HEX(mb)",
        "upper(encode(mb, 'hex'))",
        "bytea",
    ),
    ("e", Cmp::Text, "CAST(e AS CHAR)", "e", "text"),
    ("st", Cmp::Text, "CAST(st AS CHAR)", "st", "text"),
    (
        "bt1",
        Cmp::Text,
        "CAST(bt1 + 0 AS CHAR)",
        "bt1::text",
        "bigint",
    ),
    (
        "bt64",
        Cmp::Text,
        "CAST(bt64 + 0 AS CHAR)",
        "bt64::text",
        "numeric(20)",
    ),
    ("js", Cmp::Json, "js", "js::text", "jsonb"),
    ("g", Cmp::Text, "HEX(g)", "upper(encode(g, 'hex'))", "bytea"),
];

type Rows = Vec<Vec<Option<String>>>;

async fn mysql_rows(server: &MariaDb, db: &str) -> Rows {
    let exprs: Vec<&str> = COLUMNS.iter().map(|c| c.2).collect();
    let mut conn = server.conn().await;
    // Empty until the sink has created the table.
    let rows: Vec<mysql_async::Row> = conn
        .query(format!(
            "SELECT {} FROM `{db}`.types ORDER BY id",
            exprs.join(", ")
        ))
        .await
        .unwrap_or_default();
    rows.into_iter()
        .map(|r| {
            (0..COLUMNS.len())
                .map(|i| r.get::<Option<String>, _>(i).flatten())
                .collect()
        })
        .collect()
}

async fn pg_rows(client: &tokio_postgres::Client, schema: &str) -> Rows {
    let exprs: Vec<&str> = COLUMNS.iter().map(|c| c.3).collect();
    let sql = format!(
        "SELECT {} FROM \"{schema}\".types ORDER BY id",
        exprs.join(", ")
    );
    // Empty until the sink has created the table.
    let rows = client.query(&sql, &[]).await.unwrap_or_default();
    rows.iter()
        .map(|r| {
            (0..COLUMNS.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect()
}

/// `[-]H:MM:SS[.f]` (MySQL TIME, PostgreSQL interval) as seconds.
fn seconds(text: &str) -> f64 {
    let (sign, rest) = text.strip_prefix('-').map_or((1.0, text), |r| (-1.0, r));
    let parts: Vec<f64> = rest.split(':').map(|p| p.parse().unwrap()).collect();
    sign * (parts[0] * 3600.0 + parts[1] * 60.0 + parts[2])
}

fn same(cmp: Cmp, a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => match cmp {
            Cmp::Text => a == b,
            Cmp::Float => {
                let (x, y): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
                x == y || ((x - y) / x.abs().max(1e-300)).abs() < 1e-6
            }
            Cmp::Seconds => (seconds(a) - seconds(b)).abs() < 1e-9,
            Cmp::Json => {
                serde_json::from_str::<serde_json::Value>(a).unwrap()
                    == serde_json::from_str::<serde_json::Value>(b).unwrap()
            }
        },
        (None, None) => true,
        _ => false,
    }
}

fn differences(source: &Rows, target: &Rows) -> Vec<String> {
    if source.len() != target.len() {
        return vec![format!(
            "{} rows in the source, {} in the target",
            source.len(),
            target.len()
        )];
    }
    let mut out = Vec::new();
    for (s, t) in source.iter().zip(target) {
        for (i, (a, b)) in s.iter().zip(t).enumerate() {
            if !same(COLUMNS[i].1, a, b) {
                out.push(format!(
                    "row {:?} column {}: source {a:?}, target {b:?}",
                    s[0], COLUMNS[i].0
                ));
            }
        }
    }
    out
}

async fn replicate(server: &MariaDb, db: &str, dir: &TestDir, sink: &str) -> Rowbus {
    let config = config_from_now(server, dir, db, "").await;
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n{sink}\ntables = [\"{db}.types\"]\n"),
    )
    .unwrap();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    server
        .conn()
        .await
        .query_drop(format!("USE `{db}`; {INSERTS}"))
        .await
        .unwrap();
    rowbus
}

async fn source_with_types(server: &MariaDb, name: &str) -> String {
    let db = server.fresh_database(name).await;
    server
        .conn()
        .await
        .query_drop(format!("USE `{db}`; {TABLE}; {GEOMETRY_FIRST}"))
        .await
        .unwrap();
    db
}

async fn wait_equal<F, Fut>(rowbus: &Rowbus, mut read: F, source: Rows)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Rows>,
{
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let diff = differences(&source, &read().await);
        if diff.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{diff:#?}\n{}",
            rowbus.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_into_mariadb() {
    let server = MariaDb::shared();
    let db = source_with_types(server, "types_my").await;
    let target = server.fresh_database("types_my_target").await;
    server
        .conn()
        .await
        .query_drop(format!("USE `{target}`; {TABLE}"))
        .await
        .unwrap();
    let dir = TestDir::new("types-my");
    let sink = format!(
        "[sinks.my]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{}\"\nschema = \"{target}\"",
        server.port
    );
    let rowbus = replicate(server, &db, &dir, &sink).await;
    let source = mysql_rows(server, &db).await;
    assert_eq!(source.len(), 3);
    wait_equal(&rowbus, || mysql_rows(server, &target), source).await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_into_postgresql() {
    let server = MariaDb::shared();
    let db = source_with_types(server, "types_pg").await;
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let columns: Vec<String> = COLUMNS.iter().map(|c| format!("{} {}", c.0, c.4)).collect();
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{db}\" CASCADE; CREATE SCHEMA \"{db}\"; CREATE TABLE \"{db}\".types ({})",
            columns.join(", ")
        ))
        .await
        .unwrap();
    let dir = TestDir::new("types-pg");
    let sink = "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"";
    let rowbus = replicate(server, &db, &dir, sink).await;
    let source = mysql_rows(server, &db).await;
    wait_equal(&rowbus, || pg_rows(&client, &db), source).await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    client
        .batch_execute(&format!("DROP SCHEMA \"{db}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_target_tables_are_created_from_the_source() {
    let server = MariaDb::shared();
    let db = source_with_types(server, "types_create").await;
    let target = format!("{db}_created");
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{db}\" CASCADE"))
        .await
        .unwrap();
    let dir = TestDir::new("types-create");
    // Both sinks start without their tables: the PostgreSQL mapping, and MariaDB's own types.
    let sink = format!(
        "[sinks.pg]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\ncreate_tables = true\n\
         tables = [\"{db}.types\"]\n\n[sinks.my]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{}\"\n\
         schema = \"{target}\"\ncreate_tables = true",
        server.port
    );
    let rowbus = replicate(server, &db, &dir, &sink).await;
    let source = mysql_rows(server, &db).await;
    wait_equal(&rowbus, || pg_rows(&client, &db), source.clone()).await;
    wait_equal(&rowbus, || mysql_rows(server, &target), source).await;
    assert!(
        rowbus.log().contains("created the target table"),
        "{}",
        rowbus.log()
    );
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    client
        .batch_execute(&format!("DROP SCHEMA \"{db}\" CASCADE"))
        .await
        .unwrap();
    server
        .conn()
        .await
        .query_drop(format!("DROP DATABASE `{target}`"))
        .await
        .unwrap();
}
