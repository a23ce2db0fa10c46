//! A redo journal's entry: how a new version written in place is named
//! before it is applied, on both sides. The server's commit in place
//! (`serve/commit/journal.rs`) and the client's rebuild of a download or
//! local copy (`client/rebuild.rs`) each write one beside the target, make
//! it durable, and then apply it; each replays a committed one it finds
//! after a crash. This module holds what they share: the entry's encoding,
//! the checksums of the staged bytes it names, and applying it.
//!
//! An entry names the target, the staging file beside it that holds the
//! new bytes at their own offsets, the new size, and each staged range with
//! the XXH3 of its bytes; a checksum of all that ends it, so a torn or
//! corrupted entry is refused.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use diffcopy_core::delta::piece_hash;
use rustix::fs::FallocateFlags;
use rustix::io::Errno;

use super::copy_range;

const MAGIC: &[u8; 4] = b"DCJ1";
/// The seed of the journal's checksums (fixed: they guard against torn and
/// corrupted bytes, not against an adversary).
const SEED: u64 = 0x6469_6666_636f_7079;
/// The most bytes one journal range covers (each has its own checksum, read
/// in one piece).
const RANGE_PIECE: u64 = 4 << 20;

/// A journal's contents.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The target, as the side that wrote the entry names it.
    pub(crate) path: String,
    /// The staging file's name, in the target's directory.
    pub(crate) staging: String,
    /// The new version's size.
    pub(crate) size: u64,
    /// Each range and the checksum of its bytes.
    pub(crate) ranges: Vec<(Range<u64>, u64)>,
}

impl Entry {
    /// The entry naming `staged` (sorted ranges of `staging_file`, holding
    /// the new bytes at their own offsets), with each range's checksum read
    /// from the file.
    pub(crate) fn of(
        path: String,
        staging: String,
        size: u64,
        staging_file: &File,
        staged: &[Range<u64>],
    ) -> io::Result<Self> {
        let mut buf = Vec::new();
        let mut ranges = Vec::new();
        for range in staged {
            for piece in pieces(range.clone()) {
                let sum = checksum(staging_file, &piece, &mut buf)?;
                ranges.push((piece, sum));
            }
        }
        Ok(Self { path, staging, size, ranges })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 24 * self.ranges.len());
        out.extend_from_slice(MAGIC);
        for text in [&self.path, &self.staging] {
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.ranges.len() as u32).to_le_bytes());
        for (range, sum) in &self.ranges {
            out.extend_from_slice(&range.start.to_le_bytes());
            out.extend_from_slice(&(range.end - range.start).to_le_bytes());
            out.extend_from_slice(&sum.to_le_bytes());
        }
        let sum = piece_hash(SEED, &out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// The entry in `bytes`; `None` if they are torn, corrupted or not one.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
        if piece_hash(SEED, body).to_le_bytes() != sum || !body.starts_with(MAGIC) {
            return None;
        }
        let mut r = Cursor(&body[4..]);
        let (path, staging) = (r.text()?, r.text()?);
        let size = r.u64()?;
        let count = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        let mut ranges = Vec::new();
        for _ in 0..count {
            let (start, len, sum) = (r.u64()?, r.u64()?, r.u64()?);
            ranges.push((start..start.checked_add(len)?, sum));
        }
        r.0.is_empty().then_some(Self { path, staging, size, ranges })
    }

    /// Whether `staging` still holds the bytes the entry names (before a
    /// replay: a staging file that lost them must not be applied).
    pub(crate) fn staged_intact(&self, staging: &File) -> io::Result<bool> {
        let mut buf = Vec::new();
        for (range, sum) in &self.ranges {
            if checksum(staging, range, &mut buf)? != *sum {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Applies the entry: each range copied from `staging` into `target`
    /// (`each` called after every one), the target cut to the new size and
    /// fsynced. Applying twice is harmless.
    pub(crate) fn apply(&self, staging: &File, target: &File, mut each: impl FnMut()) -> io::Result<()> {
        for (range, _) in &self.ranges {
            copy_range(staging, range.start, target, range.start, range.end - range.start)?;
            each();
        }
        target.set_len(self.size)?;
        target.sync_all()
    }
}

/// Before a journal's commit point: allocates `target`'s blocks up to
/// `size` without changing its length (`fallocate` with `KEEP_SIZE`), so
/// that applying the journal cannot run out of space. A file system that
/// cannot reserve is let through.
pub(crate) fn reserve(target: &File, size: u64) -> io::Result<()> {
    if size == 0 {
        return Ok(());
    }
    match rustix::fs::fallocate(target, FallocateFlags::KEEP_SIZE, 0, size) {
        Ok(()) | Err(Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reads `buf.len()` bytes at `offset` of a new version before it is
/// applied: from `staging` within the sorted ranges `staged`, from `old`
/// (zeros where there is none) elsewhere.
pub(crate) fn read_assembled(
    staged: &[Range<u64>],
    staging: &File,
    old: Option<&File>,
    offset: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    let end = offset + buf.len() as u64;
    let mut at = offset;
    let mut i = staged.partition_point(|r| r.end <= offset);
    while at < end {
        let (from_staging, until) = match staged.get(i) {
            Some(r) if r.start <= at => (true, r.end.min(end)),
            Some(r) => (false, r.start.min(end)),
            None => (false, end),
        };
        let part = &mut buf[(at - offset) as usize..(until - offset) as usize];
        match (old, from_staging) {
            (_, true) => staging.read_exact_at(part, at)?,
            (Some(old), false) => old.read_exact_at(part, at)?,
            (None, false) => part.fill(0),
        }
        at = until;
        if from_staging {
            i += 1;
        }
    }
    Ok(())
}

/// The unread rest of a journal.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().ok()?);
        String::from_utf8(self.take(usize::from(len))?.to_vec()).ok()
    }
}

/// `range` in pieces of at most [`RANGE_PIECE`] bytes.
fn pieces(range: Range<u64>) -> impl Iterator<Item = Range<u64>> {
    (range.start..range.end).step_by(RANGE_PIECE as usize).map(move |s| s..(s + RANGE_PIECE).min(range.end))
}

/// The checksum of `range` of `file`.
fn checksum(file: &File, range: &Range<u64>, buf: &mut Vec<u8>) -> io::Result<u64> {
    buf.resize((range.end - range.start) as usize, 0);
    file.read_exact_at(buf, range.start)?;
    Ok(piece_hash(SEED, buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_a_torn_one_is_refused() {
        let entry = Entry {
            path: "a/b.bin".into(),
            staging: ".diffcopy-x.part".into(),
            size: 12345,
            ranges: vec![(0..10, 7), (4096..8192, 9)],
        };
        let bytes = entry.encode();
        assert_eq!(Entry::decode(&bytes), Some(entry));
        for len in 0..bytes.len() {
            assert_eq!(Entry::decode(&bytes[..len]), None, "len {len}");
        }
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert_eq!(Entry::decode(&flipped), None);
    }

    #[test]
    fn long_ranges_are_checked_in_pieces() {
        let got: Vec<_> = pieces(10..(2 * RANGE_PIECE + 20)).collect();
        assert_eq!(
            got,
            [
                10..RANGE_PIECE + 10,
                RANGE_PIECE + 10..2 * RANGE_PIECE + 10,
                2 * RANGE_PIECE + 10..2 * RANGE_PIECE + 20
            ]
        );
        assert_eq!(pieces(5..5).count(), 0);
    }
}
