//! A bounds-checked reader over event bytes: every read returns an error instead of panicking when
//! the input is shorter than it claims (DESIGN.md invariant 6).

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct DecodeError(pub String);

pub type Result<T> = std::result::Result<T, DecodeError>;

#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.pos.checked_add(n).filter(|&e| e <= self.data.len()) {
            Some(end) => {
                let bytes = &self.data[self.pos..end];
                self.pos = end;
                Ok(bytes)
            }
            None => Err(self.truncated(n)),
        }
    }

    #[cold]
    fn truncated(&self, n: usize) -> DecodeError {
        DecodeError(format!(
            "truncated: needs {n} bytes at offset {} of {}",
            self.pos,
            self.data.len()
        ))
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned little-endian integer of `n` (1..=8) bytes (more keep the low 8; 0 reads 0).
    pub fn uint_le(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// An unsigned big-endian integer of `n` (1..=8) bytes.
    pub fn uint_be(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// A MySQL length-encoded integer.
    pub fn lenenc(&mut self) -> Result<u64> {
        match self.u8()? {
            n @ 0..=0xfa => Ok(n as u64),
            0xfc => self.uint_le(2),
            0xfd => self.uint_le(3),
            0xfe => self.uint_le(8),
            other => Err(DecodeError(format!(
                "bad length-encoded integer prefix {other:#x}"
            ))),
        }
    }
}

/// Sign-extends the low `bits` of `value`.
pub fn sign_extend(value: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((value << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses_past_the_end() {
        let mut c = Cursor::new(&[1, 2, 3, 0xfc, 0x10, 0x00]);
        assert_eq!(c.uint_le(2).unwrap(), 0x0201);
        assert_eq!(c.u8().unwrap(), 3);
        assert_eq!(c.lenenc().unwrap(), 16);
        assert!(c.is_empty());
        assert!(c.u8().is_err());
        let mut c = Cursor::new(&[0xff]);
        assert!(c.take(usize::MAX).is_err());
    }

    #[test]
    fn integers_of_every_width_with_and_without_eight_bytes_left() {
        let data: Vec<u8> = (1..=16).collect();
        for n in 0..=8usize {
            let expected = data[..n]
                .iter()
                .rev()
                .fold(0u64, |a, &b| (a << 8) | b as u64);
            // With bytes to spare, and with exactly n bytes left.
            assert_eq!(Cursor::new(&data).uint_le(n).unwrap(), expected, "{n}");
            let mut c = Cursor::new(&data[..n]);
            assert_eq!(c.uint_le(n).unwrap(), expected, "{n}");
            assert!(c.is_empty());
        }
        let mut c = Cursor::new(&data);
        c.uint_le(3).unwrap();
        assert_eq!(c.position(), 3);
        assert_eq!(c.uint_le(2).unwrap(), 0x0504);
        assert!(Cursor::new(&data[..2]).uint_le(3).is_err());
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0xff, 8), -1);
        assert_eq!(sign_extend(0x7fffff, 24), 8_388_607);
        assert_eq!(sign_extend(0x800000, 24), -8_388_608);
    }
}
