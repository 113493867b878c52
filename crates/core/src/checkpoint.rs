//! The checkpoint store: one small JSON file per source under `<data_dir>/checkpoints/`, replaced
//! atomically (write a temporary file, fsync it, rename it over the old one, fsync the directory),
//! so a crash leaves either the old or the new checkpoint, never a torn one. The data directory is
//! locked while a process uses it, so two rowbus processes cannot interleave their checkpoints.

use crate::event::now_ms;
use crate::position::Position;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint file {path} is not valid: {source}; move it away to start from the configured `start`")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("data_dir {path} is in use by another rowbus process (lock file {path}/LOCK is held)")]
    Locked { path: PathBuf },
}

/// What is saved for a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub position: Position,
    /// When it was saved, in ms since the epoch.
    pub saved_at_ms: u64,
}

#[derive(Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
    _lock: File,
    /// Saves share one temporary file per source; one at a time.
    saving: std::sync::Mutex<()>,
}

impl CheckpointStore {
    /// Opens (creating if needed) the store under `data_dir` and locks the data directory.
    pub fn open(data_dir: &Path) -> Result<Self, CheckpointError> {
        let dir = data_dir.join("checkpoints");
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let lock_path = data_dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        if lock.try_lock().is_err() {
            return Err(CheckpointError::Locked {
                path: data_dir.to_path_buf(),
            });
        }
        Ok(CheckpointStore {
            dir,
            _lock: lock,
            saving: std::sync::Mutex::new(()),
        })
    }

    /// A name for this rowbus installation, made once per data directory and kept in
    /// `<data_dir>/instance-id`: a replica registers under it, so that after a crash the next start
    /// can tell its own stale registration from another replica's.
    pub fn instance_id(&self) -> Result<String, CheckpointError> {
        // The id is kept with the host it was made on: a data directory copied to another machine
        // (a restored backup, a cloned volume) gets a new id and is not taken for the original.
        let path = self.dir.with_file_name("instance-id");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = host.trim();
        if let Ok(text) = fs::read_to_string(&path) {
            let mut lines = text.lines();
            if let (Some(id), Some(saved_host)) = (lines.next(), lines.next()) {
                if !id.is_empty() && saved_host == host {
                    return Ok(id.to_string());
                }
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!(
            "{:016x}",
            (nanos as u64) ^ ((std::process::id() as u64) << 32)
        );
        let tmp = self.dir.with_file_name(".instance-id.tmp");
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(format!("{id}\n{host}\n").as_bytes())
            .map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename into", &path))?;
        Ok(id)
    }

    fn path(&self, source: &str) -> PathBuf {
        self.dir.join(format!("{source}.json"))
    }

    pub fn load(&self, source: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let path = self.path(source);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| CheckpointError::Corrupt { path, source })
    }

    /// Saves durably: when this returns Ok, a crash cannot lose the new checkpoint.
    pub fn save(&self, source: &str, position: &Position) -> Result<(), CheckpointError> {
        let _one_at_a_time = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let checkpoint = Checkpoint {
            position: position.clone(),
            saved_at_ms: now_ms(),
        };
        let path = self.path(source);
        let tmp = self.dir.join(format!(".{source}.json.tmp"));
        let mut bytes = serde_json::to_vec_pretty(&checkpoint).unwrap_or_default();
        bytes.push(b'\n');
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(&bytes).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename into", &path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", &self.dir))
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rowbus-ckpt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn saves_and_loads() {
        let dir = temp_dir("roundtrip");
        let store = CheckpointStore::open(&dir).unwrap();
        assert_eq!(store.load("shop").unwrap(), None);
        let mut p = Position::new("b.000002", 777);
        p.gtid = Some("0-1-9".into());
        store.save("shop", &p).unwrap();
        assert_eq!(store.load("shop").unwrap().unwrap().position, p);
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn instance_id_is_made_once_and_kept() {
        let dir = temp_dir("instance");
        let store = CheckpointStore::open(&dir).unwrap();
        let id = store.instance_id().unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(store.instance_id().unwrap(), id);
        drop(store);
        assert_eq!(
            CheckpointStore::open(&dir).unwrap().instance_id().unwrap(),
            id
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn second_process_is_locked_out() {
        let dir = temp_dir("lock");
        let _store = CheckpointStore::open(&dir).unwrap();
        let err = CheckpointStore::open(&dir).unwrap_err();
        assert!(matches!(err, CheckpointError::Locked { .. }), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_file_is_reported_with_its_path() {
        let dir = temp_dir("corrupt");
        let store = CheckpointStore::open(&dir).unwrap();
        fs::write(dir.join("checkpoints/shop.json"), b"{not json").unwrap();
        let err = store.load("shop").unwrap_err().to_string();
        assert!(err.contains("checkpoints/shop.json"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
