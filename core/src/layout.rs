//! How a file of a given size splits into fixed-size blocks.

use alloc::vec::Vec;
use core::ops::Range;

use crate::error::SignatureError;

/// The largest block size the core accepts (1 GiB). Servers narrow this further.
pub const MAX_BLOCK_SIZE: u32 = 1 << 30;

/// A file size cut into blocks of `block_size` bytes; the last block may be short.
///
/// Block `i` covers bytes `i * block_size .. min((i + 1) * block_size, file_size)`.
/// An empty file has no blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockLayout {
    file_size: u64,
    block_size: u32,
}

impl BlockLayout {
    /// A layout for `file_size` bytes in blocks of `block_size` bytes
    /// (1 ..= [`MAX_BLOCK_SIZE`]).
    pub fn new(file_size: u64, block_size: u32) -> Result<Self, SignatureError> {
        check_block_size(block_size)?;
        Ok(Self { file_size, block_size })
    }

    /// The file size in bytes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// How many blocks the file has (the last one possibly short).
    pub fn block_count(&self) -> u64 {
        self.file_size.div_ceil(u64::from(self.block_size))
    }

    /// The byte range of block `index`, or `None` past the end.
    pub fn block_range(&self, index: u64) -> Option<Range<u64>> {
        let start = index.checked_mul(u64::from(self.block_size))?;
        if start >= self.file_size {
            return None;
        }
        Some(start..self.file_size.min(start + u64::from(self.block_size)))
    }

    /// The length of block `index` (only the last block is shorter than
    /// `block_size`), or `None` past the end.
    pub fn block_len(&self, index: u64) -> Option<u32> {
        // A block is at most `block_size` long, so the length fits in u32.
        self.block_range(index).map(|r| (r.end - r.start) as u32)
    }

    /// The index of the block that starts at `offset`, or `None` when `offset`
    /// is not a block boundary inside the file.
    pub fn block_at_offset(&self, offset: u64) -> Option<u64> {
        let block_size = u64::from(self.block_size);
        (offset < self.file_size && offset % block_size == 0).then_some(offset / block_size)
    }

    /// The bytes in the given blocks, counting the short last block by its real
    /// length and blocks past the end as empty. Each index counts as often as it
    /// appears.
    pub fn bytes_in_blocks(&self, blocks: impl IntoIterator<Item = u64>) -> u64 {
        blocks.into_iter().filter_map(|i| self.block_len(i)).map(u64::from).sum()
    }

    /// The byte ranges of the given blocks (ascending indexes), adjacent
    /// blocks merged into one range; blocks past the end are skipped.
    pub fn byte_runs(&self, blocks: impl IntoIterator<Item = u64>) -> Vec<Range<u64>> {
        let mut runs: Vec<Range<u64>> = Vec::new();
        for range in blocks.into_iter().filter_map(|i| self.block_range(i)) {
            match runs.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ => runs.push(range),
            }
        }
        runs
    }

    /// The bytes in the blocks starting at the given byte offsets (pdiffcopy's
    /// `compute_transfer_size`): an offset inside a block counts up to that
    /// block's end, an offset at or past the end of the file counts nothing.
    pub fn bytes_at_offsets(&self, offsets: impl IntoIterator<Item = u64>) -> u64 {
        offsets
            .into_iter()
            .filter(|&offset| offset < self.file_size)
            .map(|offset| {
                let block_end = (offset / u64::from(self.block_size) + 1) * u64::from(self.block_size);
                block_end.min(self.file_size) - offset
            })
            .sum()
    }
}

pub(crate) fn check_block_size(block_size: u32) -> Result<(), SignatureError> {
    if block_size == 0 || block_size > MAX_BLOCK_SIZE {
        return Err(SignatureError::InvalidBlockSize { block_size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u32 = 4096;

    fn layout(size: u64) -> BlockLayout {
        BlockLayout::new(size, B).unwrap()
    }

    #[test]
    fn block_counts_at_edge_sizes() {
        let b = u64::from(B);
        for (size, count) in [(0, 0), (1, 1), (b - 1, 1), (b, 1), (b + 1, 2), (3 * b + 17, 4)] {
            assert_eq!(layout(size).block_count(), count, "size {size}");
        }
    }

    #[test]
    fn short_last_block() {
        let l = layout(3 * u64::from(B) + 17);
        assert_eq!(l.block_len(0), Some(B));
        assert_eq!(l.block_len(2), Some(B));
        assert_eq!(l.block_len(3), Some(17));
        assert_eq!(l.block_range(3), Some(3 * 4096..3 * 4096 + 17));
        assert_eq!(l.block_len(4), None);
        assert_eq!(l.block_range(u64::MAX), None);
        assert_eq!(layout(0).block_range(0), None);
    }

    #[test]
    fn bytes_in_blocks_counts_the_short_last_block_and_ignores_past_the_end() {
        let l = layout(3 * u64::from(B) + 17);
        assert_eq!(l.bytes_in_blocks([0, 3]), 4096 + 17);
        assert_eq!(l.bytes_in_blocks([3, 4, 99]), 17);
        assert_eq!(l.bytes_in_blocks(0..l.block_count()), l.file_size());
        assert_eq!(layout(0).bytes_in_blocks([0]), 0);
    }

    #[test]
    fn bytes_at_offsets_matches_pdiffcopy_done_right() {
        let l = layout(2 * u64::from(B) + 10);
        assert_eq!(l.bytes_at_offsets([0, 4096, 8192]), l.file_size());
        assert_eq!(l.bytes_at_offsets([8192, 12288, 1 << 40]), 10);
        assert_eq!(l.bytes_at_offsets([4000]), 96);
    }

    #[test]
    fn byte_runs_merge_adjacent_blocks() {
        let l = layout(3 * u64::from(B) + 17);
        assert_eq!(l.byte_runs([0, 1, 3, 9]), alloc::vec![0..8192, 12288..12305]);
        assert_eq!(l.byte_runs([]), alloc::vec![]);
    }

    #[test]
    fn block_at_offset_only_on_boundaries_inside_the_file() {
        let l = layout(2 * u64::from(B));
        assert_eq!(l.block_at_offset(0), Some(0));
        assert_eq!(l.block_at_offset(4096), Some(1));
        assert_eq!(l.block_at_offset(8192), None);
        assert_eq!(l.block_at_offset(1), None);
    }

    #[test]
    fn invalid_block_sizes_are_refused() {
        assert!(BlockLayout::new(1, 0).is_err());
        assert!(BlockLayout::new(1, MAX_BLOCK_SIZE + 1).is_err());
        assert!(BlockLayout::new(1, MAX_BLOCK_SIZE).is_ok());
    }
}
