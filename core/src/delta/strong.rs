//! The seeded strong hashes: XXH3-64 of a piece, XXH3-128 of a block, and
//! the file hash built from the blocks' (so blocks hash in parallel).
//!
//! The seed is the old side's, picked per session (uploads) or per file
//! version (downloads) after the old file's content is fixed, so no one can
//! plant colliding data in an old file in advance. The file hash checks the
//! rebuilt file before anything is committed.

use alloc::vec::Vec;

/// XXH3 natively: twox-hash, with AVX2 or SSE2 picked at run time (with `std`).
#[cfg(not(target_arch = "wasm32"))]
mod backend {
    pub(super) fn xxh3_64(seed: u64, bytes: &[u8]) -> u64 {
        twox_hash::XxHash3_64::oneshot_with_seed(seed, bytes)
    }

    pub(super) fn xxh3_128(seed: u64, bytes: &[u8]) -> u128 {
        twox_hash::XxHash3_128::oneshot_with_seed(seed, bytes)
    }

    /// XXH3-128 over bytes given in pieces.
    pub(super) struct Streaming128(twox_hash::XxHash3_128);

    impl Streaming128 {
        pub(super) fn new(seed: u64) -> Self {
            Self(twox_hash::XxHash3_128::with_seed(seed))
        }

        pub(super) fn update(&mut self, bytes: &[u8]) {
            self.0.write(bytes);
        }

        pub(super) fn finish(&self) -> u128 {
            self.0.finish_128()
        }
    }
}

/// XXH3 on wasm32: xxhash-rust, with SIMD128 where the build enables it.
#[cfg(target_arch = "wasm32")]
mod backend {
    pub(super) fn xxh3_64(seed: u64, bytes: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed)
    }

    pub(super) fn xxh3_128(seed: u64, bytes: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128_with_seed(bytes, seed)
    }

    /// XXH3-128 over bytes given in pieces.
    pub(super) struct Streaming128(xxhash_rust::xxh3::Xxh3);

    impl Streaming128 {
        pub(super) fn new(seed: u64) -> Self {
            Self(xxhash_rust::xxh3::Xxh3::with_seed(seed))
        }

        pub(super) fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        pub(super) fn finish(&self) -> u128 {
            self.0.digest128()
        }
    }
}

/// A piece's strong hash: XXH3-64 with the session's seed.
pub fn piece_hash(seed: u64, piece: &[u8]) -> u64 {
    backend::xxh3_64(seed, piece)
}

/// A block's strong hash, as the block hashes carry it and the file hash
/// combines it: XXH3-128 with the session's seed.
pub fn block_hash(seed: u64, block: &[u8]) -> u128 {
    backend::xxh3_128(seed, block)
}

/// A block's [`BlockHash`](super::BlockHash) over its bytes given in
/// pieces, as they are read: the same as `BlockHash::of` the whole block,
/// without holding it.
pub struct BlockHasher {
    seed: u64,
    strong: backend::Streaming128,
    /// The anchor's bytes until it is complete (it is the block's start).
    anchor: Vec<u8>,
}

impl BlockHasher {
    /// A hasher for one block, with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            strong: backend::Streaming128::new(seed),
            anchor: Vec::with_capacity(super::weak::ANCHOR),
        }
    }

    /// Feeds the block's next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let room = super::weak::ANCHOR - self.anchor.len();
        self.anchor.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.strong.update(bytes);
    }

    /// The block's hashes, for all the bytes fed.
    pub fn finish(&self) -> super::BlockHash {
        super::BlockHash { weak: super::weak::weak_sum(&self.anchor), hash: self.strong.finish() }
    }

    /// Starts over for the next block.
    pub fn reset(&mut self) {
        *self = Self::new(self.seed);
    }
}

impl core::fmt::Debug for BlockHasher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockHasher")
            .field("seed", &self.seed)
            .field("anchor", &self.anchor.len())
            .finish_non_exhaustive()
    }
}

/// The 64 bits of a block hash the old side matches on.
pub fn block_match_hash(block_hash: u128) -> u64 {
    block_hash as u64
}

/// The whole file's hash: XXH3-128 (seeded) over its size, block size and
/// every block's [`block_hash`] in order.
#[derive(Clone, Debug)]
pub struct FileHasher {
    seed: u64,
    bytes: Vec<u8>,
}

impl FileHasher {
    /// A file hash for a file of `file_size` bytes in blocks of `block_size`.
    pub fn new(seed: u64, file_size: u64, block_size: u32) -> Self {
        let mut bytes = Vec::with_capacity(12);
        bytes.extend_from_slice(&file_size.to_le_bytes());
        bytes.extend_from_slice(&block_size.to_le_bytes());
        Self { seed, bytes }
    }

    /// The next block's hash.
    pub fn push(&mut self, block_hash: u128) {
        self.bytes.extend_from_slice(&block_hash.to_le_bytes());
    }

    /// The file hash.
    pub fn finish(&self) -> u128 {
        backend::xxh3_128(self.seed, &self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_hashed_in_pieces_is_the_block_hashed_whole() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let mut hasher = BlockHasher::new(42);
        for len in [0, 1, 4095, 4096, 4097, 100_000, 200_000] {
            let block = &data[..len];
            for piece in [1, 7, 4096, 65_536, 1 << 20] {
                hasher.reset();
                for part in block.chunks(piece) {
                    hasher.update(part);
                }
                assert_eq!(
                    hasher.finish(),
                    super::super::BlockHash::of(42, block),
                    "len {len} in pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn seeds_change_every_hash() {
        let data = [7u8; 5000];
        assert_ne!(piece_hash(1, &data), piece_hash(2, &data));
        assert_ne!(block_hash(1, &data), block_hash(2, &data));
        assert_eq!(block_match_hash(block_hash(1, &data)), block_hash(1, &data) as u64);
    }

    /// XXH3's published value for the empty input with seed 0.
    #[test]
    fn known_value() {
        assert_eq!(piece_hash(0, b""), 0x2d06_8005_38d3_94c2);
    }

    /// The wasm32 backend gives what the native one gives, at every length
    /// XXH3 treats apart (0-16, 17-128, 129-240, longer, several stripes).
    #[test]
    fn both_backends_agree() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        for len in [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 1025, 4999] {
            for seed in [0, 1, 0x5eed_f00d_dead_beef] {
                let bytes = &data[..len];
                assert_eq!(
                    piece_hash(seed, bytes),
                    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed),
                    "{len}"
                );
                assert_eq!(
                    block_hash(seed, bytes),
                    xxhash_rust::xxh3::xxh3_128_with_seed(bytes, seed),
                    "{len}"
                );
            }
        }
    }

    #[test]
    fn the_file_hash_depends_on_order_and_sizes() {
        let hash = |size, blocks: &[u128]| {
            let mut h = FileHasher::new(9, size, 4096);
            for &b in blocks {
                h.push(b);
            }
            h.finish()
        };
        assert_ne!(hash(8192, &[1, 2]), hash(8192, &[2, 1]));
        assert_ne!(hash(8192, &[1, 2]), hash(8191, &[1, 2]));
        assert_eq!(hash(8192, &[1, 2]), hash(8192, &[1, 2]));
    }
}
