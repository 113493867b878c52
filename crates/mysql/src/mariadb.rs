//! MariaDB's own binlog events, which mysql_common does not parse: GTID (a transaction's
//! `domain-server-seq`), GTID_LIST (the GTID state at the start of a binlog file), and the GTID
//! state itself, the list a replica sends as `@slave_connect_state` to resume.

use std::collections::BTreeMap;
use std::fmt;

pub const ANNOTATE_ROWS_EVENT: u8 = 160;
pub const BINLOG_CHECKPOINT_EVENT: u8 = 161;
pub const GTID_EVENT: u8 = 162;
pub const GTID_LIST_EVENT: u8 = 163;
pub const START_ENCRYPTION_EVENT: u8 = 164;
/// MariaDB's compressed QUERY and ROWS events (`log_bin_compress=ON`), 165..=171.
pub const FIRST_COMPRESSED_EVENT: u8 = 165;
pub const LAST_COMPRESSED_EVENT: u8 = 171;

/// The GTID event flag for a transaction without BEGIN/COMMIT (DDL and other standalone statements).
const FL_STANDALONE: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl Gtid {
    fn parse(text: &str) -> Option<Gtid> {
        let mut parts = text.trim().split('-');
        let gtid = Gtid {
            domain: parts.next()?.parse().ok()?,
            server: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(gtid)
    }
}

/// A parsed MariaDB GTID event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidEvent {
    pub gtid: Gtid,
    /// True for a transaction that has no BEGIN/COMMIT: it ends with its single statement.
    pub standalone: bool,
}

/// Parses a GTID event's body; `server_id` comes from the event header.
pub fn parse_gtid_event(data: &[u8], server_id: u32) -> Option<GtidEvent> {
    let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    let flags = *data.get(12)?;
    Some(GtidEvent {
        gtid: Gtid {
            domain,
            server: server_id,
            seq,
        },
        standalone: flags & FL_STANDALONE != 0,
    })
}

/// Parses a GTID_LIST event's body.
pub fn parse_gtid_list(data: &[u8]) -> Option<Vec<Gtid>> {
    let count = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) & 0x0fff_ffff;
    let mut list = Vec::with_capacity(count.min(1024) as usize);
    for i in 0..count as usize {
        let entry = data.get(4 + i * 16..4 + (i + 1) * 16)?;
        list.push(Gtid {
            domain: u32::from_le_bytes(entry[0..4].try_into().ok()?),
            server: u32::from_le_bytes(entry[4..8].try_into().ok()?),
            seq: u64::from_le_bytes(entry[8..16].try_into().ok()?),
        });
    }
    Some(list)
}

/// The last GTID applied in each replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidState {
    domains: BTreeMap<u32, Gtid>,
}

impl GtidState {
    /// Parses `0-1-5,1-2-9` (empty text is the empty state).
    pub fn parse(text: &str) -> Option<GtidState> {
        let mut state = GtidState::default();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            state.apply(Gtid::parse(part)?);
        }
        Some(state)
    }

    /// Records a transaction: it becomes the last one of its domain.
    pub fn apply(&mut self, gtid: Gtid) {
        self.domains.insert(gtid.domain, gtid);
    }

    /// Merges a GTID_LIST, keeping per domain whichever GTID is further along, so that the older
    /// list at the head of a file never moves the state backward.
    pub fn merge(&mut self, list: &[Gtid]) {
        for gtid in list {
            match self.domains.get(&gtid.domain) {
                Some(known) if known.seq >= gtid.seq => {}
                _ => self.apply(*gtid),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Whether some transaction after this state comes before `oldest` (the state at the start of
    /// the oldest binlog the server has): then the server no longer has it.
    pub fn is_behind(&self, oldest: &GtidState) -> bool {
        oldest.domains.values().any(|gtid| {
            self.domains
                .get(&gtid.domain)
                .is_none_or(|ours| ours.seq < gtid.seq)
        })
    }
}

impl fmt::Display for GtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{gtid}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_before_the_oldest_binlog_is_behind() {
        let oldest = GtidState::parse("0-1-4,1-2-9").unwrap();
        assert!(GtidState::parse("0-1-3,1-2-9").unwrap().is_behind(&oldest));
        assert!(GtidState::parse("0-1-4").unwrap().is_behind(&oldest));
        assert!(!GtidState::parse("0-1-4,1-2-9").unwrap().is_behind(&oldest));
        assert!(!GtidState::parse("0-1-7,1-2-12,2-3-1")
            .unwrap()
            .is_behind(&oldest));
        assert!(!GtidState::parse("0-1-1")
            .unwrap()
            .is_behind(&GtidState::default()));
    }

    #[test]
    fn gtid_event_body() {
        let mut data = 42u64.to_le_bytes().to_vec();
        data.extend(3u32.to_le_bytes());
        data.push(FL_STANDALONE);
        let event = parse_gtid_event(&data, 7).unwrap();
        assert_eq!(event.gtid.to_string(), "3-7-42");
        assert!(event.standalone);
        assert_eq!(parse_gtid_event(&data[..10], 7), None);
    }

    #[test]
    fn gtid_list_body() {
        let mut data = 2u32.to_le_bytes().to_vec();
        for (d, s, n) in [(0u32, 1u32, 10u64), (1, 2, 5)] {
            data.extend(d.to_le_bytes());
            data.extend(s.to_le_bytes());
            data.extend(n.to_le_bytes());
        }
        let list = parse_gtid_list(&data).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].to_string(), "1-2-5");
        assert_eq!(
            parse_gtid_list(&data[..20]),
            None,
            "truncated list is an error"
        );
    }

    #[test]
    fn state_never_moves_back_on_merge() {
        let mut state = GtidState::parse("0-1-10,1-2-5").unwrap();
        state.merge(&[
            Gtid {
                domain: 0,
                server: 1,
                seq: 3,
            },
            Gtid {
                domain: 2,
                server: 1,
                seq: 1,
            },
        ]);
        assert_eq!(state.to_string(), "0-1-10,1-2-5,2-1-1");
        state.apply(Gtid {
            domain: 0,
            server: 3,
            seq: 11,
        });
        assert_eq!(state.to_string(), "0-3-11,1-2-5,2-1-1");
        assert_eq!(GtidState::parse("0-1"), None);
        assert!(GtidState::parse("").unwrap().is_empty());
    }
}
