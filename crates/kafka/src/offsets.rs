//! The source's place in its topics as a `Position`: the next offset of every partition read, in
//! the position's `gtid` field as `topic/partition:offset,...` (sorted), `file` = `kafka` and
//! `pos` the sum of the offsets (which only grows). The checkpoint saves it like a binlog position;
//! a restart seeks each partition there.

use rowbus_core::Position;
use std::collections::BTreeMap;

/// Next offset to read, per (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

pub fn to_position(offsets: &Offsets) -> Position {
    let text: Vec<String> = offsets
        .iter()
        .map(|((topic, partition), next)| format!("{topic}/{partition}:{next}"))
        .collect();
    let mut position = Position::new("kafka", offsets.values().map(|o| *o as u64).sum());
    position.gtid = Some(text.join(","));
    position
}

/// The offsets of a saved position, or why it is not one of a Kafka source.
pub fn from_position(position: &Position) -> Result<Offsets, String> {
    let bad =
        || format!("the checkpoint `{position}` is not a Kafka source's (delete it to start over)");
    if position.file != "kafka" {
        return Err(bad());
    }
    let mut offsets = Offsets::new();
    for part in position
        .gtid
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.is_empty())
    {
        let (place, next) = part.rsplit_once(':').ok_or_else(bad)?;
        let (topic, partition) = place.rsplit_once('/').ok_or_else(bad)?;
        let partition = partition.parse().map_err(|_| bad())?;
        let next = next.parse().map_err(|_| bad())?;
        offsets.insert((topic.to_string(), partition), next);
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_a_position() {
        let mut offsets = Offsets::new();
        offsets.insert(("cdc.shop.t".into(), 0), 12);
        offsets.insert(("cdc.shop.t".into(), 2), 7);
        offsets.insert(("a/b".into(), 1), 0);
        let position = to_position(&offsets);
        assert_eq!(
            position.to_string(),
            "kafka:19 (gtid a/b/1:0,cdc.shop.t/0:12,cdc.shop.t/2:7)"
        );
        assert_eq!(from_position(&position).unwrap(), offsets);
        let binlog = Position::new("mysql-bin.000001", 4);
        assert!(from_position(&binlog)
            .unwrap_err()
            .contains("not a Kafka source's"));
    }
}
