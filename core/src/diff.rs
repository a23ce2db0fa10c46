//! Comparing a source signature with a target's: which blocks to send.

use alloc::vec::Vec;
use core::ops::Range;

use crate::error::DiffError;
use crate::layout::BlockLayout;
use crate::runs::index_runs;
use crate::signature::Signature;

/// The blocks of the source that the target lacks, and what sending them costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    layout: BlockLayout,
    blocks: Vec<u64>,
    target_size: Option<u64>,
}

/// Compares `source` with `target` (`None` when the target does not exist).
///
/// Block `i` of the source is unchanged when the target has a block `i` of the
/// same length with the same digest; every other source block is sent. A
/// target longer than the source is truncated by the receiver (see
/// [`Delta::needs_resize`]); blocks past the source's end are never sent.
/// A block without a digest on either side (an incomplete signature) counts
/// as changed.
pub fn diff(source: &Signature, target: Option<&Signature>) -> Result<Delta, DiffError> {
    let layout = source.layout();
    if let Some(target) = target {
        if target.algorithm() != source.algorithm() {
            return Err(DiffError::AlgorithmMismatch {
                source: source.algorithm(),
                target: target.algorithm(),
            });
        }
        if target.block_size() != source.block_size() {
            return Err(DiffError::BlockSizeMismatch {
                source: source.block_size(),
                target: target.block_size(),
            });
        }
    }
    let unchanged = |i: u64| -> bool {
        let Some(target) = target else { return false };
        target.layout().block_len(i) == layout.block_len(i)
            && matches!((source.block_digest(i), target.block_digest(i)), (Some(s), Some(t)) if s == t)
    };
    let blocks = (0..layout.block_count()).filter(|&i| !unchanged(i)).collect();
    Ok(Delta { layout, blocks, target_size: target.map(Signature::file_size) })
}

impl Delta {
    /// The source's block layout.
    pub fn layout(&self) -> BlockLayout {
        self.layout
    }

    /// The indexes of the blocks to send, ascending.
    pub fn blocks(&self) -> &[u64] {
        &self.blocks
    }

    /// How many blocks the source has.
    pub fn total_blocks(&self) -> u64 {
        self.layout.block_count()
    }

    /// How many blocks to send.
    pub fn blocks_to_send(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The bytes to send: the blocks' real lengths, the short last block included.
    pub fn bytes_to_send(&self) -> u64 {
        self.layout.bytes_in_blocks(self.blocks.iter().copied())
    }

    /// The source bytes the target already has in place.
    pub fn unchanged_bytes(&self) -> u64 {
        self.layout.file_size() - self.bytes_to_send()
    }

    /// The share of the source's bytes that the target already has in place,
    /// in percent; 100 for an empty source.
    pub fn similarity_percent(&self) -> f64 {
        if self.layout.file_size() == 0 {
            return 100.0;
        }
        self.unchanged_bytes() as f64 * 100.0 / self.layout.file_size() as f64
    }

    /// The target's size, or `None` when it does not exist.
    pub fn target_size(&self) -> Option<u64> {
        self.target_size
    }

    /// Whether the target must be created, grown or truncated.
    pub fn needs_resize(&self) -> bool {
        self.target_size != Some(self.layout.file_size())
    }

    /// Whether nothing needs doing: same size and no block to send.
    pub fn is_identical(&self) -> bool {
        self.blocks.is_empty() && !self.needs_resize()
    }

    /// The blocks to send merged into runs of consecutive indexes, each at most
    /// `max_blocks` long (at least 1), ascending.
    pub fn runs(&self, max_blocks: u64) -> Vec<Range<u64>> {
        index_runs(self.blocks.iter().copied(), max_blocks)
    }

    /// The source blocks the target already has, ascending.
    pub fn unchanged_blocks(&self) -> impl Iterator<Item = u64> + '_ {
        let mut changed = self.blocks.iter().copied().peekable();
        (0..self.total_blocks()).filter(move |&i| {
            if changed.peek() == Some(&i) {
                changed.next();
                false
            } else {
                true
            }
        })
    }

    /// The byte ranges of the unchanged blocks, adjacent ones merged.
    pub fn unchanged_byte_runs(&self) -> Vec<Range<u64>> {
        self.layout.byte_runs(self.unchanged_blocks())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HashAlgorithm, SignatureBuilder};
    use alloc::vec;

