//! `rowbus test-transform -c FILE --event EVENT.json`: runs the configured transforms on one change
//! (a native JSON event, as the file sink writes them) and prints what each sink would receive,
//! for writing and debugging transforms without a server.

use crate::config::Config;
use crate::transforms::SinkTransforms;
use anyhow::Context;
use rowbus_core::event::{ChangeEvent, Op, Row, SourceEvent, SourceInfo};
use rowbus_core::Value;
use rowbus_sinks::encode::native_json_line;
use serde_json::Value as Json;
use std::path::Path;
use std::sync::Arc;

pub fn run(config: &Config, event_file: &Path) -> anyhow::Result<()> {
    let text = if event_file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(event_file)
            .with_context(|| format!("cannot read {}", event_file.display()))?
    };
    let parsed: NativeEvent =
        serde_json::from_str(&text).context("the event is not a native JSON event")?;
    let event = Arc::new(parsed.into_event().map_err(anyhow::Error::msg)?);
    for sink in &config.sinks {
        let mut transforms = SinkTransforms::new(config, sink);
        let routed = transforms.pipeline(event.clone()).map_err(|e| {
            anyhow::anyhow!(
                "the pipeline's transforms failed (the event would go to the failure log): {e}"
            )
        })?;
        let mut delivered = Vec::new();
        for output in routed {
            match transforms.own(output) {
                Ok(events) => delivered.extend(events),
                Err(e) => println!(
                    "sink {}: transform failed (to its failure log): {e}",
                    sink.name
                ),
            }
        }
        if delivered.is_empty() {
            println!("sink {}: nothing", sink.name);
        }
        for event in delivered {
            let mut line = Vec::new();
            native_json_line(&event, &mut line);
            print!("sink {}: {}", sink.name, String::from_utf8_lossy(&line));
        }
    }
    Ok(())
}

/// A change as native JSON. Values take the closest type (integers, floats, text, JSON);
/// `source` fields may be left out.
#[derive(serde::Deserialize)]
struct NativeEvent {
    op: String,
    db: String,
    table: String,
    key: Option<Columns>,
    before: Option<Columns>,
    after: Option<Columns>,
    #[serde(default)]
    source: Json,
    #[serde(default)]
    read_ts_ms: u64,
}

impl NativeEvent {
    fn into_event(self) -> Result<ChangeEvent, String> {
        let op = Op::parse(&self.op)?;
        let source = &self.source;
        let number = |field: &str| source[field].as_u64().unwrap_or(0);
        let string = |field: &str, default: &str| -> Arc<str> {
            Arc::from(source[field].as_str().unwrap_or(default))
        };
        Ok(ChangeEvent {
            op,
            db: self.db.into(),
            table: self.table.into(),
            key: self.key.map(Columns::into_row).unwrap_or_default(),
            before: self.before.map(Columns::into_row),
            after: self.after.map(Columns::into_row),
            source: SourceInfo {
                event: Arc::new(SourceEvent {
                    name: string("name", "test"),
                    server_id: number("server_id") as u32,
                    file: string("file", ""),
                    pos: number("pos"),
                    gtid: source["gtid"].as_str().map(Arc::from),
                    txn: string("txn", ""),
                    ts_ms: number("ts_ms"),
                    snapshot: source["snapshot"].as_bool().unwrap_or(false),
                    sinks: None,
                }),
                row: number("row") as u32,
            },
            read_ts_ms: self.read_ts_ms,
            ddl: None,
            partition_key: None,
            origin: None,
        })
    }
}

fn value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Int(i64::from(*b)),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s.as_str().into()),
        other => Value::Json(Box::new(other.clone())),
    }
}

/// A row's columns in the order the JSON object lists them.
struct Columns(Vec<(String, Json)>);

impl Columns {
    fn into_row(self) -> Row {
        let names: Vec<Arc<str>> = self.0.iter().map(|(k, _)| Arc::from(k.as_str())).collect();
        Row {
            columns: names.into(),
            values: self.0.iter().map(|(_, v)| value(v)).collect(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Columns {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Columns;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of columns")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Columns, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Columns(pairs))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}
