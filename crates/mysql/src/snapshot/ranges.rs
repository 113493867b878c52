//! Key ranges, so that two chunks of a table can be read at once. A table keyed by one integer
//! column is read in ranges `(after, after + step]` whose ends are known before their rows are, so
//! the range after the one being read can be read at the same time on a second connection. The
//! step follows the key density seen so far and aims at four fifths of a chunk's row limit: a
//! range that reaches the limit ends at its last row, and the reads queued after it are dropped.
//! Past the largest key the table had when planned, chunks are read open-ended, as other tables'.

use rowbus_core::snapshot::KeyPart;
use rowbus_core::Value;

/// How the next ranges of one table are cut.
#[derive(Debug, Clone)]
pub struct Ranges {
    /// The largest key when the table was planned.
    max: i128,
    /// Keys per range; `None` until a chunk has been read.
    step: Option<i128>,
    /// The rows a range aims at.
    target: i128,
}

impl Ranges {
    /// For a table whose largest key is `max`, read in chunks of at most `limit` rows.
    pub fn new(max: i128, limit: usize) -> Ranges {
        Ranges {
            max,
            step: None,
            target: (limit as i128 * 4 / 5).max(1),
        }
    }

    /// Where the range after `after` ends; `None`: read it open-ended (no step known yet, past
    /// the largest key, or not an integer key).
    pub fn end_after(&self, after: Option<&[KeyPart]>) -> Option<KeyPart> {
        let after = single(after?)?;
        let start = int_of(after)?;
        let step = self.step?;
        if start >= self.max {
            return None;
        }
        let end = (start + step).min(self.max);
        match after {
            KeyPart::UInt(_) => u64::try_from(end).ok().map(KeyPart::UInt),
            _ => i64::try_from(end).ok().map(KeyPart::Int),
        }
    }

    /// Learns the density from a chunk of `rows` rows that covered the keys after `after` (the
    /// table's start when `None`, then the chunk's first key `first` stands in) up to `last`.
    pub fn observe(
        &mut self,
        after: Option<&[KeyPart]>,
        first: Option<i128>,
        last: Option<&[KeyPart]>,
        rows: usize,
    ) {
        let start = match after {
            Some(after) => single(after).and_then(int_of),
            None => first.map(|f| f - 1),
        };
        let end = last.and_then(single).and_then(int_of);
        let (Some(start), Some(end)) = (start, end) else {
            return;
        };
        let span = (end - start).max(1);
        let mut step = (span * self.target / (rows as i128).max(1)).max(1);
        if let Some(old) = self.step {
            // An empty or sparse range does not make the next one huge at once.
            step = step.min(old.saturating_mul(4));
        }
        self.step = Some(step);
    }
}

/// An integer key value as saved in the progress.
pub fn int_of(part: &KeyPart) -> Option<i128> {
    match part {
        KeyPart::Int(v) => Some(*v as i128),
        KeyPart::UInt(v) => Some(*v as i128),
        _ => None,
    }
}

/// An integer column's value in a row.
pub fn int_value(value: &Value) -> Option<i128> {
    match value {
        Value::Int(v) => Some(*v as i128),
        Value::UInt(v) => Some(*v as i128),
        _ => None,
    }
}

fn single(key: &[KeyPart]) -> Option<&KeyPart> {
    match key {
        [part] => Some(part),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: i64) -> Vec<KeyPart> {
        vec![KeyPart::Int(v)]
    }

    #[test]
    fn no_range_before_a_chunk_shows_the_density() {
        let ranges = Ranges::new(1_000, 100);
        assert_eq!(ranges.end_after(Some(&key(100))), None);
        assert_eq!(ranges.end_after(None), None);
    }

    #[test]
    fn ranges_aim_at_four_fifths_of_the_limit_and_stop_at_the_largest_key() {
        let mut ranges = Ranges::new(1_000, 100);
        // The first chunk: keys 1..=100, every key present.
        ranges.observe(None, Some(1), Some(&key(100)), 100);
        assert_eq!(ranges.end_after(Some(&key(100))), Some(KeyPart::Int(180)));
        // Every other key present: the step doubles.
        ranges.observe(Some(&key(100)), None, Some(&key(180)), 40);
        assert_eq!(ranges.end_after(Some(&key(180))), Some(KeyPart::Int(340)));
        assert_eq!(ranges.end_after(Some(&key(900))), Some(KeyPart::Int(1_000)));
        assert_eq!(ranges.end_after(Some(&key(1_000))), None);
    }

    #[test]
    fn an_empty_range_grows_the_step_at_most_fourfold() {
        let mut ranges = Ranges::new(1_000_000, 100);
        ranges.observe(None, Some(1), Some(&key(100)), 100);
        ranges.observe(Some(&key(100)), None, Some(&key(180)), 0);
        assert_eq!(
            ranges.end_after(Some(&key(180))),
            Some(KeyPart::Int(180 + 320))
        );
    }

    #[test]
    fn unsigned_keys_stay_unsigned_and_other_keys_have_no_ranges() {
        let mut ranges = Ranges::new(u64::MAX as i128, 10);
        ranges.observe(None, Some(1), Some(&[KeyPart::UInt(10)]), 10);
        assert_eq!(
            ranges.end_after(Some(&[KeyPart::UInt(u64::MAX - 3)])),
            Some(KeyPart::UInt(u64::MAX))
        );
        assert_eq!(ranges.end_after(Some(&[KeyPart::Text("a".into())])), None);
        assert_eq!(
            ranges.end_after(Some(&[KeyPart::Int(1), KeyPart::Int(2)])),
            None
        );
    }
}
