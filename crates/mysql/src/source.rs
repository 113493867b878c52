//! The source loop: connect, check, find the start, stream and decode the binlog into the pipeline's
//! queue; on a lost or silent connection, reconnect with exponential backoff and resume at the last
//! transaction boundary. On a stop request it ends at a transaction boundary, so that the saved
//! checkpoint covers exactly what was delivered.

use crate::config::{MysqlSourceConfig, SnapshotMode, StartFrom};
use crate::connect::{connect, preflight, query, ServerInfo};
use crate::decode::Decoder;
use crate::error::SourceError;
use crate::mariadb::GtidState;
use crate::mysql_gtid::GtidSet;
use crate::schema::history::{At, History};
use crate::schema::{load, Schema};
use crate::snapshot::{included_tables, Snapshotter};
use crate::start;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStream;
use mysql_async::{BinlogStreamRequest, Sid};
use rowbus_core::backoff::Backoff;
use rowbus_core::event::SourceRecord;
use rowbus_core::pipeline::Stop;
use rowbus_core::queue::QueueSender;
use rowbus_core::runs::gather_runs;
use rowbus_core::snapshot::TableProgress;
use rowbus_core::Position;
use std::str::FromStr;
use std::time::Duration;

/// Why a stream session ended without an error.
enum Ended {
    Stopped,
    PipelineClosed,
}

