//! The external version of a document write, derived from the change's place in the binlog so that
//! it only grows: the binlog file's number, then the byte offset. A server keeps the highest version
//! it saw per document and refuses an older one, so a retried or reordered write can never replace a
//! newer document.
//!
//! Layout (63 bits at most, as the servers require): the file number (up to 999,999, 20 bits), then
//! 37 bits of `2 * offset + 1` for a row change, `2 * offset` for a snapshot read. A row change's
//! offset is its rows event's start plus the row's index in the event (a row takes at least one
//! byte, so this stays inside the event); a snapshot read's is its watermark, the position its
//! chunk was read at. So a change before the watermark is older than the read, and one after it
//! (even at the watermark itself) is newer.

use rowbus_core::SourceInfo;

const OFFSET_BITS: u32 = 37;
const MAX_FILE_NUMBER: u64 = (1 << (63 - OFFSET_BITS)) - 1;
const MAX_OFFSET: u64 = (1 << (OFFSET_BITS - 1)) - 1;

/// The version of a change, or why it has none (a binlog file name without a number, an offset past
/// 64 GiB).
pub fn version_of(source: &SourceInfo) -> Result<u64, String> {
    let event = &source.event;
    let number = file_number(&event.file)
        .ok_or_else(|| format!("binlog file `{}` has no number suffix", event.file))?;
    if number > MAX_FILE_NUMBER {
        return Err(format!("binlog file number {number} is too large"));
    }
    let (offset, change) = match event.snapshot {
        true => (event.pos, 0),
        false => (event.pos + u64::from(source.row), 1),
    };
    if offset > MAX_OFFSET {
        return Err(format!("binlog offset {offset} is too large"));
    }
    Ok((number << OFFSET_BITS) | (offset << 1) | change)
}

/// `mysql-bin.000042` -> 42.
fn file_number(file: &str) -> Option<u64> {
    let (_, digits) = file.rsplit_once('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, pos: u64, row: u32, snapshot: bool) -> SourceInfo {
        SourceInfo {
            row,
            ..rowbus_core::fixture::source(file, pos, snapshot)
        }
    }

    fn v(file: &str, pos: u64, row: u32, snapshot: bool) -> u64 {
        version_of(&at(file, pos, row, snapshot)).unwrap()
    }

    #[test]
    fn grows_with_file_offset_and_row() {
        let order = [
            v("b.000001", 4, 0, false),
            v("b.000001", 4, 1, false),
            v("b.000001", 900, 0, true),
            v("b.000001", 900, 0, false),
            v("b.000002", 4, 0, false),
            v("b.999999", MAX_OFFSET, 0, false),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert!(order[5] < 1 << 63);
    }

    #[test]
    fn a_snapshot_read_is_newer_than_what_came_before_its_watermark() {
        // A rows event at 800 of 100 bytes ends at or before the watermark at 900.
        assert!(v("b.000001", 800, 99, false) < v("b.000001", 900, 5, true));
        // The read's row index does not count: its rows share the watermark.
        assert_eq!(v("b.000001", 900, 0, true), v("b.000001", 900, 7, true));
    }

    #[test]
    fn names_what_cannot_be_versioned() {
        let e = version_of(&at("binlog", 4, 0, false)).unwrap_err();
        assert_eq!(e, "binlog file `binlog` has no number suffix");
        assert!(version_of(&at("b.000001", MAX_OFFSET + 1, 0, false)).is_err());
    }
}
