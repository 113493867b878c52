//! The formats a sink can write an event in, one place for all sinks: rowbus's native JSON
//! (`crate::encode`), a Debezium-compatible envelope, Maxwell's JSON and Canal's flat JSON. Each
//! gives a message's key (the row's key, which a partitioned sink partitions by) and value; a
//! format may also ask for a tombstone after a delete (Debezium) or skip an event it has no shape
//! for.

pub mod canal;
pub mod debezium;
pub mod debezium_extras;
pub mod maxwell;

use crate::encode::NativeEncoder;
use debezium_extras::Transactions;
use rowbus_core::value::write_json_string;
use rowbus_core::{ChangeEvent, Row, Value};

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// rowbus's own JSON (DESIGN.md, README "Event format").
    #[default]
    Native,
    /// The envelope of Debezium's MySQL connector (JSON converter, schemas disabled).
    Debezium,
    /// Maxwell's daemon JSON.
    Maxwell,
    /// Canal's flat message JSON (`flatMessage = true`).
    Canal,
}

impl Format {
    /// The format of a config value: `native`, `debezium`, `maxwell` or `canal`.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "native" => Some(Format::Native),
            "debezium" => Some(Format::Debezium),
            "maxwell" => Some(Format::Maxwell),
            "canal" => Some(Format::Canal),
            _ => None,
        }
    }
}

/// Writes events in one format, keeping what its encoders cache between events.
#[derive(Default)]
pub struct Encoder {
    pub format: Format,
    native: NativeEncoder,
    debezium: debezium::Options,
    transactions: Transactions,
    /// Whether the next change encoded is the last of its source transaction (Maxwell's
    /// `commit`); see `ends_transaction`.
    last_of_transaction: bool,
}

impl Encoder {
    pub fn new(format: Format) -> Encoder {
        Encoder {
            format,
            last_of_transaction: true,
            ..Encoder::default()
        }
    }

    /// Tells whether the next change encoded is the last of its transaction: change `i` of a
    /// batch that holds whole transactions is when the next one is of another transaction, or
    /// there is none.
    pub fn ends_transaction(&mut self, batch: &[std::sync::Arc<ChangeEvent>], i: usize) {
        self.last_of_transaction = batch
            .get(i + 1)
            .is_none_or(|next| next.source.txn != batch[i].source.txn);
    }

    /// Whether the format marks transaction ends, which needs batches of whole transactions.
    pub fn marks_transactions(format: Format, debezium: debezium::Options) -> bool {
        format == Format::Maxwell || (format == Format::Debezium && debezium.transaction_metadata)
    }

    /// The BEGIN event (key, value) of the transaction topic, when change `e`, to be encoded
    /// next, starts a transaction (Debezium with `transaction_metadata`).
    pub fn begin_of(&self, e: &ChangeEvent) -> Option<(Vec<u8>, Vec<u8>)> {
        let tracked = self.format == Format::Debezium && self.debezium.transaction_metadata;
        (tracked && e.op.is_row_change() && self.transactions.begins(e))
            .then(|| Transactions::begin_event(e))
    }

    /// The END event (key, value) of the transaction topic, when change `e`, just encoded, ended
    /// its transaction (see `ends_transaction`).
    pub fn end_of(&self, e: &ChangeEvent) -> Option<(Vec<u8>, Vec<u8>)> {
        let tracked = self.format == Format::Debezium && self.debezium.transaction_metadata;
        (tracked && e.op.is_row_change() && self.last_of_transaction)
            .then(|| self.transactions.end_event(e))
    }

    /// The Debezium envelope's optional parts.
    pub fn with_debezium(mut self, options: debezium::Options) -> Encoder {
        self.debezium = options;
        self
    }

    /// What numbers changes within their transactions so far, to put back (`restore`) when a
    /// batch that failed is sent again.
    pub fn saved(&self) -> Option<Transactions> {
        self.debezium
            .transaction_metadata
            .then(|| self.transactions.clone())
    }

    pub fn restore(&mut self, saved: Option<Transactions>) {
        if let Some(saved) = saved {
            self.transactions = saved;
        }
    }

