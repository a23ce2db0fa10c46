//! Level 0: every block's weak sum and strong hash, and the file hash.
//! The new side sends it (an upload's client, a download's server).
//!
//! ```text
//! "DCB2" version(1) level-count(u8) reserved(u16 = 0)
//! file size (u64) seed (u64) level sizes (u32 each) file hash (u128)
//! per block: weak sum (u32), strong hash (u64, the low half of its XXH3-128)
//! ```

use alloc::vec::Vec;

use super::error::DeltaError;
use super::params::{DeltaParams, Levels, MAX_LEVELS};
use super::reader::Reader;
use super::strong::{FileHasher, block_hash, block_match_hash};
use super::weak::{anchor_len, weak_sum};

const MAGIC: &[u8; 4] = b"DCB2";
const NAME: &str = "block hashes message";
/// Magic, version, level count, reserved, file size, seed.
const HEAD_LEN: u64 = 4 + 1 + 1 + 2 + 8 + 8;

/// One block's hashes as the new side computes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHash {
    /// The weak rolling sum.
    pub weak: u32,
    /// The XXH3-128 of the block (its low 64 bits travel; all 128 go into
    /// the file hash).
    pub hash: u128,
}

impl BlockHash {
    /// The hashes of `block` with `seed`: the weak sum of its anchor, the
    /// strong hash of all of it.
    pub fn of(seed: u64, block: &[u8]) -> Self {
        Self { weak: weak_sum(&block[..anchor_len(block.len())]), hash: block_hash(seed, block) }
    }
}

/// Every block's weak sum and strong hash, and the file hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHashes {
    params: DeltaParams,
    file_hash: u128,
    weak: Vec<u32>,
    strong: Vec<u64>,
}

/// Builds [`BlockHashes`] from the blocks' hashes, given in order.
#[derive(Clone, Debug)]
pub struct BlockHashesBuilder {
    params: DeltaParams,
    file: FileHasher,
    weak: Vec<u32>,
    strong: Vec<u64>,
}

impl BlockHashesBuilder {
    /// A builder for a file with `params`.
    pub fn new(params: DeltaParams) -> Self {
        let blocks = usize::try_from(params.block_count()).unwrap_or(0).min(1 << 24);
        Self {
            params,
            file: FileHasher::new(params.seed, params.file_size, params.levels.block_size()),
            weak: Vec::with_capacity(blocks),
            strong: Vec::with_capacity(blocks),
        }
    }

    /// Hashes the next block.
    pub fn push_block(&mut self, block: &[u8]) {
        self.push(BlockHash::of(self.params.seed, block));
    }

    /// The next block's hashes (computed elsewhere, e.g. on another thread).
    pub fn push(&mut self, block: BlockHash) {
        self.file.push(block.hash);
        self.weak.push(block.weak);
        self.strong.push(block_match_hash(block.hash));
    }

    /// How many blocks were pushed.
    pub fn len(&self) -> u64 {
        self.weak.len() as u64
    }

    /// Whether no block was pushed.
    pub fn is_empty(&self) -> bool {
        self.weak.is_empty()
    }

    /// The message, or [`DeltaError::BadCount`] if the blocks pushed are
    /// not the file's.
    pub fn finish(self) -> Result<BlockHashes, DeltaError> {
        let expected = self.params.block_count();
        if self.len() != expected {
            return Err(DeltaError::BadCount { found: self.len(), expected });
        }
        Ok(BlockHashes {
            params: self.params,
            file_hash: self.file.finish(),
            weak: self.weak,
            strong: self.strong,
        })
    }
}

impl BlockHashes {
    /// The file's parameters.
    pub fn params(&self) -> &DeltaParams {
        &self.params
    }

    /// The whole file's hash.
    pub fn file_hash(&self) -> u128 {
        self.file_hash
    }

    /// How many blocks.
    pub fn len(&self) -> u64 {
        self.weak.len() as u64
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.weak.is_empty()
    }

    /// Block `index`'s weak sum and strong (match) hash.
    pub fn block(&self, index: u64) -> Option<(u32, u64)> {
        let i = usize::try_from(index).ok()?;
        Some((*self.weak.get(i)?, *self.strong.get(i)?))
    }

