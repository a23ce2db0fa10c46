//! The old side's answer to each round: which pieces to hash at the next
//! level, and which byte ranges to send as data.
//!
//! ```text
//! "DCN2" version(1) level(u8) reserved(u8 = 0)
//! refine count (varint) literal count (varint)
//! per range: gap since the previous range's end (varint), length (varint)
//! ```
//!
//! Both lists are sorted, their ranges non-empty and apart; `level` is the
//! level at which the refine ranges are to be hashed.

use alloc::vec::Vec;
use core::ops::Range;

use super::error::DeltaError;
use super::reader::Reader;
use super::varint;

const MAGIC: &[u8; 4] = b"DCN2";
const NAME: &str = "need message";

/// What the old side still needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Need {
    /// The level at which to hash the refine ranges' pieces.
    pub level: u8,
    /// Ranges to hash finer, at `level`.
    pub refine: Vec<Range<u64>>,
    /// Ranges to send as data.
    pub literal: Vec<Range<u64>>,
}

impl Need {
    /// Whether the search is over: nothing left to refine.
    pub fn is_final(&self) -> bool {
        self.refine.is_empty()
    }

    /// The bytes the literal ranges hold.
    pub fn literal_bytes(&self) -> u64 {
        self.literal.iter().map(|r| r.end - r.start).sum()
    }

    /// The encoded message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 4 * (self.refine.len() + self.literal.len()));
        out.extend_from_slice(MAGIC);
        out.push(1);
        out.push(self.level);
        out.push(0);
        varint::put(&mut out, self.refine.len() as u64);
        varint::put(&mut out, self.literal.len() as u64);
        for list in [&self.refine, &self.literal] {
            let mut end = 0;
            for range in list {
                varint::put(&mut out, range.start - end);
                varint::put(&mut out, range.end - range.start);
                end = range.end;
            }
        }
        out
    }

    /// Decodes a message for a file of `file_size` bytes, checking that
    /// every range lies in the file, in order.
    pub fn decode(bytes: &[u8], file_size: u64) -> Result<Self, DeltaError> {
        let mut r = Reader::new(bytes);
        r.header(MAGIC, NAME)?;
        let level = r.u8(NAME)?;
        if r.u8(NAME)? != 0 {
            return Err(DeltaError::ReservedBits);
        }
        let refine = r.varint(NAME)?;
        let literal = r.varint(NAME)?;
        // Each range takes at least two bytes: a count beyond that is a lie.
        let most = (r.remaining() / 2) as u64;
        if refine.saturating_add(literal) > most {
            return Err(DeltaError::Truncated { what: NAME });
        }
        let mut read = |count: u64| -> Result<Vec<Range<u64>>, DeltaError> {
            let mut ranges = Vec::with_capacity(count as usize);
            let mut end = 0u64;
            for _ in 0..count {
                let start = end.checked_add(r.varint(NAME)?);
                let len = r.varint(NAME)?;
                let (start, stop) = match start.and_then(|s| Some((s, s.checked_add(len)?))) {
                    Some(pair) => pair,
                    None => return Err(DeltaError::BadRange { start: end, end: u64::MAX }),
                };
                if len == 0 || stop > file_size || (start == end && end != 0) {
                    return Err(DeltaError::BadRange { start, end: stop });
                }
                ranges.push(start..stop);
                end = stop;
            }
            Ok(ranges)
        };
        let refine = read(refine)?;
        let literal = read(literal)?;
        r.end()?;
        Ok(Self { level, refine, literal })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trip() {
        let need = Need { level: 2, refine: vec![0..10, 100..4096], literal: vec![5000..5001, 7000..9000] };
        assert_eq!(Need::decode(&need.encode(), 9000), Ok(need.clone()));
        assert_eq!(need.literal_bytes(), 2001);
        let bytes = need.encode();
        for len in 0..bytes.len() {
            assert!(Need::decode(&bytes[..len], 9000).is_err(), "len {len}");
        }
        assert!(Need::decode(&bytes, 8999).is_err(), "past the end of the file");
        assert!(Need::default().is_final());
    }

    #[test]
    fn ranges_must_be_apart_non_empty_and_counted_honestly() {
        let touching = Need { level: 1, refine: vec![0..10, 10..20], literal: vec![] };
        assert!(Need::decode(&touching.encode(), 100).is_err());
        let mut empty = Need { level: 1, ..Need::default() };
        empty.refine.push(5..5);
        assert!(Need::decode(&empty.encode(), 100).is_err());
        let mut lying = Need::default().encode();
        lying[7] = 0x7f;
        assert!(Need::decode(&lying, 100).is_err());
        let mut huge = vec![];
        huge.extend_from_slice(b"DCN2\x01\x01\x00\x01\x00");
        varint::put(&mut huge, u64::MAX);
        varint::put(&mut huge, 5);
        assert!(Need::decode(&huge, u64::MAX).is_err());
    }
}