    /// Appends the event's message value to `out` (no newline); false when the format has no
    /// message for this kind of event (nothing is appended).
    pub fn value(&mut self, e: &ChangeEvent, out: &mut Vec<u8>) -> bool {
        match self.format {
            Format::Native => {
                self.native.encode(e, out);
                out.pop(); // the newline
                true
            }
            Format::Debezium => debezium::value(e, self.debezium, &mut self.transactions, out),
            Format::Maxwell => maxwell::value(e, self.last_of_transaction, out),
            Format::Canal => canal::value(e, out),
        }
    }

    /// Appends the event's value and a newline to `out` (a line of a file), or nothing when the
    /// format has no message for this kind of event.
    pub fn line(&mut self, e: &ChangeEvent, out: &mut Vec<u8>) {
        match self.format {
            Format::Native => self.native.encode(e, out),
            _ => {
                if self.value(e, out) {
                    out.push(b'\n');
                }
            }
        }
    }

    /// Appends the event's message key to `out`: the row's key columns in the format's shape.
    pub fn key(&mut self, e: &ChangeEvent, out: &mut Vec<u8>) {
        self.key_of(e, &e.key, out);
    }

    /// Appends a message key made of `key` (the row's key, or other columns of the row).
    pub fn key_of(&mut self, e: &ChangeEvent, key: &Row, out: &mut Vec<u8>) {
        match self.format {
            Format::Debezium if self.debezium.schemas && e.op.is_row_change() => {
                out.extend_from_slice(b"{\"schema\":");
                debezium_extras::key_schema_of(e, key, out);
                out.extend_from_slice(b",\"payload\":");
                row_object(key, out, debezium::write_value);
                out.push(b'}');
            }
            Format::Native | Format::Debezium | Format::Canal => {
                if e.op.is_row_change() {
                    row_object(key, out, Value::write_json);
                } else {
                    out.extend_from_slice(b"{\"databaseName\":");
                    write_json_string(&e.db, out);
                    out.push(b'}');
                }
            }
            Format::Maxwell => maxwell::key(e, key, out),
        }
    }
}

/// `{"col":value,...}` of a row image, each value written by `write`.
pub(crate) fn row_object(row: &Row, out: &mut Vec<u8>, write: impl Fn(&Value, &mut Vec<u8>)) {
    out.push(b'{');
    for (i, (name, value)) in row.columns.iter().zip(&row.values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(name, out);
        out.push(b':');
        write(value, out);
    }
    out.push(b'}');
}

/// `{"col":value,...}` of the columns whose value `after` changed from `before` (their old
/// values): Maxwell's and Canal's `old`.
pub(crate) fn changed_columns(
    before: &Row,
    after: &Row,
    out: &mut Vec<u8>,
    write: impl Fn(&Value, &mut Vec<u8>),
) {
    out.push(b'{');
    let mut first = true;
    for (i, (name, old)) in before.columns.iter().zip(&before.values).enumerate() {
        let new = after
            .columns
            .get(i)
            .filter(|n| *n == name)
            .map(|_| &after.values[i])
            .or_else(|| {
                let at = after.columns.iter().position(|n| n == name)?;
                Some(&after.values[at])
            });
        if new == Some(old) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_string(name, out);
        out.push(b':');
        write(old, out);
    }
    out.push(b'}');
}

/// A temporal value as MySQL prints it (`2024-01-31 12:00:00.5`, UTC for TIMESTAMP), no quotes;
/// false for a value that is not temporal.
pub(crate) fn mysql_temporal_text(value: &Value, out: &mut Vec<u8>) -> bool {
    if !matches!(
        value,
        Value::Date { .. } | Value::DateTime(_) | Value::Timestamp { .. } | Value::Time { .. }
    ) {
        return false;
    }
    let start = out.len();
    value.write_json(out);
    // `"2024-01-31T12:00:00.5Z"` -> `2024-01-31 12:00:00.5`
    out.remove(start);
    out.pop();
    if out.last() == Some(&b'Z') {
        out.pop();
    }
    if let Some(t) = out[start..].iter().position(|b| *b == b'T') {
        out[start + t] = b' ';
    }
    true
}

#[cfg(test)]
mod tests;