    const B: u32 = 16;

    fn sign(bytes: &[u8]) -> Signature {
        let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, B).unwrap();
        builder.update(bytes);
        builder.finish()
    }

    #[test]
    fn identical_files_send_nothing() {
        let data = vec![1u8; 100];
        let delta = diff(&sign(&data), Some(&sign(&data))).unwrap();
        assert!(delta.is_identical());
        assert_eq!(delta.bytes_to_send(), 0);
        assert_eq!(delta.similarity_percent(), 100.0);
    }

    #[test]
    fn missing_target_sends_everything() {
        let data = vec![1u8; 3 * 16 + 5];
        let delta = diff(&sign(&data), None).unwrap();
        assert_eq!(delta.blocks(), &[0, 1, 2, 3]);
        assert_eq!(delta.bytes_to_send(), 53);
        assert_eq!(delta.similarity_percent(), 0.0);
        assert!(delta.needs_resize());
    }

    #[test]
    fn growth_sends_the_old_short_block_and_the_new_ones() {
        let old: Vec<u8> = (0..40).collect();
        let mut new = old.clone();
        new.extend(40..70u8);
        let delta = diff(&sign(&new), Some(&sign(&old))).unwrap();
        // Block 2 was 8 bytes long and is now 16: sent again, with blocks 3 and 4.
        assert_eq!(delta.blocks(), &[2, 3, 4]);
        assert_eq!(delta.bytes_to_send(), 16 + 16 + 6);
        assert!(delta.needs_resize());
    }

    #[test]
    fn shrinkage_sends_only_the_new_short_block() {
        let old: Vec<u8> = (0..70).collect();
        let delta = diff(&sign(&old[..40]), Some(&sign(&old))).unwrap();
        assert_eq!(delta.blocks(), &[2]);
        assert_eq!(delta.bytes_to_send(), 8);
        assert_eq!(delta.target_size(), Some(70));
        assert!(delta.needs_resize());
        let aligned = diff(&sign(&old[..32]), Some(&sign(&old))).unwrap();
        assert_eq!(aligned.blocks(), &[] as &[u64]);
        assert!(!aligned.is_identical());
    }

    #[test]
    fn empty_files() {
        let empty = sign(&[]);
        assert!(diff(&empty, Some(&empty)).unwrap().is_identical());
        let to_empty = diff(&empty, Some(&sign(&[1; 20]))).unwrap();
        assert_eq!(to_empty.blocks_to_send(), 0);
        assert!(to_empty.needs_resize());
        let new_empty = diff(&empty, None).unwrap();
        assert_eq!(new_empty.similarity_percent(), 100.0);
        assert!(new_empty.needs_resize());
    }

    #[test]
    fn runs_merge_neighbours_up_to_a_limit() {
        let old = vec![0u8; 16 * 10];
        let mut new = old.clone();
        for block in [1usize, 2, 3, 5, 8, 9] {
            new[block * 16] = 1;
        }
        let delta = diff(&sign(&new), Some(&sign(&old))).unwrap();
        assert_eq!(delta.runs(64), vec![1..4, 5..6, 8..10]);
        assert_eq!(delta.runs(2), vec![1..3, 3..4, 5..6, 8..10]);
        assert_eq!(delta.runs(0), delta.runs(1));
        assert_eq!(delta.runs(1).len(), 6);
        assert!((delta.similarity_percent() - 40.0).abs() < 1e-9);
        assert_eq!(delta.unchanged_blocks().collect::<Vec<_>>(), [0, 4, 6, 7]);
        assert_eq!(delta.unchanged_byte_runs(), vec![0..16, 64..80, 96..128]);
    }

    #[test]
    fn mismatched_signatures_are_refused() {
        let a = sign(&[1; 10]);
        let mut other = SignatureBuilder::new(HashAlgorithm::Sha256, B).unwrap();
        other.update(&[1; 10]);
        assert!(matches!(diff(&a, Some(&other.finish())), Err(DiffError::AlgorithmMismatch { .. })));
        let mut other = SignatureBuilder::new(HashAlgorithm::Sha1, 2 * B).unwrap();
        other.update(&[1; 10]);
        assert_eq!(
            diff(&a, Some(&other.finish())),
            Err(DiffError::BlockSizeMismatch { source: 16, target: 32 })
        );
    }
}