    /// The length of the encoded message for a file with `params`.
    pub fn encoded_len(params: &DeltaParams) -> u64 {
        HEAD_LEN + 4 * params.levels.count() as u64 + 16 + 12 * params.block_count()
    }

    /// The encoded message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(&self.params) as usize);
        let levels = self.params.levels.sizes();
        out.extend_from_slice(MAGIC);
        out.push(1);
        out.push(levels.len() as u8);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.params.file_size.to_le_bytes());
        out.extend_from_slice(&self.params.seed.to_le_bytes());
        for size in levels {
            out.extend_from_slice(&size.to_le_bytes());
        }
        out.extend_from_slice(&self.file_hash.to_le_bytes());
        for (weak, strong) in self.weak.iter().zip(&self.strong) {
            out.extend_from_slice(&weak.to_le_bytes());
            out.extend_from_slice(&strong.to_le_bytes());
        }
        out
    }

    /// Decodes a message, checking every field and that the entries are
    /// exactly the file's blocks; allocates no more than the input's length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DeltaError> {
        let mut r = Reader::new(bytes);
        r.header(MAGIC, NAME)?;
        let count = usize::from(r.u8(NAME)?);
        if r.u16(NAME)? != 0 {
            return Err(DeltaError::ReservedBits);
        }
        let file_size = r.u64(NAME)?;
        let seed = r.u64(NAME)?;
        if count == 0 || count > MAX_LEVELS {
            return Err(DeltaError::BadLevels);
        }
        let mut sizes = [0u32; MAX_LEVELS];
        for size in &mut sizes[..count] {
            *size = r.u32(NAME)?;
        }
        let levels = Levels::new(&sizes[..count])?;
        let file_hash = r.u128(NAME)?;
        let params = DeltaParams { file_size, seed, levels };
        let blocks = params.block_count();
        let available = (r.remaining() / 12) as u64;
        if blocks > available {
            return Err(DeltaError::Truncated { what: NAME });
        }
        let mut weak = Vec::with_capacity(blocks as usize);
        let mut strong = Vec::with_capacity(blocks as usize);
        for _ in 0..blocks {
            weak.push(r.u32(NAME)?);
            strong.push(r.u64(NAME)?);
        }
        r.end()?;
        Ok(Self { params, file_hash, weak, strong })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(size: u64) -> DeltaParams {
        DeltaParams { file_size: size, seed: 42, levels: Levels::for_block(4096).unwrap() }
    }

    fn sample(size: usize) -> BlockHashes {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let mut builder = BlockHashesBuilder::new(params(size as u64));
        for block in data.chunks(4096) {
            builder.push_block(block);
        }
        builder.finish().unwrap()
    }

    #[test]
    fn round_trip_at_edge_sizes() {
        for size in [0, 1, 4095, 4096, 4097, 3 * 4096 + 17] {
            let hashes = sample(size);
            assert_eq!(hashes.encode().len() as u64, BlockHashes::encoded_len(&params(size as u64)));
            assert_eq!(hashes.len(), (size as u64).div_ceil(4096));
            assert_eq!(BlockHashes::decode(&hashes.encode()), Ok(hashes), "size {size}");
        }
    }

    #[test]
    fn every_truncation_and_corruption_fails_cleanly() {
        let bytes = sample(3 * 4096 + 17).encode();
        for len in 0..bytes.len() {
            assert!(BlockHashes::decode(&bytes[..len]).is_err(), "len {len}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(BlockHashes::decode(&long), Err(DeltaError::TrailingBytes { extra: 1 }));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(BlockHashes::decode(&bad), Err(DeltaError::BadMagic { expected: NAME }));
        let mut huge = bytes.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(BlockHashes::decode(&huge), Err(DeltaError::Truncated { what: NAME }));
    }

    #[test]
    fn the_builder_wants_every_block() {
        let mut builder = BlockHashesBuilder::new(params(5000));
        builder.push_block(&[0; 4096]);
        assert_eq!(builder.finish(), Err(DeltaError::BadCount { found: 1, expected: 2 }));
    }
}
