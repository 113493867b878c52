//! The running file and stdout sinks. A batch is encoded into one buffer, appended, flushed (and for
//! `fsync = "always"` synced) before `write` returns, which is what makes its acknowledgement safe.

use super::config::{FileSinkConfig, Fsync};
use crate::encode::native_json_line;
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
            .open(&config.path)
            .map_err(|e| {
                SinkError::permanent(format!(
                    "cannot open {} for appending: {e}",
                    config.path.display()
                ))
            })?;
        Ok(FileSink {
            config,
            file: Some(file),
            buffer: Vec::new(),
        })
    }

    async fn append(&mut self, batch: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        self.buffer.clear();
        for event in batch {
            native_json_line(event, &mut self.buffer);
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| SinkError::permanent("file sink used after a failed write"))?;
        let buffer = std::mem::take(&mut self.buffer);
        let (fsync, path) = (self.config.fsync, self.config.path.clone());
        let (file, buffer, result) = tokio::task::spawn_blocking(move || {
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
            (file, buffer, result)
        })
        .await
        .map_err(|e| SinkError::permanent(format!("file writer task failed: {e}")))?;
        self.file = Some(file);
        self.buffer = buffer;
        // A full or failing disk needs a person; the checkpoint stays before this batch.
        result.map_err(|e| SinkError::permanent(format!("cannot write to {}: {e}", path.display())))
    }
}

impl Sink for FileSink {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.append(batch))
    }
}

/// Writes JSON lines to standard output; acknowledged once flushed to the stdout pipe.
#[derive(Default)]
pub struct StdoutSink {
    buffer: Vec<u8>,
}

impl Sink for StdoutSink {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.buffer.clear();
            for event in batch {
                native_json_line(event, &mut self.buffer);
            }
            let mut out = tokio::io::stdout();
            let result = async {
                out.write_all(&self.buffer).await?;
                out.flush().await
            };
            result
                .await
                .map_err(|e| SinkError::permanent(format!("cannot write to standard output: {e}")))
        })
    }
}
