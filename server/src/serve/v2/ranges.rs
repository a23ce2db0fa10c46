//! A set of byte ranges, merged as they are added: which literal data of a
//! protocol v2 upload has arrived.

use std::collections::BTreeMap;
use std::ops::Range;

/// Disjoint ranges: start -> end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet(BTreeMap<u64, u64>);

impl RangeSet {
    /// The set of `ranges`.
    pub(crate) fn from_ranges(ranges: impl IntoIterator<Item = Range<u64>>) -> Self {
        let mut set = Self::default();
        for range in ranges {
            set.insert(range);
        }
        set
    }

    /// Adds `range`, merging it with the ranges it touches.
    pub(crate) fn insert(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        let (mut start, mut end) = (range.start, range.end);
        if let Some((&s, &e)) = self.0.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
        }
        let overlapping: Vec<u64> = self.0.range(start..=end).map(|(&s, _)| s).collect();
        for s in overlapping {
            if let Some(e) = self.0.remove(&s) {
                end = end.max(e);
            }
        }
        self.0.insert(start, end);
    }

    /// The parts of `range` not in the set.
    pub(crate) fn missing(&self, range: Range<u64>) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        let mut at = range.start;
        if let Some((_, &e)) = self.0.range(..=at).next_back()
            && e > at
        {
            at = e;
        }
        for (&s, &e) in self.0.range(at..range.end) {
            if s > at {
                out.push(at..s);
            }
            at = at.max(e);
        }
        if at < range.end {
            out.push(at..range.end);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_merge_and_missing_parts_are_found() {
        let mut set = RangeSet::default();
        set.insert(10..20);
        set.insert(30..40);
        assert_eq!(set.missing(0..50), vec![0..10, 20..30, 40..50]);
        set.insert(15..35);
        assert_eq!(set.missing(0..50), vec![0..10, 40..50]);
        set.insert(0..10);
        set.insert(40..41);
        assert_eq!(set.missing(0..50), vec![41..50]);
        assert!(set.missing(5..41).is_empty());
        assert_eq!(set.missing(5..42), vec![41..42]);
        set.insert(45..45);
        assert_eq!(set.missing(0..41), Vec::<Range<u64>>::new());
    }
}
