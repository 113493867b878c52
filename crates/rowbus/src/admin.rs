//! The admin HTTP server (`[admin] listen`): `/health` (the process is up), `/ready` (streaming,
//! and the source lags at most `ready_max_lag`), `/metrics` (Prometheus text) and
//! `/api/v1/status` (JSON: the source's checkpoint, lag and counts, and each sink's, and whether
//! each is paused), and `POST /api/v1/{sources,sinks}/NAME/{pause,resume}`. With a token, every
//! request but `/health` must carry `Authorization: Bearer TOKEN`.

use crate::config::AdminConfig;
use crate::snapshot::Refused;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rowbus_core::control::Controls;
use rowbus_core::event::now_ms;
use rowbus_core::metrics::Metrics;
use rowbus_core::pipeline::Stop;
use rowbus_core::table_filter::TableFilter;
use std::sync::{Arc, RwLock};

/// What the admin API reads and acts on.
pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub controls: Arc<Controls>,
    pub config: AdminConfig,
    pub source: String,
    /// Where snapshot requests go, and the tables the source may snapshot (a reload may
    /// change them).
    pub data_dir: std::path::PathBuf,
    pub tables: RwLock<TableFilter>,
    /// Whether the source reads tables it can snapshot (a MySQL source; not a Kafka source).
    pub snapshots: bool,
    /// The pipeline's stop: not ready once it is requested.
    pub stop: Stop,
    /// Where `POST /api/v1/reload` asks for a reload.
    pub reloads: crate::reload::Requests,
    /// The flow's shape for the dashboard: the pipeline's transforms, each sink's kind (a
    /// reload replaces it).
    pub flow: RwLock<serde_json::Value>,
    /// The sinks' lag over the last minutes, for the dashboard.
    pub history: crate::dashboard::History,
}

