//! One sink's failure log on disk: an append-only file of records, each framed as its length (u32
//! little-endian), the CRC32 of its bytes (u32 little-endian) and the protobuf bytes. A record is
//! fsynced before its event counts as acknowledged. On open, a torn last record (a crash in the
//! middle of an append) is found by its length or checksum and cut off.

use super::record::FailureRecord;
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
/// follow the last whole record.
pub fn read(path: &Path) -> io::Result<(Vec<FailureRecord>, usize)> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let Ok(record) = FailureRecord::decode(body) else {
            break;
        };
        records.push(record);
        at += 8 + len;
    }
    Ok((records, bytes.len() - at))
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
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(&out)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// An open failure log, appended to by its sink's worker.
#[derive(Debug)]
pub struct FailureLog {
    path: PathBuf,
    file: File,
    next_id: u64,
    /// Keys with a record in the log (for `on_failure = "park_key"`).
    parked: HashSet<String>,
    records: usize,
}

impl FailureLog {
    /// Opens (creating) the log, cutting a torn tail.
    pub fn open(path: &Path) -> io::Result<FailureLog> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let (records, torn) = read(path)?;
        if torn > 0 {
            tracing::warn!(path = %path.display(), bytes = torn, "failure log ends in a torn record; cutting it off");
            let keep = fs::metadata(path)?.len() - torn as u64;
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(keep)?;
            file.sync_all()?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FailureLog {
            path: path.to_path_buf(),
            file,
            next_id: records.iter().map(|r| r.id).max().unwrap_or(0) + 1,
            parked: records.iter().map(|r| r.key.clone()).collect(),
            records: records.len(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a change of this key is in the log.
    pub fn is_parked(&self, key: &str) -> bool {
        self.parked.contains(key)
    }

    /// How many records the log holds.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Appends records durably (one fsync for all), giving each its id.
    pub fn append(&mut self, records: &mut [FailureRecord]) -> io::Result<()> {
        let mut out = Vec::new();
        for r in records.iter_mut() {
            r.id = self.next_id;
            self.next_id += 1;
            frame(r, &mut out);
        }
        self.file.write_all(&out)?;
        self.file.sync_data()?;
        for r in records.iter() {
            if !r.key.is_empty() {
                self.parked.insert(r.key.clone());
            }
        }
        self.records += records.len();
        Ok(())
    }
}
