//! Levels below 0: the hashes of the pieces the old side asked to refine,
//! in the order it asked for them: a weak sum of each piece's anchor, for
//! the old side's search near the parent, and a strong hash.
//!
//! ```text
//! "DCP2" version(1) level(u8) reserved(u16 = 0) count(u32)
//! per piece: weak sum (u32) strong hash (u64, XXH3-64 with the seed)
//! ```

use alloc::vec::Vec;
use core::ops::Range;

use super::error::DeltaError;
use super::old::ReadAt;
use super::params::{DeltaParams, pieces};
use super::reader::Reader;
use super::strong::piece_hash;
use super::weak::{anchor_len, weak_sum};

const MAGIC: &[u8; 4] = b"DCP2";
const NAME: &str = "piece hashes message";
/// About the most bytes [`PieceHashes::compute`] reads at once.
const READ_CHUNK: u64 = 1 << 20;

/// The hashes of one level's pieces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceHashes {
    /// The level (1 or more).
    pub level: u8,
    /// One weak sum per piece (of its anchor), in order.
    pub weak: Vec<u32>,
    /// One strong hash per piece, in order.
    pub hashes: Vec<u64>,
}

/// The pieces at `level` that cover `ranges` (each range cut from its start).
pub fn pieces_of<'a>(
    params: &DeltaParams,
    level: u8,
    ranges: &'a [Range<u64>],
) -> impl Iterator<Item = Range<u64>> + 'a {
    let size = params.levels.size(usize::from(level)).unwrap_or(u32::MAX);
    ranges.iter().flat_map(move |r| pieces(r.clone(), size))
}

impl PieceHashes {
    /// Hashes the pieces at `level` that cover `ranges` of the new `file`.
    pub fn compute<F: ReadAt>(
        params: &DeltaParams,
        level: u8,
        ranges: &[Range<u64>],
        file: &mut F,
    ) -> Result<Self, F::Error> {
        let size = u64::from(params.levels.size(usize::from(level)).unwrap_or(u32::MAX)).max(1);
        // Whole pieces per read, about a MiB: a long range costs no more memory.
        let chunk = (READ_CHUNK / size).max(1) * size;
        let (mut weak, mut hashes) = (Vec::new(), Vec::new());
        let mut buf = Vec::new();
        for range in ranges {
            let mut at = range.start;
            while at < range.end {
                let end = range.end.min(at + chunk);
                buf.resize((end - at) as usize, 0);
                file.read_at(at, &mut buf)?;
                for piece in buf.chunks(size as usize) {
                    weak.push(weak_sum(&piece[..anchor_len(piece.len())]));
                    hashes.push(piece_hash(params.seed, piece));
                }
                at = end;
            }
        }
        Ok(Self { level, weak, hashes })
    }

    /// How many pieces.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are no pieces.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The length of the encoded message for `count` pieces.
    pub fn encoded_len(count: u64) -> u64 {
        12 + 12 * count
    }

    /// The encoded message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(self.hashes.len() as u64) as usize);
        out.extend_from_slice(MAGIC);
        out.push(1);
        out.push(self.level);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(self.hashes.len() as u32).to_le_bytes());
        for (weak, hash) in self.weak.iter().zip(&self.hashes) {
            out.extend_from_slice(&weak.to_le_bytes());
            out.extend_from_slice(&hash.to_le_bytes());
        }
        out
    }

    /// Decodes a message, checking its length against its count.
    pub fn decode(bytes: &[u8]) -> Result<Self, DeltaError> {
        let mut r = Reader::new(bytes);
        r.header(MAGIC, NAME)?;
        let level = r.u8(NAME)?;
        if r.u16(NAME)? != 0 {
            return Err(DeltaError::ReservedBits);
        }
        let count = u64::from(r.u32(NAME)?);
        if count > (r.remaining() / 12) as u64 {
            return Err(DeltaError::Truncated { what: NAME });
        }
        let (mut weak, mut hashes) = (Vec::with_capacity(count as usize), Vec::with_capacity(count as usize));
        for _ in 0..count {
            weak.push(r.u32(NAME)?);
            hashes.push(r.u64(NAME)?);
        }
        r.end()?;
        Ok(Self { level, weak, hashes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::params::Levels;

    #[test]
    fn pieces_of_ranges_and_their_hashes() {
        let params = DeltaParams { file_size: 10_000, seed: 3, levels: Levels::new(&[4096, 1024]).unwrap() };
        let ranges = [0..4096, 8192..10_000];
        let cut: Vec<_> = pieces_of(&params, 1, &ranges).collect();
        assert_eq!(cut.len(), 4 + 2);
        assert_eq!(cut[5], 9216..10_000);
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let hashes = PieceHashes::compute(&params, 1, &ranges, &mut crate::delta::SliceFile(&data)).unwrap();
        assert_eq!(hashes.hashes.len(), 6);
        assert_eq!(hashes.hashes[5], piece_hash(3, &data[9216..]));
        assert_eq!(PieceHashes::decode(&hashes.encode()), Ok(hashes.clone()));
        assert_eq!(hashes.encode().len() as u64, PieceHashes::encoded_len(6));
        let bytes = hashes.encode();
        for len in 0..bytes.len() {
            assert!(PieceHashes::decode(&bytes[..len]).is_err());
        }
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(PieceHashes::decode(&huge).is_err());
    }
}