impl Admin {
    /// The running sinks' names, in the configuration's order.
    /// The search sinks, by the kinds the flow lists.
    fn search_sinks(&self) -> Vec<String> {
        let flow = self.flow.read().unwrap_or_else(|p| p.into_inner());
        let Some(sinks) = flow["sinks"].as_object() else {
            return Vec::new();
        };
        sinks
            .iter()
            .filter(|(_, kind)| *kind == "opensearch")
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn sinks(&self) -> Vec<String> {
        self.metrics
            .sinks()
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }
}

/// Binds the admin address (an error names it) and serves until `shutdown`: after the pipeline
/// ended, so that it answers while the pipeline drains (`/ready` is then 503).
pub async fn serve(
    state: Arc<Admin>,
    shutdown: Stop,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listen = state.config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("admin.listen: cannot listen on {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "admin API listening");
    let app = Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/status", get(status))
        .route("/api/v1/{kind}/{name}/{action}", post(pause_or_resume))
        .route("/api/v1/snapshots", post(snapshot))
        .route("/api/v1/failures", get(failures))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/failures/replay", post(replay_failures))
        .route("/api/v1/stream", get(crate::dashboard::stream))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .route("/health", get(|| async { "ok\n" }))
        // The page holds no data: it asks the stream, with the token when one is set.
        .route("/", get(crate::dashboard::page))
        .with_state(state.clone());
    tokio::spawn(crate::dashboard::sample(state, shutdown.clone()));
    Ok(tokio::spawn(async move {
        let shutdown = async move { shutdown.wait().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "the admin API stopped");
        }
    }))
}

/// With a token, the request must carry it. Without one (loopback only), a request a web page
/// could make is refused: one naming another host (DNS rebinding), or carrying an `Origin`
/// (a browser's cross-site request); `rowbus status` and curl send neither.
async fn authorize(State(admin): State<Arc<Admin>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let Some(token) = &admin.config.token else {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let local_host = host.is_none_or(|h| {
            let name = h.rsplit_once(':').map_or(h, |(name, _)| name);
            matches!(name, "127.0.0.1" | "localhost" | "[::1]")
        });
        if !local_host || headers.contains_key(header::ORIGIN) {
            let text = "refused: a request from a web page, or for another host name (set a token to allow it)\n";
            return (StatusCode::FORBIDDEN, text).into_response();
        }
        return next.run(request).await;
    };
    {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if !given.is_some_and(|g| same_secret(g, token.expose())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required (Authorization: Bearer TOKEN)\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn same_secret(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn ready(State(admin): State<Arc<Admin>>) -> Response {
    let metrics = &admin.metrics;
    let unavailable =
        |text: &str| (StatusCode::SERVICE_UNAVAILABLE, text.to_string()).into_response();
    if admin.stop.is_triggered() {
        return unavailable("not ready: stopping\n");
    }
    if admin.controls.source.is_paused() {
        return unavailable("not ready: the source is paused\n");
    }
    let lag = metrics.lag_seconds();
    let max = admin.config.ready_max_lag.as_secs_f64();
    if metrics.checkpoint_age_seconds(now_ms()).is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no checkpoint saved yet\n",
        )
            .into_response();
    }
    if lag > max {
        let text = format!("not ready: the source lags {lag:.1} s (ready_max_lag {max} s)\n");
        return (StatusCode::SERVICE_UNAVAILABLE, text).into_response();
    }
    "ready\n".into_response()
}

async fn metrics_text(State(admin): State<Arc<Admin>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        admin.metrics.prometheus(now_ms()),
    )
        .into_response()
}

async fn status(State(admin): State<Arc<Admin>>) -> Response {
    Json(status_now(&admin)).into_response()
}

/// The status as `/api/v1/status` gives it, with the time (`t`, seconds since the epoch), the
/// flow's shape, and after how long a sink counts as stuck.
pub fn status_now(admin: &Admin) -> serde_json::Value {
    let now = now_ms();
    let mut status = serde_json::to_value(admin.metrics.status(now)).unwrap_or_default();
    status["t"] = (now as f64 / 1000.0).into();
    status["stuck_after_seconds"] = (admin.metrics.stuck_after_ms as f64 / 1000.0).into();
    let rates = admin.history.rates();
    status["events_per_second"] = rates.source.into();
    status["flow"] = admin.flow.read().unwrap_or_else(|p| p.into_inner()).clone();
    status["paused"] = admin.controls.source.is_paused().into();
    if let Some(sinks) = status["sinks"].as_array_mut() {
        for sink in sinks {
            let name = sink["name"].as_str().unwrap_or_default();
            let paused = admin.controls.sink(name).is_some_and(|g| g.is_paused());
            let rate = rates.sinks.iter().find(|(n, _)| n == name);
            sink["events_per_second"] = rate.map_or(0.0, |(_, r)| *r).into();
            sink["paused"] = paused.into();
        }
    }
    status
}

#[derive(serde::Deserialize)]
struct FailuresQuery {
    sink: Option<String>,
}

/// `GET /api/v1/failures[?sink=NAME]`: the failure logs' records, oldest first, without events
/// (`rowbus failures show` prints one whole).
async fn failures(State(admin): State<Arc<Admin>>, Query(query): Query<FailuresQuery>) -> Response {
    let sinks = admin.sinks();
    let chosen: Vec<String> = match query.sink {
        Some(sink) if !sinks.contains(&sink) => {
            let text = format!("no sink `{sink}` (sinks: {})\n", sinks.join(", "));
            return (StatusCode::NOT_FOUND, text).into_response();
        }
        Some(sink) => vec![sink],
        None => sinks,
    };
    let data_dir = admin.data_dir.clone();
    let read = tokio::task::spawn_blocking(move || read_failures(&data_dir, &chosen)).await;
    match read {
        Ok(Ok(records)) => Json(records).into_response(),
        Ok(Err(text)) => (StatusCode::INTERNAL_SERVER_ERROR, text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The records of the sinks' failure logs, as JSON objects without their events.
fn read_failures(
    data_dir: &std::path::Path,
    sinks: &[String],
) -> Result<Vec<serde_json::Value>, String> {
    let mut records = Vec::new();
    for sink in sinks {
        let path = rowbus_core::failure::log::path(data_dir, sink);
        let (logged, _torn) = rowbus_core::failure::log::read(&path)
            .map_err(|e| format!("cannot read {}: {e}\n", path.display()))?;
        records.extend(logged.into_iter().map(|r| {
            serde_json::json!({
                "sink": sink, "id": r.id, "table": r.table, "key": r.key, "error": r.error,
                "attempts": r.attempts, "parked": r.parked, "first_ms": r.first_ms,
                "last_ms": r.last_ms, "untransformed": r.untransformed,
            })
        }));
    }
    Ok(records)
}

/// `POST /api/v1/snapshots` with `{"tables": ["db.t"], "where": "SQL", "sinks": ["s"],
/// "reindex": true}` (all but `tables` optional): as `rowbus snapshot`.
async fn snapshot(
    State(admin): State<Arc<Admin>>,
    Json(request): Json<crate::snapshot::Ask>,
) -> Response {
    let tables = request.tables.clone();
    if !admin.snapshots {
        let text = crate::snapshot::no_tables(&admin.source);
        return (StatusCode::BAD_REQUEST, format!("{text}\n")).into_response();
    }
    let state = admin.clone();
    let submitted = tokio::task::spawn_blocking(move || {
        let tables = state.tables.read().unwrap_or_else(|p| p.into_inner());
        let source = (state.source.as_str(), &*tables);
        let search = state.search_sinks();
        crate::snapshot::submit(&state.data_dir, source, (&state.sinks(), &search), &request)
    })
    .await
    .unwrap_or_else(|e| Err(Refused::Io(e.to_string())));
    match submitted {
        Ok(()) => {
            let text = format!("snapshot requested for {}\n", tables.join(", "));
            (StatusCode::ACCEPTED, text).into_response()
        }
        Err(Refused::Tables(message)) => (StatusCode::BAD_REQUEST, message + "\n").into_response(),
        Err(Refused::Io(message)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, message + "\n").into_response()
        }
    }
}

/// `POST /api/v1/sources/NAME/pause` (or `resume`), and the same under `sinks`.
async fn pause_or_resume(
    State(admin): State<Arc<Admin>>,
    Path((kind, name, action)): Path<(String, String, String)>,
) -> Response {
    let sink_gate;
    let gate = match kind.as_str() {
        "sources" if name == admin.source => Some(&admin.controls.source),
        "sinks" => {
            sink_gate = admin.controls.sink(&name);
            sink_gate.as_deref()
        }
        _ => None,
    };
    let Some(gate) = gate else {
        let text = format!(
            "no {kind} `{name}` (source: {}; sinks: {})\n",
            admin.source,
            admin.sinks().join(", ")
        );
        return (StatusCode::NOT_FOUND, text).into_response();
    };
    match action.as_str() {
        "pause" => gate.pause(),
        "resume" => gate.resume(),
        _ => return (StatusCode::NOT_FOUND, "the action is pause or resume\n").into_response(),
    }
    tracing::info!(%kind, %name, %action, "through the admin API");
    format!("{name}: {action}d\n").into_response()
}

/// `POST /api/v1/reload`: reads the configuration file again and applies it (see `reload.rs`);
/// answers once the new configuration runs (200), or why it was refused (400).
async fn reload(State(admin): State<Arc<Admin>>) -> Response {
    ask_pipeline(&admin, crate::reload::Ask::Reload, "reloaded: ").await
}

/// `POST /api/v1/failures/replay[?sink=NAME]`: the sink's failure log (or every sink's)
/// replayed at a transaction boundary while rowbus runs; answers what each replay did.
async fn replay_failures(
    State(admin): State<Arc<Admin>>,
    Query(query): Query<FailuresQuery>,
) -> Response {
    let ask = crate::reload::Ask::ReplayFailures { sink: query.sink };
    ask_pipeline(&admin, ask, "").await
}

/// Sends a reload or replay request to the running process; answers once it ran (200 with what
/// it did) or was refused (400 with why).
async fn ask_pipeline(admin: &Admin, ask: crate::reload::Ask, done: &str) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel::<Result<String, String>>();
    let request = crate::reload::Request {
        ask,
        reply: Some(reply),
    };
    if admin.reloads.send(request).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "rowbus is stopping\n").into_response();
    }
    match answer.await {
        Ok(Ok(summary)) => format!("{done}{summary}\n").into_response(),
        Ok(Err(message)) => {
            (StatusCode::BAD_REQUEST, format!("refused: {message}\n")).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "rowbus is stopping\n").into_response(),
    }
}
