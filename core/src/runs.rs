//! Runs of consecutive block indexes: how sets of blocks travel and are
//! looked up (received blocks, missing blocks, blocks to fetch together).

use alloc::vec::Vec;
use core::ops::Range;

/// Merges ascending `indexes` into runs of consecutive indexes, each at most
/// `max_len` long (at least 1; `u64::MAX` for no limit). A repeated or
/// descending index starts a new run.
pub fn index_runs(indexes: impl IntoIterator<Item = u64>, max_len: u64) -> Vec<Range<u64>> {
    let max_len = max_len.max(1);
    let mut runs: Vec<Range<u64>> = Vec::new();
    for index in indexes {
        match runs.last_mut() {
            Some(run) if run.end == index && run.end - run.start < max_len => run.end += 1,
            _ => runs.push(index..index.saturating_add(1)),
        }
    }
    runs
}

/// Whether `index` lies in one of `runs` (sorted by start, not overlapping).
pub fn in_runs(runs: &[Range<u64>], index: u64) -> bool {
    let after = runs.partition_point(|run| run.start <= index);
    after > 0 && runs[after - 1].contains(&index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn consecutive_indexes_merge_up_to_the_limit() {
        assert_eq!(index_runs([0, 1, 2, 5, 7, 8], u64::MAX), vec![0..3, 5..6, 7..9]);
        assert_eq!(index_runs([1, 2, 3, 5, 8, 9], 2), vec![1..3, 3..4, 5..6, 8..10]);
        assert_eq!(index_runs([4, 4, 3], 0), vec![4..5, 4..5, 3..4]);
        assert!(index_runs([], 9).is_empty());
    }

    #[test]
    fn lookup_in_runs() {
        let runs = [0..3, 5..6, 9..20];
        let inside: Vec<u64> = (0..25).filter(|&i| in_runs(&runs, i)).collect();
        assert_eq!(inside, [0, 1, 2, 5, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        assert!(!in_runs(&[], 0));
    }
}
