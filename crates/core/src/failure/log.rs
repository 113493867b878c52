//! One sink's failure log on disk: an append-only file of records, each framed as its length (u32
//! little-endian), the CRC32 of its bytes (u32 little-endian) and the protobuf bytes. A record is
//! fsynced before its event counts as acknowledged. On open, a torn last record (a crash in the
//! middle of an append) is found by its length or checksum and cut off.

use super::record::{FailureRecord, Parked, Parking};
use prost::Message;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The failure log of sink `sink` under `data_dir`.
pub fn path(data_dir: &Path, sink: &str) -> PathBuf {
    data_dir.join("failures").join(format!("{sink}.log"))
}

/// The records of a log file (none when it does not exist), and how many bytes of torn tail
/// follow the last whole record. A torn tail is a last record cut short by a crash (its frame runs
/// past the end, or it is the last frame and fails its checksum) or zero bytes to the end; a bad
/// record with whole records after it is corruption, and an error naming its offset.
pub fn read(path: &Path) -> io::Result<(Vec<FailureRecord>, usize)> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let corrupt = |at: usize, what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {what} at offset {at}; the failure log is damaged (not a torn tail), \
                     move it aside to start without it",
                path.display()
            ),
        )
    };
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at..].iter().all(|&b| b == 0) || bytes.len() - at < 8 {
            break; // zeros or a partial header to the end: torn
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let end = at + 8 + len;
        let Some(body) = bytes.get(at + 8..end) else {
            break; // runs past the end: torn
        };
        if len == 0 || crc32fast::hash(body) != crc {
            if bytes[end..].iter().all(|&b| b == 0) {
                break; // the last record, damaged by the crash: torn
            }
            return Err(corrupt(at, "a record that fails its checksum"));
        }
        let record = FailureRecord::decode(body)
            .ok()
            .filter(|r| r.event.is_some())
            .ok_or_else(|| corrupt(at, "a record that does not decode"))?;
        records.push(record);
        at = end;
    }
    Ok((records, bytes.len() - at))
}

/// Makes a created or renamed entry of `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn frame(record: &FailureRecord, out: &mut Vec<u8>) {
    let body = record.encode_to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// Replaces the log with `records` (after a replay or a purge), atomically.
pub fn rewrite(path: &Path, records: &[FailureRecord]) -> io::Result<()> {
    let mut out = Vec::new();
    for r in records {
        frame(r, &mut out);
    }
    if let Some(dir) = path.parent() {
        create_dir_durably(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(&out)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Creates `dir` (and its parents) so that the entries survive a power loss.
fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// An event's place in the binlog and its table and key, to know it is in the log already (a
/// transform's copy of a change has the change's place but its own table or key; two outputs
/// alike in all of these are the same change twice, logged once).
type EventAt = (String, u64, u32, String, String, String);

fn event_at(r: &FailureRecord) -> Option<EventAt> {
    r.event.as_ref().map(|e| {
        let key = format!("{:?}", e.key);
        (
            e.file.clone(),
            e.pos,
            e.row,
            e.db.clone(),
            e.table.clone(),
            key,
        )
    })
}

/// An open failure log, appended to by its sink's worker.
#[derive(Debug)]
pub struct FailureLog {
    path: PathBuf,
    file: File,
    next_id: u64,
    parked: Parked,
    logged: HashSet<EventAt>,
    records: usize,
    /// When each record last failed, for seeding the failure-rate guard after a restart.
    failed_ms: Vec<u64>,
}

impl FailureLog {
    /// Opens (creating) the log, cutting a torn tail; a damaged log is an error.
    pub fn open(path: &Path) -> io::Result<FailureLog> {
        if let Some(dir) = path.parent() {
            create_dir_durably(dir)?;
        }
        let (records, torn) = read(path)?;
        if torn > 0 {
            tracing::warn!(path = %path.display(), bytes = torn, "failure log ends in a torn record; cutting it off");
            let keep = fs::metadata(path)?.len() - torn as u64;
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(keep)?;
            file.sync_all()?;
        }
        let existed = path.exists();
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        if !existed {
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
        }
        let mut parked = Parked::default();
        for r in &records {
            parked.add(&r.parking());
        }
        Ok(FailureLog {
            path: path.to_path_buf(),
            file,
            next_id: records.iter().map(|r| r.id).max().unwrap_or(0) + 1,
            parked,
            logged: records.iter().filter_map(event_at).collect(),
            records: records.len(),
            failed_ms: records
                .iter()
                .filter(|r| !r.parked)
                .map(|r| r.last_ms)
                .collect(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a change with this parking must follow earlier ones into the log.
    pub fn parks(&self, p: &Parking) -> bool {
        self.parked.parks(p)
    }

    /// How many records the log holds.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// When the records that failed (not parked) failed last, in ms since the epoch.
    pub fn failed_ms(&self) -> &[u64] {
        &self.failed_ms
    }

    /// Appends records durably (one fsync for all), giving each its id. A record of an event the
    /// log already holds (logged again after a crash before the checkpoint moved) is left out.
    pub fn append(&mut self, records: &mut Vec<FailureRecord>) -> io::Result<()> {
        records.retain(|r| event_at(r).is_none_or(|at| !self.logged.contains(&at)));
        let mut out = Vec::new();
        for r in records.iter_mut() {
            r.id = self.next_id;
            self.next_id += 1;
            frame(r, &mut out);
        }
        if out.is_empty() {
            return Ok(());
        }
        self.file.write_all(&out)?;
        self.file.sync_data()?;
        for r in records.iter() {
            self.parked.add(&r.parking());
            self.logged.extend(event_at(r));
            if !r.parked {
                self.failed_ms.push(r.last_ms);
            }
        }
        self.records += records.len();
        Ok(())
    }
}
