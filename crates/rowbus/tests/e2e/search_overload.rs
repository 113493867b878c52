//! The search sink against an overloaded server: a proxy in front of osmem-server answers the first
//! bulk requests with every item refused as 429 `es_rejected_execution_exception` (as a busy
//! Elasticsearch does), then one with HTTP 503, then lets them through. Every change arrives once
//! the server takes them, and the log names the refusals.

use crate::database_sinks::add_sink;
use crate::search_sink::documents;
use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use mysql_async::prelude::Queryable;
use rowbus_testkit::{MariaDb, Osmem};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

/// Bulk requests answered with refused items before one answered 503, then none refused.
const REFUSED: usize = 3;

struct Proxy {
    upstream: String,
    bulks: AtomicUsize,
}

/// An answer to a bulk request that refuses each of its documents as overloaded.
fn all_rejected(body: &[u8]) -> Value {
    let items: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .filter_map(|line| {
            let (op, meta) = line.as_object()?.iter().next()?;
            let action = ["index", "create", "update", "delete"].contains(&op.as_str());
            action.then(|| {
                json!({op.clone(): {"_index": meta["_index"], "_id": meta["_id"], "status": 429,
                    "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution: queue capacity reached"}}})
            })
        })
        .collect();
    json!({"took": 1, "errors": true, "items": items})
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if uri.path().ends_with("_bulk") {
        let n = proxy.bulks.fetch_add(1, SeqCst);
        if n < REFUSED {
            return (StatusCode::OK, all_rejected(&body).to_string());
        }
        if n == REFUSED {
            return (StatusCode::SERVICE_UNAVAILABLE, "busy".into());
        }
    }
    let url = format!("{}{uri}", proxy.upstream);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    tokio::task::spawn_blocking(move || {
        let answer = ureq::request(method.as_str(), &url)
            .set("content-type", &content_type)
            .send_bytes(&body);
        let response = match answer {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()),
        };
        let status = StatusCode::from_u16(response.status()).unwrap();
        (status, response.into_string().unwrap_or_default())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_items_are_retried_until_the_server_takes_them() {
    let server = MariaDb::shared();
    let osmem = Osmem::shared();
    let db = server.fresh_database("search_busy").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await
    .unwrap();
    let proxy = Arc::new(Proxy {
        upstream: osmem.url.clone(),
        bulks: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = TestDir::new("search-busy");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &format!("[sinks.search]\ntype = \"opensearch\"\nurl = \"{url}\"\nworkers = 1"),
    );
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    for id in 1..=20 {
        conn.query_drop(format!("INSERT INTO `{db}`.t VALUES ({id}, 'v{id}')"))
            .await
            .unwrap();
    }
    conn.query_drop(format!("DELETE FROM `{db}`.t WHERE id = 7"))
        .await
        .unwrap();
    let index = format!("{db}.t").to_lowercase();
    let want: Vec<(String, Value)> = (1..=20)
        .filter(|id| *id != 7)
        .map(|id| (id.to_string(), json!({"id": id, "v": format!("v{id}")})))
        .collect();
    eventually(
        || async { documents(osmem, &index) == want },
        || async { rowbus.log() },
    )
    .await;
    let log = rowbus.log();
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    serving.abort();
    assert!(proxy.bulks.load(SeqCst) > REFUSED + 1);
    assert!(
        log.contains(
            "429 es_rejected_execution_exception: rejected execution: queue capacity reached"
        ),
        "{log}"
    );
    assert!(log.contains("HTTP 503: busy"), "{log}");
    // Retried, never parked: nothing in the failure log.
    assert!(!log.contains("failure log"), "{log}");
}
