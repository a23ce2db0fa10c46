//! The result of a search: the new file as a list of segments, each copied
//! from the old file or sent as literal data.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Range;

use super::error::DeltaError;
use super::reader::Reader;
use super::varint;

const MAGIC: &[u8; 4] = b"DCM2";
const NAME: &str = "plan";

/// Where a segment of the new file comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The old file, from this offset.
    Old(u64),
    /// Literal data sent by the new side.
    Literal,
}

/// A stretch of the new file and where its bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The range in the new file.
    pub new: Range<u64>,
    /// Where its bytes are.
    pub source: Source,
}

/// The new file, segment by segment, covering it exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    file_size: u64,
    segments: Vec<Segment>,
}

impl Plan {
    /// The plan of a file whose matched ranges are `matches` (new start ->
    /// (new end, old start)); everything between is literal. Neighbouring
    /// copies from consecutive old bytes merge into one segment.
    pub(crate) fn from_matches(file_size: u64, matches: &BTreeMap<u64, (u64, u64)>) -> Self {
        let mut segments: Vec<Segment> = Vec::new();
        let mut at = 0;
        let mut push = |segment: Segment| {
            if let Some(last) = segments.last_mut()
                && last.new.end == segment.new.start
            {
                let merged = match (last.source, segment.source) {
                    (Source::Literal, Source::Literal) => true,
                    (Source::Old(a), Source::Old(b)) => a + (last.new.end - last.new.start) == b,
                    _ => false,
                };
                if merged {
                    last.new.end = segment.new.end;
                    return;
                }
            }
            segments.push(segment);
        };
        for (&start, &(end, old)) in matches {
            if start > at {
                push(Segment { new: at..start, source: Source::Literal });
            }
            push(Segment { new: start..end, source: Source::Old(old) });
            at = end;
        }
        if at < file_size {
            push(Segment { new: at..file_size, source: Source::Literal });
        }
        Self { file_size, segments }
    }

    /// The plan of a new file sent whole as literal data.
    pub fn literal(file_size: u64) -> Self {
        Self::from_matches(file_size, &BTreeMap::new())
    }

    /// The new file's size.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The ranges sent as literal data, in order.
    pub fn literal_ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.segments.iter().filter(|s| s.source == Source::Literal).map(|s| s.new.clone())
    }

    /// Bytes sent as literal data.
    pub fn literal_bytes(&self) -> u64 {
        self.literal_ranges().map(|r| r.end - r.start).sum()
    }

    /// Bytes copied from the old file.
    pub fn copied_bytes(&self) -> u64 {
        self.file_size - self.literal_bytes()
    }

    /// Whether the new file is the old one (of `old_len` bytes) unchanged.
    pub fn is_identity(&self, old_len: u64) -> bool {
        old_len == self.file_size
            && match self.segments.as_slice() {
                [] => true,
                [only] => only.source == Source::Old(0),
                _ => false,
            }
    }

    /// Rebuilds the new file in memory from `old` and the literal bytes
    /// `literal(range)` gives for each literal range.
    pub fn rebuild<'a>(&self, old: &[u8], mut literal: impl FnMut(Range<u64>) -> &'a [u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.file_size as usize);
        for segment in &self.segments {
            match segment.source {
                Source::Old(at) => {
                    let start = at as usize;
                    out.extend_from_slice(
                        &old[start..start + (segment.new.end - segment.new.start) as usize],
                    );
                }
                Source::Literal => out.extend_from_slice(literal(segment.new.clone())),
            }
        }
        out
    }

    /// The plan as bytes, to keep a session across a restart.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 8 * self.segments.len());
        out.extend_from_slice(MAGIC);
        out.push(1);
        varint::put(&mut out, self.file_size);
        varint::put(&mut out, self.segments.len() as u64);
        for segment in &self.segments {
            varint::put(&mut out, segment.new.end - segment.new.start);
            match segment.source {
                Source::Literal => out.push(0),
                Source::Old(at) => {
                    out.push(1);
                    varint::put(&mut out, at);
                }
            }
        }
        out
    }

    /// Reads back [`Plan::encode`]'s bytes; the segments must cover the file
    /// exactly and copies must fit in an old file of `old_len` bytes.
    pub fn decode(bytes: &[u8], old_len: u64) -> Result<Self, DeltaError> {
        let mut r = Reader::new(bytes);
        r.header(MAGIC, NAME)?;
        let file_size = r.varint(NAME)?;
        let count = r.varint(NAME)?;
        if count > r.remaining() as u64 {
            return Err(DeltaError::Truncated { what: NAME });
        }
        let mut segments = Vec::with_capacity(count as usize);
        let mut at = 0u64;
        for _ in 0..count {
            let len = r.varint(NAME)?;
            let end = at.checked_add(len).filter(|&end| len > 0 && end <= file_size);
            let Some(end) = end else {
                return Err(DeltaError::BadRange { start: at, end: at.saturating_add(len) });
            };
            let source = match r.u8(NAME)? {
                0 => Source::Literal,
                1 => {
                    let old = r.varint(NAME)?;
                    if old.checked_add(len).is_none_or(|e| e > old_len) {
                        return Err(DeltaError::BadRange { start: old, end: old.saturating_add(len) });
                    }
                    Source::Old(old)
                }
                _ => return Err(DeltaError::ReservedBits),
            };
            segments.push(Segment { new: at..end, source });
            at = end;
        }
        if at != file_size {
            return Err(DeltaError::BadRange { start: at, end: file_size });
        }
        r.end()?;
        Ok(Self { file_size, segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_literal_and_consecutive_copies_merge() {
        let mut matches = BTreeMap::new();
        matches.insert(0, (10, 100));
        matches.insert(10, (20, 110));
        matches.insert(30, (40, 0));
        let plan = Plan::from_matches(50, &matches);
        assert_eq!(
            plan.segments(),
            [
                Segment { new: 0..20, source: Source::Old(100) },
                Segment { new: 20..30, source: Source::Literal },
                Segment { new: 30..40, source: Source::Old(0) },
                Segment { new: 40..50, source: Source::Literal },
            ]
        );
        assert_eq!((plan.literal_bytes(), plan.copied_bytes()), (20, 30));
        assert_eq!(Plan::decode(&plan.encode(), 120), Ok(plan.clone()));
        assert!(Plan::decode(&plan.encode(), 119).is_err(), "a copy past the old file's end");
        let bytes = plan.encode();
        for len in 0..bytes.len() {
            assert!(Plan::decode(&bytes[..len], 120).is_err());
        }
    }

    #[test]
    fn identity() {
        let mut matches = BTreeMap::new();
        matches.insert(0, (50, 0));
        assert!(Plan::from_matches(50, &matches).is_identity(50));
        assert!(!Plan::from_matches(50, &matches).is_identity(51));
        assert!(Plan::from_matches(0, &BTreeMap::new()).is_identity(0));
        assert!(!Plan::from_matches(5, &BTreeMap::new()).is_identity(5));
    }
}