/// Runs the source until `stop` is triggered (returns Ok) or a halting error occurs.
pub async fn run_source(
    mut config: MysqlSourceConfig,
    mut checkpoint: Option<Position>,
    out: QueueSender<SourceRecord>,
    stop: Stop,
) -> Result<(), SourceError> {
    let mut backoff = Reconnect::new(config.max_backoff);
    let mut reader: Option<Decoder> = None;
    let saved = checkpoint.as_ref().and_then(|c| c.snapshot.clone());
    let mut snapshot = Snapshotter::new(&config.name, saved);
    // A snapshot of every included table when there is no checkpoint: the stream starts at the
    // binlog's end and the snapshot brings what was there before.
    let mut snapshot_all = checkpoint.is_none() && config.snapshot != SnapshotMode::Never;
    if snapshot_all {
        config.start = StartFrom::Latest;
    }
    // Set when the server is not the one the history's positions belong to.
    let mut force_bootstrap = false;
    loop {
        if stop.is_triggered() {
            return Ok(());
        }
        let resume = reader
            .as_mut()
            .map(Decoder::prepare_resume)
            .or_else(|| checkpoint.clone());
        // Connecting, checking and requesting may hang on a server that accepts but does not
        // answer: bounded by a timeout, and abandoned on a stop request.
        let limit = config.connect_timeout * 3;
        let session = tokio::select! {
            opened = tokio::time::timeout(limit, open_stream(&config, resume, force_bootstrap || (reader.is_none() && needs_bootstrap(&config)))) => opened.unwrap_or_else(|_| {
                Err(SourceError::retry(format!(
                    "{} accepted the connection but did not answer within {limit:?}",
                    config.addr()
                )))
            }),
            _ = stop.wait() => return Ok(()),
        };
        let mut session = match session {
            Ok(opened) => opened,
            Err(e) if e.is_purged() => {
                start_over(&mut config, e)?;
                (checkpoint, reader, snapshot_all) = (None, None, true);
                snapshot = Snapshotter::new(&config.name, None);
                continue;
            }
            Err(e) if e.is_retriable() => {
                backoff.wait(&config, &e, &stop).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let decoder = match reader.as_mut() {
            Some(decoder) => decoder,
            None => {
                let start = session.start.clone();
                tracing::info!(source = %config.name, position = %start, "starting to read the binlog");
                let history = match open_history(&config, &start, session.base.take()).await {
                    Ok(history) => history,
                    Err(e) if e.is_retriable() => {
                        backoff.wait(&config, &e, &stop).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let decoder = reader.insert(
                    Decoder::new(&config.name, config.tables.clone(), start)
                        .with_history(history, config.on_unknown_ddl),
                );
                if std::mem::take(&mut snapshot_all) {
                    let tables = included_tables(decoder.history().schema(), &config.tables);
                    snapshot.request(tables.into_iter().map(|t| TableProgress::new(t, None)));
                }
                if checkpoint.is_none() {
                    // The start, with the snapshot to make, goes first: the pipeline saves it
                    // before anything is delivered, so a restart resumes here.
                    let mut first = vec![SourceRecord::Boundary(decoder.last_boundary().clone())];
                    snapshot.process(&mut first);
                    if !send_on(&out, &mut first).await {
                        return Ok(());
                    }
                }
                decoder
            }
        };
        if !same_server(&config, decoder, &session.identity, session.base.take())? {
            force_bootstrap = true;
            continue;
        }
        force_bootstrap = false;
        if let Some(oldest) = &session.oldest_binlog {
            compact_history(&config, decoder, oldest)?;
        }
        decoder.begin_session(session.server.checksum);
        snapshot.begin_session();
        let oldest = session.oldest_binlog.clone();
        let pumped = match refresh_schema(&config, decoder).await {
            Ok(()) => {
                let mut io = Pump {
                    out: &out,
                    stop: &stop,
                    backoff: &mut backoff,
                    snapshot: &mut snapshot,
                };
                io.run(&config, session.stream, decoder).await
            }
            Err(e) => Err(e),
        };
        match pumped {
            Ok(Ended::Stopped) => {
                tracing::info!(source = %config.name, position = %decoder.last_boundary(), "source stopped at a transaction boundary");
                return Ok(());
            }
            Ok(Ended::PipelineClosed) => return Ok(()),
            Err(e) if e.is_purged() => {
                let detail = format!(" ({})", e.message);
                let error = purged(&config, decoder.last_boundary(), oldest.as_deref(), &detail);
                start_over(&mut config, error)?;
                (checkpoint, snapshot_all) = (None, true);
                (reader, snapshot) = (None, Snapshotter::new(&config.name, None));
            }
            Err(e) if e.is_retriable() => backoff.wait(&config, &e, &stop).await,
            Err(e) => return Err(e),
        }
    }
}

/// An open binlog stream and what was learned while opening it.
struct Session {
    stream: BinlogStream,
    start: Position,
    server: ServerInfo,
    /// The oldest binlog file the server still has.
    oldest_binlog: Option<String>,
    /// On the first session without a history file: the server's schema and its position.
    base: Option<(Schema, At)>,
    /// Which server this is (`load::server_identity`).
    identity: String,
}

/// Connects, checks the server, and requests the binlog from `resume` (or the configured start).
/// `bootstrap`: also read the schema from information_schema, for a new history.
async fn open_stream(
    config: &MysqlSourceConfig,
    resume: Option<Position>,
    bootstrap: bool,
) -> Result<Session, SourceError> {
    let mut conn = connect(config).await?;
    let server = preflight(&mut conn, config).await?;
    let position = match resume {
        Some(position) => position,
        None => start::resolve(&mut conn, config, &server).await?,
    };
    let identity = load::server_identity(&mut conn, config).await?;
    let logs: Vec<mysql_async::Row> = query(&mut conn, config, "SHOW BINARY LOGS").await?;
    let oldest_binlog: Option<String> = logs.first().and_then(|row| row.get(0));
    let files: Vec<String> = logs.iter().filter_map(|row| row.get(0)).collect();
    if position.gtid.is_none() && !position.file.is_empty() && !files.contains(&position.file) {
        return Err(purged(config, &position, oldest_binlog.as_deref(), ""));
    }
    if let (true, Some(gtid), Some(oldest)) = (server.mariadb, &position.gtid, &oldest_binlog) {
        // MariaDB may serve a GTID state older than its oldest binlog without an error.
        let at_oldest = start::gtid_at(&mut conn, config, &Position::new(oldest, 4)).await?;
        let oldest_state = at_oldest
            .as_deref()
            .and_then(GtidState::parse)
            .unwrap_or_default();
        tracing::debug!(source = %config.name, oldest, at_oldest = ?at_oldest, resume = gtid, "GTID state at the oldest binlog");
        if GtidState::parse(gtid).is_some_and(|ours| ours.is_behind(&oldest_state)) {
            let detail = format!(
                "; the GTID state {gtid} is older than that binlog's start ({})",
                at_oldest.unwrap_or_default()
            );
            return Err(purged(config, &position, oldest_binlog.as_deref(), &detail));
        }
    }
    let base = match bootstrap {
        true => Some(load::read_consistent(&mut conn, config).await?),
        false => None,
    };
    let setup = session_settings(config, &server, &position);
    for sql in &setup {
        conn.query_drop(sql.as_str()).await.map_err(|e| {
            SourceError::from_mysql(
                e,
                &config.addr(),
                &config.user,
                "preparing the binlog stream",
            )
        })?;
    }
    let mysql_gtids = (!server.mariadb && server.mysql_gtid_mode_on)
        .then(|| position.gtid.as_deref().and_then(GtidSet::parse))
        .flatten()
        .filter(|set| !set.is_empty());
    let use_gtid = (server.mariadb && position.gtid.is_some()) || mysql_gtids.is_some();
    let file = if use_gtid {
        Vec::new()
    } else {
        position.file.clone().into_bytes()
    };
    let mut request = BinlogStreamRequest::new(config.server_id)
        .with_hostname(config.replica_name.as_bytes())
        .with_filename(&file)
        .with_pos(if use_gtid { 4 } else { position.pos });
    if let Some(set) = &mysql_gtids {
        // MySQL: COM_BINLOG_DUMP_GTID with the executed set; the server sends what is not in it.
        let sids = set
            .sources()
            .map(|text| Sid::from_str(&text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SourceError::halt(format!("the saved GTID set is not valid: {e}")))?;
        request = request.with_gtid().with_gtid_set(sids);
    }
    let stream = conn.get_binlog_stream(request).await.map_err(|e| {
        SourceError::from_mysql(
            e,
            &config.addr(),
            &config.user,
            crate::error::REQUESTING_BINLOG,
        )
    })?;
    tracing::debug!(source = %config.name, %position, use_gtid, "binlog stream requested");
    Ok(Session {
        stream,
        start: position,
        server,
        oldest_binlog,
        base,
        identity,
    })
}

/// Whether the history's positions are this server's. If not (a failover, a new primary), the
/// history starts again from this server's information_schema, read in `base`; without `base`
/// returns false, and the next session must read it.
fn same_server(
    config: &MysqlSourceConfig,
    decoder: &mut Decoder,
    identity: &str,
    base: Option<(Schema, At)>,
) -> Result<bool, SourceError> {
    let Some(known) = decoder.history().server() else {
        return Ok(true);
    };
    if known == identity {
        return Ok(true);
    }
    let Some((schema, at)) = base else {
        tracing::warn!(source = %config.name, history_server = known, server = identity, "the schema history holds another server's positions (a failover?); reading this server's schema");
        return Ok(false);
    };
    let history = match &config.history_path {
        Some(path) => History::create(path, at, schema),
        None => Ok(History::in_memory(at, schema)),
    }
    .map_err(|e| SourceError::halt(format!("cannot write the schema history: {e}")))?;
    *decoder.history_mut() = history;
    tracing::info!(source = %config.name, server = identity, "schema history started again from this server's information_schema");
    Ok(true)
}

/// Whether the first session must read the schema: there is no history file to continue.
fn needs_bootstrap(config: &MysqlSourceConfig) -> bool {
    config
        .history_path
        .as_deref()
        .is_none_or(|path| !path.exists())
}

/// The schema history to start with: the saved one, rewound to `start`, or a new one from the
/// schema read at the first connection.
async fn open_history(
    config: &MysqlSourceConfig,
    start: &Position,
    base: Option<(Schema, At)>,
) -> Result<History, SourceError> {
    let failed = |e: std::io::Error| {
        SourceError::halt(format!(
            "cannot use the schema history {}: {e}",
            config
                .history_path
                .as_deref()
                .map_or("(in memory)".into(), |p| p.display().to_string())
        ))
    };
    if let Some(path) = &config.history_path {
        if let Some(mut history) = History::open(path).map_err(failed)? {
            if !start.file.is_empty() {
                history.rewind(&At::from(start)).map_err(failed)?;
            }
            if !start.file.is_empty() && At::from(start) < *history.base_at() {
                tracing::warn!(source = %config.name, %start, base = ?history.base_at(), "starting before the oldest schema the history keeps; rows before it are read with that schema");
            }
            return Ok(history);
        }
    }
    let (schema, at) = base.ok_or_else(|| {
        SourceError::retry("the schema history file disappeared; reading the schema again")
    })?;
    let tables: usize = schema.databases.values().map(|d| d.tables.len()).sum();
    tracing::info!(source = %config.name, tables, position = ?at, "schema history started from information_schema");
    if !start.file.is_empty() && At::from(start) < at {
        tracing::warn!(source = %config.name, %start, schema_at = ?at, "the stream starts before the schema just read; rows before it are read with today's schema (exact only with binlog_row_metadata=FULL)");
    }
    match &config.history_path {
        Some(path) => History::create(path, at, schema).map_err(failed),
        None => Ok(History::in_memory(at, schema)),
    }
}

/// Folds history older than the oldest binlog on the server: no start position can need it.
fn compact_history(
    config: &MysqlSourceConfig,
    decoder: &mut Decoder,
    oldest: &str,
) -> Result<(), SourceError> {
    let folded = decoder
        .history_mut()
        .compact(&At::new(oldest, 0))
        .map_err(|e| SourceError::halt(format!("cannot compact the schema history: {e}")))?;
    if folded > 0 {
        tracing::info!(source = %config.name, folded, oldest, "schema history compacted");
    }
    Ok(())
}

/// Re-reads tables from information_schema when the decoder asks (`on_unknown_ddl = "refresh"`).
/// On failure the request stays, for the next session.
async fn refresh_schema(
    config: &MysqlSourceConfig,
    decoder: &mut Decoder,
) -> Result<(), SourceError> {
    let Some(refresh) = decoder.take_refresh() else {
        return Ok(());
    };
    let fresh = async {
        let mut conn = connect(config).await?;
        let only = Some((refresh.db.as_str(), refresh.tables.as_slice()));
        let schema = load::read(&mut conn, config, only).await;
        let _ = conn.disconnect().await;
        schema
    }
    .await;
    let fresh = match fresh {
        Ok(fresh) => fresh,
        Err(e) => {
            decoder.request_refresh(refresh);
            return Err(e);
        }
    };
    decoder
        .apply_refresh(&refresh, &fresh)
        .map_err(|e| SourceError::halt(format!("cannot write the schema history: {e}")))?;
    tracing::info!(source = %config.name, db = %refresh.db, tables = ?refresh.tables, "tables re-read from information_schema");
    Ok(())
}

/// Session variables a replica sets before requesting the binlog.
fn session_settings(
    config: &MysqlSourceConfig,
    server: &ServerInfo,
    position: &Position,
) -> Vec<String> {
    let mut setup = vec![format!(
        "SET @master_heartbeat_period = {}",
        config.heartbeat.as_nanos().max(1_000_000)
    )];
    if server.mariadb {
        setup.push("SET @mariadb_slave_capability = 4".into());
        if let Some(gtid) = &position.gtid {
            setup.push(format!(
                "SET @slave_connect_state = '{}'",
                gtid.replace('\'', "")
            ));
            setup.push("SET @slave_gtid_strict_mode = 0".into());
            setup.push("SET @slave_gtid_ignore_duplicates = 0".into());
        }
    }
    setup
}

/// What a stream session reads into and answers to.
struct Pump<'a> {
    out: &'a QueueSender<SourceRecord>,
    stop: &'a Stop,
    backoff: &'a mut Reconnect,
    snapshot: &'a mut Snapshotter,
}

impl Pump<'_> {
    /// Streams until stopped, closed or failed: decodes each event, merges snapshot chunks in
    /// between transactions, and sends the records on.
    async fn run(
        &mut self,
        config: &MysqlSourceConfig,
        mut stream: BinlogStream,
        decoder: &mut Decoder,
    ) -> Result<Ended, SourceError> {
        let silence = config.heartbeat * 3 + Duration::from_secs(1);
        let mut records = Vec::new();
        loop {
            // Between transactions: snapshot chunks, one after another while each goes out at
            // once (the stream is caught up), until one must wait for the stream.
            while !decoder.in_transaction() {
                self.snapshot_step(config, decoder, &mut records).await?;
                let emitted = !records.is_empty();
                if !self.send(&mut records).await {
                    return Ok(Ended::PipelineClosed);
                }
                if !emitted || self.stop.is_triggered() {
                    break;
                }
            }
            let next = tokio::select! {
                biased;
                _ = self.stop.wait(), if !decoder.in_transaction() => return Ok(Ended::Stopped),
                next = tokio::time::timeout(silence, stream.next()) => next,
            };
            let event = match next {
                Err(_) => {
                    return Err(SourceError::retry(format!(
                        "no event or heartbeat from {} for {:?}: the server or the network stopped answering",
                        config.addr(),
                        silence
                    )))
                }
                Ok(None) => return Err(SourceError::retry(format!("{} closed the binlog stream", config.addr()))),
                Ok(Some(Err(e))) => {
                    return Err(SourceError::from_mysql(e, &config.addr(), &config.user, "reading the binlog"))
                }
                Ok(Some(Ok(event))) => event,
            };
            self.backoff.reset();
            decoder.decode(&event, &mut records)?;
            // Before the statement's boundary can reach a checkpoint, the history must hold the
            // re-read table. If the refresh fails, the request is kept for the next session, which
            // starts after that boundary and refreshes first.
            refresh_schema(config, decoder).await?;
            self.snapshot.process(&mut records);
            if !self.send(&mut records).await {
                return Ok(Ended::PipelineClosed);
            }
            if self.stop.is_triggered() && !decoder.in_transaction() {
                return Ok(Ended::Stopped);
            }
        }
    }

    /// Between transactions: takes snapshot requests, and reads the next chunk when one is due.
    async fn snapshot_step(
        &mut self,
        config: &MysqlSourceConfig,
        decoder: &Decoder,
        records: &mut Vec<SourceRecord>,
    ) -> Result<(), SourceError> {
        if let Some(dir) = &config.snapshot_requests {
            self.snapshot.poll_requests(dir, decoder, &config.tables);
        }
        if self.snapshot.wants_chunk(decoder) && !self.stop.is_triggered() {
            self.snapshot.read_next(config, decoder, records).await?;
        }
        Ok(())
    }

    /// Sends the records on; false when the pipeline is gone.
    async fn send(&mut self, records: &mut Vec<SourceRecord>) -> bool {
        send_on(self.out, records).await
    }
}

/// Sends the records on, the changes of each rows event or snapshot chunk gathered into runs;
/// false when the pipeline is gone.
async fn send_on(out: &QueueSender<SourceRecord>, records: &mut Vec<SourceRecord>) -> bool {
    for record in gather_runs(records.drain(..)) {
        let size = record.approx_size();
        if out.send(record, size).await.is_err() {
            return false;
        }
    }
    true
}

/// The error for a position the server no longer has, naming the file and the oldest one.
fn purged(
    config: &MysqlSourceConfig,
    position: &Position,
    oldest: Option<&str>,
    detail: &str,
) -> SourceError {
    SourceError::purged(format!(
        "the binlog file {} to resume from is no longer on {} (purged); the oldest it has is {}{detail}",
        position.file,
        config.addr(),
        oldest.unwrap_or("none"),
    ))
}

/// After the binlog to resume from was purged: with a snapshot policy, starts again at the
/// binlog's end with a new schema history and a snapshot of every included table; else halts.
fn start_over(config: &mut MysqlSourceConfig, purged: SourceError) -> Result<(), SourceError> {
    if !config.snapshot_when_purged() {
        return Err(SourceError::halt(format!(
            "{}. {}",
            purged.message,
            crate::error::PURGED_FIX
        )));
    }
    let cause = &purged.message;
    tracing::warn!(source = %config.name, "{cause}; starting again at the binlog's end with a snapshot of every included table");
    if let Some(path) = &config.history_path {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(SourceError::halt(format!(
                    "cannot remove the schema history {}: {e}",
                    path.display()
                )));
            }
        }
    }
    config.start = StartFrom::Latest;
    Ok(())
}

/// Backoff between reconnection attempts (500 ms doubling up to `max_backoff`), reported at each.
struct Reconnect(Backoff);

impl Reconnect {
    fn new(max: Duration) -> Self {
        Reconnect(Backoff::new(Duration::from_millis(500), max))
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    async fn wait(&mut self, config: &MysqlSourceConfig, error: &SourceError, stop: &Stop) {
        let (attempt, delay) = self.0.next_delay();
        tracing::warn!(
            source = %config.name,
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            "{error}; retrying with backoff"
        );
        stop.sleep(delay).await;
    }
}
