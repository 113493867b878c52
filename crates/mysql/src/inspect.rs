//! Offline decoding of binlog files (`rowbus inspect binlog`): every event as a JSON line with its
//! position and type, and every row change as a native change event, decoded by the same decoder
//! the live source uses. Framing is ours and checked (magic, event sizes against the file, CRC32
//! checksums), so a truncated or corrupt file ends with an error naming the file and offset; no
//! input makes it panic.

use crate::decode::{needs_parsing, Decoder};
use crate::mariadb;
use mysql_common::binlog::consts::{BinlogVersion, EventType};
use mysql_common::binlog::events::{Event, EventData};
use mysql_common::binlog::EventStreamReader;
use rowbus_core::event::{ChangeEvent, SourceRecord};
use rowbus_core::table_filter::TableFilter;
use rowbus_core::Position;
use serde_json::{json, Value as Json};
use std::io::{BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

const HEADER_LEN: usize = 19;
/// Larger than any event a server writes (max_allowed_packet is at most 1 GiB).
const MAX_EVENT: usize = 1 << 30;

/// One line of output: an event's description, or a row change.
#[derive(Debug, Clone, Copy)]
pub enum Line<'a> {
    Event(&'a Json),
    Change(&'a ChangeEvent),
}

#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    /// Print only events starting at or after this offset.
    pub start: Option<u64>,
    /// Stop before the event starting at this offset.
    pub stop: Option<u64>,
    /// Row changes of these tables only (events are printed regardless).
    pub tables: TableFilter,
    /// Do not verify CRC32 checksums.
    pub skip_checksums: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InspectSummary {
    pub events: u64,
    pub rows: u64,
    /// The last transaction boundary: where a reader would resume, with its GTID state.
    pub last_position: Option<Position>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: offset {offset}: {message}")]
pub struct InspectError {
    pub file: String,
    pub offset: u64,
    pub message: String,
}

/// Decodes one binlog file, calling `out` with each JSON line.
pub fn inspect_file(
    path: &Path,
    options: &InspectOptions,
    out: &mut dyn FnMut(Line<'_>),
) -> Result<InspectSummary, InspectError> {
    let fail = |offset: u64, message: String| InspectError {
        file: path.display().to_string(),
        offset,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(0, format!("cannot open: {e}")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    inspect_reader(
        &path.display().to_string(),
        &name,
        BufReader::with_capacity(1 << 20, file),
        len,
        options,
        out,
    )
}

/// Decodes binlog bytes of `len` bytes from `input`; `display` names it in errors, `name` is its
/// binlog file name for event positions.
pub fn inspect_reader(
    display: &str,
    name: &str,
    mut input: impl Read,
    len: u64,
    options: &InspectOptions,
    out: &mut dyn FnMut(Line<'_>),
) -> Result<InspectSummary, InspectError> {
    let fail = |offset: u64, message: String| InspectError {
        file: display.to_string(),
        offset,
        message,
    };
    let mut magic = [0u8; 4];
    if input.read_exact(&mut magic).is_err() || magic != [0xfe, b'b', b'i', b'n'] {
        return Err(fail(
            0,
            "not a binlog file (it does not start with \\xfebin)".into(),
        ));
    }
    let mut decoder = Decoder::new("inspect", options.tables.clone(), Position::new(name, 4));
    if options.skip_checksums {
        decoder.skip_checksums();
    }
    let mut reader = FileReader {
        esr: EventStreamReader::new(BinlogVersion::Version4),
        decoder,
        summary: InspectSummary::default(),
        records: Vec::new(),
    };
    let mut offset = 4u64;
    let mut bytes = Vec::new();
    while next_event(&mut input, offset, len, &mut bytes).map_err(|m| fail(offset, m))? {
        if options.stop.is_some_and(|stop| offset >= stop) {
            break;
        }
        let print = options.start.is_none_or(|start| offset >= start);
        reader
            .event(&bytes, offset, print, out)
            .map_err(|m| fail(offset, m))?;
        offset += bytes.len() as u64;
    }
    let mut summary = reader.summary;
    summary.last_position = Some(reader.decoder.last_boundary().clone());
    Ok(summary)
}

/// Reads the next whole event, checking its declared size against the file.
fn next_event(
    input: &mut impl Read,
    offset: u64,
    file_len: u64,
    bytes: &mut Vec<u8>,
) -> Result<bool, String> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match input.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(format!(
                    "truncated event header ({got} of {HEADER_LEN} bytes)"
                ))
            }
            Ok(n) => got += n,
            Err(e) => return Err(format!("read error: {e}")),
        }
    }
    let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
    if !(HEADER_LEN..=MAX_EVENT).contains(&size) || offset + size as u64 > file_len {
        return Err(format!(
            "corrupt or truncated event: it declares {size} bytes, the file has {} left",
            file_len.saturating_sub(offset)
        ));
    }
    // One buffer for every event: no fresh (zeroed) allocation per event.
    bytes.clear();
    bytes.extend_from_slice(&header);
    bytes.resize(size, 0);
    input
        .read_exact(&mut bytes[HEADER_LEN..])
        .map_err(|e| format!("truncated event: {e}"))?;
    Ok(true)
}

struct FileReader {
    esr: EventStreamReader,
    decoder: Decoder,
    summary: InspectSummary,
    records: Vec<SourceRecord>,
}

/// Runs a parser of mysql_common on bytes we have framed; a panic inside it becomes an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> std::io::Result<T>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: malformed event")),
    }
}

impl FileReader {
    fn event(
        &mut self,
        bytes: &[u8],
        offset: u64,
        print: bool,
        out: &mut dyn FnMut(Line<'_>),
    ) -> Result<(), String> {
        let event = guarded("undecodable event", || self.esr.read(bytes))?
            .ok_or_else(|| "empty event".to_string())?;
        self.handle(&event, offset, print, out)?;
        if event.header().event_type_raw() == EventType::TRANSACTION_PAYLOAD_EVENT as u8 {
            self.payload(&event, offset, print, out)?;
        }
        Ok(())
    }

    /// The events inside a compressed transaction (MySQL 8.0.20+).
    fn payload(
        &mut self,
        event: &Event,
        offset: u64,
        print: bool,
        out: &mut dyn FnMut(Line<'_>),
    ) -> Result<(), String> {
        let payload = guarded("transaction payload", || {
            let tpe =
                event.read_event::<mysql_common::binlog::events::TransactionPayloadEvent<'_>>()?;
            let mut inner = Vec::new();
            tpe.decompressed()?.read_to_end(&mut inner)?;
            Ok(inner)
        })?;
        let mut cursor = std::io::Cursor::new(payload);
        while let Some(inner) = guarded("event inside a transaction payload", || {
            self.esr.read_decompressed(&mut cursor)
        })? {
            self.handle(&inner, offset, print, out)?;
        }
        Ok(())
    }

    fn handle(
        &mut self,
        event: &Event,
        offset: u64,
        print: bool,
        out: &mut dyn FnMut(Line<'_>),
    ) -> Result<(), String> {
        self.summary.events += 1;
        self.records.clear();
        self.decoder
            .decode(event, &mut self.records)
            .map_err(|e| e.message)?;
        let changes = self
            .records
            .iter()
            .filter(|r| matches!(r, SourceRecord::Change(_)))
            .count();
        self.summary.rows += changes as u64;
        if print {
            out(Line::Event(&describe(event, offset, changes)));
            for record in &self.records {
                if let SourceRecord::Change(change) = record {
                    out(Line::Change(change));
                }
            }
        }
        Ok(())
    }
}

/// The JSON line describing one event.
fn describe(event: &Event, offset: u64, rows: usize) -> Json {
    let header = event.header();
    let raw = header.event_type_raw();
    let mut line = json!({
        "pos": offset,
        "end": header.log_pos(),
        "type": type_name(raw),
        "server_id": header.server_id(),
        "timestamp": header.timestamp(),
    });
    let parsed = if needs_parsing(raw) || raw == EventType::FORMAT_DESCRIPTION_EVENT as u8 {
        event.read_data()
    } else {
        Ok(None)
    };
    let extra = match parsed {
        Ok(Some(EventData::QueryEvent(q))) => json!({"db": q.schema(), "query": q.query()}),
        Ok(Some(EventData::RotateEvent(r))) => {
            json!({"next_file": r.name(), "next_pos": r.position()})
        }
        Ok(Some(EventData::TableMapEvent(t))) => {
            json!({"table_id": t.table_id(), "db": t.database_name(), "table": t.table_name(), "columns": t.columns_count()})
        }
        Ok(Some(EventData::RowsEvent(r))) => json!({"table_id": r.table_id(), "rows": rows}),
        Ok(Some(EventData::FormatDescriptionEvent(f))) => {
            json!({"server_version": f.server_version()})
        }
        _ => mariadb_details(event, raw),
    };
    if let (Json::Object(line), Json::Object(extra)) = (&mut line, extra) {
        line.extend(extra);
    }
    line
}

fn mariadb_details(event: &Event, raw: u8) -> Json {
    match raw {
        mariadb::GTID_EVENT => mariadb::parse_gtid_event(event.data(), event.header().server_id())
            .map_or(
                Json::Null,
                |g| json!({"gtid": g.gtid.to_string(), "standalone": g.standalone}),
            ),
        mariadb::GTID_LIST_EVENT => mariadb::parse_gtid_list(event.data()).map_or(
            Json::Null,
            |list| json!({"gtids": list.iter().map(ToString::to_string).collect::<Vec<_>>()}),
        ),
        mariadb::ANNOTATE_ROWS_EVENT => json!({"query": String::from_utf8_lossy(event.data())}),
        t if t == EventType::XID_EVENT as u8 => event.data().get(..8).map_or(
            Json::Null,
            |b| json!({"xid": u64::from_le_bytes(b.try_into().unwrap_or_default())}),
        ),
        _ => Json::Null,
    }
}

fn type_name(raw: u8) -> String {
    match raw {
        mariadb::ANNOTATE_ROWS_EVENT => "MARIADB_ANNOTATE_ROWS_EVENT".into(),
        mariadb::BINLOG_CHECKPOINT_EVENT => "MARIADB_BINLOG_CHECKPOINT_EVENT".into(),
        mariadb::GTID_EVENT => "MARIADB_GTID_EVENT".into(),
        mariadb::GTID_LIST_EVENT => "MARIADB_GTID_LIST_EVENT".into(),
        mariadb::START_ENCRYPTION_EVENT => "MARIADB_START_ENCRYPTION_EVENT".into(),
        other => EventType::try_from(other)
            .map_or(format!("UNKNOWN_EVENT_{other}"), |t| format!("{t:?}")),
    }
}
