//! What both sides agree on before hashing: the new file's size, the seed,
//! and the piece size of each level (the first is the block size).

use core::ops::Range;

use super::error::DeltaError;

/// The most refinement levels, blocks included.
pub const MAX_LEVELS: usize = 6;
/// The smallest piece a level may have.
pub const MIN_PIECE: u32 = 64;
/// The smallest piece the default levels go down to.
const FINEST_DEFAULT: u32 = 512;

/// Piece sizes from coarse to fine: each divides the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Levels {
    sizes: [u32; MAX_LEVELS],
    count: u8,
}

impl Levels {
    /// The default levels for blocks of `block_size`: the block, then a
    /// sixteenth at each step while that is at least 4 KiB, then 512 bytes
    /// (1 MiB, 64 KiB, 4 KiB, 512 B for 1 MiB blocks).
    pub fn for_block(block_size: u32) -> Result<Self, DeltaError> {
        let mut sizes = [0u32; MAX_LEVELS];
        sizes[0] = block_size;
        let mut count = 1;
        while count < MAX_LEVELS - 1 && sizes[count - 1] % 16 == 0 && sizes[count - 1] / 16 >= 4096 {
            sizes[count] = sizes[count - 1] / 16;
            count += 1;
        }
        let last = sizes[count - 1];
        if last > FINEST_DEFAULT && last % FINEST_DEFAULT == 0 {
            sizes[count] = FINEST_DEFAULT;
            count += 1;
        }
        Self::new(&sizes[..count])
    }

    /// Explicit levels, checked: 1 to [`MAX_LEVELS`] sizes, strictly
    /// decreasing, each dividing the one before, none below [`MIN_PIECE`].
    pub fn new(sizes: &[u32]) -> Result<Self, DeltaError> {
        if sizes.is_empty() || sizes.len() > MAX_LEVELS {
            return Err(DeltaError::BadLevels);
        }
        let mut out = [0u32; MAX_LEVELS];
        for (i, &size) in sizes.iter().enumerate() {
            if size < MIN_PIECE || (i > 0 && (size >= sizes[i - 1] || sizes[i - 1] % size != 0)) {
                return Err(DeltaError::BadLevels);
            }
            out[i] = size;
        }
        Ok(Self { sizes: out, count: sizes.len() as u8 })
    }

    /// The piece sizes, coarse to fine.
    pub fn sizes(&self) -> &[u32] {
        &self.sizes[..usize::from(self.count)]
    }

    /// How many levels.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// The piece size of `level` (0 is the block size).
    pub fn size(&self, level: usize) -> Option<u32> {
        self.sizes().get(level).copied()
    }

    /// The block size (level 0's pieces).
    pub fn block_size(&self) -> u32 {
        self.sizes[0]
    }
}

/// The parameters of one delta: the new file's size, the seed of its
/// strong hashes, and the levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeltaParams {
    /// The new file's size in bytes.
    pub file_size: u64,
    /// The seed of the strong hashes, chosen by the server.
    pub seed: u64,
    /// The piece sizes.
    pub levels: Levels,
}

impl DeltaParams {
    /// How many blocks (level-0 pieces) the new file has.
    pub fn block_count(&self) -> u64 {
        self.file_size.div_ceil(u64::from(self.levels.block_size()))
    }

    /// The byte range of block `index`.
    pub fn block_range(&self, index: u64) -> Range<u64> {
        pieces(0..self.file_size, self.levels.block_size()).nth(index as usize).unwrap_or(0..0)
    }
}

/// `range` cut into pieces of `size` from its start; the last may be short.
pub fn pieces(range: Range<u64>, size: u32) -> impl Iterator<Item = Range<u64>> {
    let size = u64::from(size.max(1));
    let end = range.end;
    (range.start..end).step_by(size as usize).map(move |start| start..end.min(start + size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn default_levels() {
        assert_eq!(Levels::for_block(1 << 20).unwrap().sizes(), [1 << 20, 1 << 16, 1 << 12, 512]);
        assert_eq!(Levels::for_block(64 << 10).unwrap().sizes(), [64 << 10, 4096, 512]);
        assert_eq!(Levels::for_block(4096).unwrap().sizes(), [4096, 512]);
        assert_eq!(Levels::for_block(64 << 20).unwrap().sizes(), [64 << 20, 4 << 20, 1 << 18, 1 << 14, 512]);
        assert_eq!(Levels::for_block(8192).unwrap().sizes(), [8192, 512]);
        assert_eq!(Levels::for_block(1000).unwrap().sizes(), [1000]);
        assert_eq!(Levels::for_block(100).unwrap().sizes(), [100]);
    }

    #[test]
    fn bad_levels_are_refused() {
        for sizes in [&[][..], &[4096, 4096], &[4096, 3000], &[4096, 32], &[1, 2, 3, 4, 5, 6, 7]] {
            assert_eq!(Levels::new(sizes), Err(DeltaError::BadLevels), "{sizes:?}");
        }
    }

    #[test]
    fn pieces_cover_the_range() {
        let cut: Vec<_> = pieces(4096..4096 + 1000, 300).collect();
        assert_eq!(cut, [4096..4396, 4396..4696, 4696..4996, 4996..5096]);
        assert_eq!(pieces(5..5, 10).count(), 0);
    }
}
