//! How a new version becomes the parts of one multipart upload: every
//! stretch of 5 MiB or more that already sits in one object of the store
//! (the old version, or literal data the client sent) becomes a copy part,
//! done inside the store (`UploadPartCopy`); the rest is uploaded, each
//! short run padded with the bytes that follow it up to the part minimum,
//! since S3 takes no part under 5 MiB but the last.

use std::ops::Range;

/// A stretch of the new file: `len` bytes of object `source` from `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Piece {
    pub(crate) source: usize,
    pub(crate) at: u64,
    pub(crate) len: u64,
}

impl Piece {
    fn split(self, n: u64) -> (Self, Self) {
        (Self { len: n, ..self }, Self { at: self.at + n, len: self.len - n, ..self })
    }

    pub(crate) fn range(&self) -> Range<u64> {
        self.at..self.at + self.len
    }
}

/// One part of the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// A range of one object, copied inside the store.
    Copy(Piece),
    /// Bytes read from these pieces and uploaded.
    Upload(Vec<Piece>),
}

impl Part {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::Copy(piece) => piece.len,
            Self::Upload(pieces) => pieces.iter().map(|p| p.len).sum(),
        }
    }
}

/// The smallest part (but the last) for a file of `size` bytes: 5 MiB, or
/// more where 10,000 parts would not hold the file.
pub(super) fn min_part(size: u64) -> u64 {
    crate::s3::MIN_PART.max(size.div_ceil(crate::s3::MAX_PARTS - 1))
}

/// Joins neighbours that continue each other in the same object.
fn merged(pieces: &[Piece]) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    for &p in pieces.iter().filter(|p| p.len > 0) {
        match out.last_mut() {
            Some(last) if last.source == p.source && last.at + last.len == p.at => last.len += p.len,
            _ => out.push(p),
        }
    }
    out
}

/// The parts of the file `pieces` make, in order: copy parts of at least
/// `min` and at most `max` bytes, upload parts of `min` to `3 * min` (the
/// last of either kind may be shorter).
pub(super) fn plan_parts(pieces: &[Piece], min: u64, max: u64) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut pending: Vec<Piece> = Vec::new();
    let mut pending_len = 0u64;
    let pieces = merged(pieces);
    let last = pieces.len().saturating_sub(1);
    for (i, mut piece) in pieces.into_iter().enumerate() {
        // Whether this piece (after padding the short run ahead with its
        // first bytes) is copied: it must stay at least `min` long, but for
        // the last part. A short piece is uploaded, unless it is the last
        // and nothing short waits before it.
        let pad = min - pending_len;
        let copied = if pending_len == 0 {
            piece.len >= min || (i == last && !parts.is_empty())
        } else {
            piece.len >= min && (piece.len - pad >= min || i == last)
        };
        if !copied {
            pending.push(piece);
            pending_len += piece.len;
            if pending_len >= min {
                parts.push(Part::Upload(std::mem::take(&mut pending)));
                pending_len = 0;
            }
            continue;
        }
        if pending_len > 0 {
            let (head, rest) = piece.split(pad);
            pending.push(head);
            parts.push(Part::Upload(std::mem::take(&mut pending)));
            pending_len = 0;
            piece = rest;
        }
        // Long copies in equal parts of at most `max`.
        let count = piece.len.div_ceil(max);
        let each = piece.len.div_ceil(count);
        while piece.len > each {
            let (head, rest) = piece.split(each);
            parts.push(Part::Copy(head));
            piece = rest;
        }
        parts.push(Part::Copy(piece));
    }
    if !pending.is_empty() {
        parts.push(Part::Upload(pending));
    }
    parts
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIN: u64 = 100;
    const MAX: u64 = 1000;

    fn flatten(parts: &[Part]) -> Vec<Piece> {
        let pieces: Vec<Piece> = parts
            .iter()
            .flat_map(|p| match p {
                Part::Copy(piece) => vec![*piece],
                Part::Upload(pieces) => pieces.clone(),
            })
            .collect();
        merged(&pieces)
    }

    #[test]
    fn a_short_edit_is_padded_from_what_follows() {
        let pieces = [
            Piece { source: 0, at: 0, len: 500 },
            Piece { source: 1, at: 0, len: 4 },
            Piece { source: 0, at: 504, len: 496 },
        ];
        let parts = plan_parts(&pieces, MIN, MAX);
        assert_eq!(
            parts,
            [
                Part::Copy(Piece { source: 0, at: 0, len: 500 }),
                Part::Upload(vec![Piece { source: 1, at: 0, len: 4 }, Piece { source: 0, at: 504, len: 96 }]),
                Part::Copy(Piece { source: 0, at: 600, len: 400 }),
            ]
        );
    }

    #[test]
    fn a_short_tail_is_copied_as_the_last_part() {
        let pieces = [Piece { source: 1, at: 0, len: 4 }, Piece { source: 0, at: 4, len: 150 }];
        let parts = plan_parts(&pieces, MIN, MAX);
        assert_eq!(
            parts,
            [
                Part::Upload(vec![Piece { source: 1, at: 0, len: 4 }, Piece { source: 0, at: 4, len: 96 }]),
                Part::Copy(Piece { source: 0, at: 100, len: 54 }),
            ]
        );
    }

    #[test]
    fn a_small_file_is_one_upload_and_a_large_copy_is_split() {
        assert_eq!(plan_parts(&[Piece { source: 0, at: 0, len: 7 }], MIN, MAX).len(), 1);
        assert_eq!(plan_parts(&[], MIN, MAX), []);
        let parts = plan_parts(&[Piece { source: 0, at: 0, len: 2500 }], MIN, MAX);
        assert_eq!(parts.iter().map(Part::len).collect::<Vec<_>>(), [834, 834, 832]);
    }

    #[test]
    fn the_part_minimum_keeps_10000_parts_enough() {
        assert_eq!(min_part(1 << 30), 5 << 20);
        let huge = 5u64 << 40;
        assert!(huge.div_ceil(min_part(huge)) < 10_000);
    }

    fn pieces() -> impl Strategy<Value = Vec<Piece>> {
        prop::collection::vec((0usize..3, 0u64..2000, prop_oneof![0u64..20, 0u64..300, 0u64..3000]), 0..30)
            .prop_map(|v| v.into_iter().map(|(source, at, len)| Piece { source, at, len }).collect())
    }

    proptest! {
        #[test]
        fn parts_rebuild_the_file_within_s3_limits(pieces in pieces()) {
            let parts = plan_parts(&pieces, MIN, MAX);
            // The same bytes, in the same order.
            prop_assert_eq!(flatten(&parts), merged(&pieces));
            for (i, part) in parts.iter().enumerate() {
                if i + 1 < parts.len() {
                    prop_assert!(part.len() >= MIN, "part {} of {} is {} bytes", i, parts.len(), part.len());
                }
                match part {
                    Part::Copy(p) => prop_assert!(p.len <= MAX && (p.len >= MIN || i + 1 == parts.len())),
                    Part::Upload(_) => prop_assert!(part.len() < 3 * MIN),
                }
            }
            // What is uploaded is the short stretches plus at most one
            // minimum of padding per upload part.
            let short: u64 = merged(&pieces).iter().filter(|p| p.len < MIN).map(|p| p.len).sum();
            let uploads = parts.iter().filter(|p| matches!(p, Part::Upload(_))).count() as u64;
            let uploaded: u64 = parts.iter().filter(|p| matches!(p, Part::Upload(_))).map(Part::len).sum();
            prop_assert!(uploaded <= short + uploads * 2 * MIN);
        }
    }
}
