//! The running file and stdout sinks. A batch is encoded into one buffer, appended, flushed (and for
//! `fsync = "always"` synced) before `write` returns, which is what makes its acknowledgement safe.

use super::config::{FileSinkConfig, Fsync};
use crate::encode::NativeEncoder;
use crate::format::Encoder;
use rowbus_core::sink::{BoxFuture, Sink, SinkError};
use rowbus_core::ChangeEvent;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

pub struct FileSink {
    config: FileSinkConfig,
    file: Option<File>,
    buffer: Vec<u8>,
    encoder: Encoder,
}

impl FileSink {
    /// Opens (creating if needed) the file for appending.
    pub fn open(config: FileSinkConfig) -> Result<Self, SinkError> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                SinkError::permanent(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&config.path)
            .map_err(|e| {
                SinkError::permanent(format!(
                    "cannot open {} for appending: {e}",
                    config.path.display()
                ))
            })?;
        cut_torn_tail(&file).map_err(|e| {
            SinkError::permanent(format!(
                "cannot repair the end of {}: {e}",
                config.path.display()
            ))
        })?;
        Ok(FileSink {
            encoder: Encoder::new(config.format),
            config,
            file: Some(file),
            buffer: Vec::new(),
        })
    }

    async fn append(&mut self, batch: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        self.buffer.clear();
        for (i, event) in batch.iter().enumerate() {
            let start = self.buffer.len();
            self.encoder.ends_transaction(batch, i);
            self.encoder.line(event, &mut self.buffer);
            let len = self.buffer.len() - start;
            if let Some(max) = self.config.max_event_bytes.filter(|&max| len > max) {
                return Err(SinkError::permanent(format!(
                    "event of {}.{} is {len} bytes, more than max_event_bytes = {max}",
                    event.db, event.table
                )));
            }
        }
        let mut file = self.file.take().ok_or_else(|| {
            SinkError::fatal("file sink used after a write it could not take back")
        })?;
        let buffer = std::mem::take(&mut self.buffer);
        let (fsync, path) = (self.config.fsync, self.config.path.clone());
        let (file, buffer, result) = tokio::task::spawn_blocking(move || {
            let before = file.metadata().map(|m| m.len());
            let result = file
                .write_all(&buffer)
                .and_then(|_| file.flush())
                .and_then(|_| {
                    if fsync == Fsync::Always {
                        file.sync_data()
                    } else {
                        Ok(())
                    }
                });
            // Take back a partial write, so that the retry starts on a whole line; if that
            // fails too, the file's end is unknown and the sink stops.
            let taken_back = match (&result, before) {
                (Ok(()), _) => true,
                (Err(_), Ok(len)) => file.set_len(len).is_ok(),
                (Err(_), Err(_)) => false,
            };
            (taken_back.then_some(file), buffer, result)
        })
        .await
        .map_err(|e| SinkError::fatal(format!("file writer task failed: {e}")))?;
        let Some(file) = file else {
            return Err(SinkError::fatal(format!(
                "cannot write to {} and cannot take back the partial write: {}",
                path.display(),
                result.err().map(|e| e.to_string()).unwrap_or_default()
            )));
        };
        self.file = Some(file);
        self.buffer = buffer;
        // A full or failing disk: retried with backoff (reported as degraded) until someone frees
        // it; the checkpoint stays before this batch meanwhile.
        result.map_err(|e| SinkError::retriable(format!("cannot write to {}: {e}", path.display())))
    }
}

/// A crash can leave a partly written last line; cut it so that new lines start on a fresh line.
/// The cut line was never acknowledged, so it is delivered again after the restart.
fn cut_torn_tail(file: &File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut reader = file;
    let mut keep = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while keep > 0 {
        let start = keep.saturating_sub(chunk.len() as u64);
        let window = &mut chunk[..(keep - start) as usize];
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(window)?;
        if let Some(newline) = window.iter().rposition(|&b| b == b'\n') {
            keep = start + newline as u64 + 1;
            break;
        }
        keep = start;
    }
    if keep < len {
        tracing::warn!(
            cut_bytes = len - keep,
            "file sink: cutting a partly written last line left by a crash"
        );
        file.set_len(keep)?;
        file.sync_data()?;
    }
    Ok(())
}

impl Sink for FileSink {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.append(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(path: &std::path::Path) {
        drop(
            FileSink::open(FileSinkConfig {
                path: path.to_path_buf(),
                fsync: Fsync::Always,
                max_event_bytes: None,
                format: Default::default(),
            })
            .unwrap(),
        );
    }

    #[tokio::test]
    async fn lines_take_the_configured_format_and_skip_what_it_has_no_shape_for() {
        use rowbus_core::{fixture, Op, Row, Value};
        let path = std::env::temp_dir().join(format!("rowbus-fmt-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut sink = FileSink::open(FileSinkConfig {
            path: path.clone(),
            fsync: Fsync::Never,
            max_event_bytes: None,
            format: crate::format::Format::Maxwell,
        })
        .unwrap();
        let row = Row {
            columns: vec![Arc::from("id")].into(),
            values: vec![Value::Int(7)],
        };
        let source = fixture::source("b.000002", 300, false);
        let insert = fixture::change(Op::Insert, ("shop", "t"), None, Some(row), source);
        let mut truncate = insert.clone();
        truncate.op = Op::Truncate;
        truncate.after = None;
        sink.append(&[Arc::new(insert), Arc::new(truncate)])
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"database\":\"shop\",\"table\":\"t\",\"type\":\"insert\",\"ts\":0,\"xid\":0,\"position\":\"b.000002:300\",\"gtid\":null,\"server_id\":1,\"data\":{\"id\":7}}\n"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn torn_last_line_is_cut() {
        let path = std::env::temp_dir().join(format!("rowbus-torn-{}.jsonl", std::process::id()));
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\"").unwrap();
        reopen(&path);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
        reopen(&path);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"{\"a\":1}\n{\"a\":2}\n",
            "whole lines stay"
        );
        std::fs::write(&path, b"no newline at all").unwrap();
        reopen(&path);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        std::fs::remove_file(&path).unwrap();
    }
}

/// Writes JSON lines to standard output; acknowledged once flushed to the stdout pipe.
#[derive(Default)]
pub struct StdoutSink {
    buffer: Vec<u8>,
    encoder: NativeEncoder,
}

impl Sink for StdoutSink {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.buffer.clear();
            for event in batch {
                self.encoder.encode(event, &mut self.buffer);
            }
            let mut out = tokio::io::stdout();
            let result = async {
                out.write_all(&self.buffer).await?;
                out.flush().await
            };
            // Standard output gone (a closed pipe): nothing more can be delivered there.
            result
                .await
                .map_err(|e| SinkError::fatal(format!("cannot write to standard output: {e}")))
        })
    }
}
