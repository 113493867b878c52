//! MySQL GTID sets (`3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,...`): the transactions a position
//! covers, kept as sorted, merged intervals per source UUID. Built from a start set, the
//! PREVIOUS_GTIDS event at the head of each file, and each transaction's GTID; sent back to the
//! server (COM_BINLOG_DUMP_GTID) to resume.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    /// Source UUID (lower case, with dashes) to inclusive intervals, sorted and disjoint.
    sources: BTreeMap<String, Vec<(u64, u64)>>,
}

impl GtidSet {
    /// Parses `uuid:1-5:7,uuid2:3`; None when it is not a MySQL GTID set.
    pub fn parse(text: &str) -> Option<GtidSet> {
        let mut set = GtidSet::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut pieces = part.split(':');
            let uuid = pieces.next()?.to_ascii_lowercase();
            if uuid.len() != 36 || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return None;
            }
            for interval in pieces {
                let (start, end) = match interval.split_once('-') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let n = interval.parse().ok()?;
                        (n, n)
                    }
                };
                if start == 0 || end < start {
                    return None;
                }
                set.add_interval(&uuid, start, end);
            }
        }
        Some(set)
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Adds one transaction.
    pub fn add(&mut self, uuid: &str, gno: u64) {
        self.add_interval(uuid, gno, gno);
    }

    /// Adds `start..=end`, merging with what touches or overlaps it.
    pub fn add_interval(&mut self, uuid: &str, start: u64, end: u64) {
        let intervals = self.sources.entry(uuid.to_string()).or_default();
        intervals.push((start, end));
        intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
        for &(s, e) in intervals.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *intervals = merged;
    }

    /// Adds every transaction of `other`.
    pub fn union(&mut self, other: &GtidSet) {
        for (uuid, intervals) in &other.sources {
            for &(s, e) in intervals {
                self.add_interval(uuid, s, e);
            }
        }
    }

    /// Each source as text (`uuid:1-5:7`), as the server's GTID request wants them.
    pub fn sources(&self) -> impl Iterator<Item = String> + '_ {
        self.sources.iter().map(|(uuid, intervals)| {
            let mut text = uuid.clone();
            for &(s, e) in intervals {
                if s == e {
                    text.push_str(&format!(":{s}"));
                } else {
                    text.push_str(&format!(":{s}-{e}"));
                }
            }
            text
        })
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, source) in self.sources().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&source)?;
        }
        Ok(())
    }
}

/// `3e11fa47-71ca-11e1-9e33-c80aa9429562` from 16 bytes.
pub fn uuid_text(sid: &[u8; 16]) -> String {
    let hex: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Parses a PREVIOUS_GTIDS event body (untagged format); None when it is malformed or tagged.
pub fn parse_previous_gtids(data: &[u8]) -> Option<GtidSet> {
    let u64_at = |at: usize| {
        data.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let header = u64_at(0)?;
    if header >> 56 != 0 {
        return None; // tagged format (MySQL 8.4 tags): not read yet
    }
    let mut set = GtidSet::default();
    let mut at = 8;
    for _ in 0..header {
        let uuid: [u8; 16] = data.get(at..at + 16)?.try_into().ok()?;
        let uuid = uuid_text(&uuid);
        let count = u64_at(at + 16)?;
        at += 24;
        for _ in 0..count {
            let (start, end) = (u64_at(at)?, u64_at(at + 8)?);
            at += 16;
            if start == 0 || end <= start {
                return None;
            }
            set.add_interval(&uuid, start, end - 1);
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn parse_add_and_format() {
        let mut set = GtidSet::parse(&format!("{U}:1-5:7")).unwrap();
        set.add(U, 6);
        assert_eq!(set.to_string(), format!("{U}:1-7"));
        set.add(U, 9);
        set.add("00000000-0000-0000-0000-000000000001", 3);
        assert_eq!(
            set.to_string(),
            format!("00000000-0000-0000-0000-000000000001:3,{U}:1-7:9")
        );
        assert_eq!(GtidSet::parse("0-1-5"), None);
        assert_eq!(GtidSet::parse(&format!("{U}:5-3")), None);
    }

    #[test]
    fn previous_gtids_body() {
        let mut data = 1u64.to_le_bytes().to_vec();
        data.extend([
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ]);
        data.extend(1u64.to_le_bytes());
        data.extend(1u64.to_le_bytes());
        data.extend(6u64.to_le_bytes());
        assert_eq!(
            parse_previous_gtids(&data).unwrap().to_string(),
            format!("{U}:1-5")
        );
        assert_eq!(parse_previous_gtids(&data[..30]), None, "truncated");
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge[7] = 0;
        assert_eq!(
            parse_previous_gtids(&huge),
            None,
            "a huge count reads nothing it does not have"
        );
    }
}
