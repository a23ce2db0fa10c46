//! The new version of a local target (a download or a local copy), written
//! one of three ways, chosen per file as the server's `--commit auto`
//! chooses (docs/cli.md, "How a local target is written"):
//!
//! * **clone**, where the file system can (XFS, Btrfs): the staging file
//!   beside the target starts as a clone of it (`FICLONE`: shared extents,
//!   nothing copied); what moved and what is new are written into it, then
//!   fsync and rename over the target. It costs what changed.
//! * **in place**, where it cannot (ext4), at least half of the new version
//!   is the target's bytes at the same offsets, and the target is a regular
//!   file with one link (not a symlink): only the changed
//!   bytes go into a sparse staging file, which `in_place.rs` journals and
//!   writes into the target. The same inode; it costs what changed, twice.
//! * **new file** otherwise: everything copied into the staging file (in
//!   the kernel), then fsync and rename. It costs the whole file.
//!
//! After a crash at any step the target is the old version or the new one
//! (the rename, or the journal's replay by the next run that opens it).

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use diffcopy_core::BlockLayout;

use super::error::ClientError;
use super::in_place::InPlace;
use super::local::Staged;
use crate::fs::journal::read_assembled;
use crate::fs::{DiskWrites, clone_file, copy_range, rebuilt_file_hash};

/// How the new version is written (see the module's docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    Clone,
    InPlace,
    NewFile,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Self::Clone => "clone",
            Self::InPlace => "in_place",
            Self::NewFile => "new_file",
        }
    }
}

/// What writing the new version took.
#[derive(Clone, Copy, Debug)]
pub(super) struct Written {
    /// `clone`, `in_place` or `new_file`.
    pub(super) way: &'static str,
    /// The bytes of file data this process wrote meanwhile, as the kernel
    /// counts them; `None` where it does not say.
    pub(super) disk_bytes: Option<u64>,
}

/// A target being rebuilt.
#[derive(Debug)]
pub(super) struct Rebuild {
    staged: Arc<Staged>,
    existing: Option<Arc<File>>,
    size: u64,
    way: Way,
    /// For [`Way::InPlace`]: the ranges the staging file holds (sorted,
    /// apart); the rest stays as the target has it.
    changed: Vec<Range<u64>>,
    writes: DiskWrites,
}

impl Rebuild {
    /// Starts the new version of `target` (`size` bytes). `existing` is the
    /// current target, if any; each of `copies` puts its bytes at `from`
    /// into the range `to` of the new version (`from == to.start`: kept in
    /// place). The new version's other bytes come by [`Rebuild::write_at`]
    /// and [`Rebuild::copy_from`].
    pub(super) async fn start(
        target: &Path,
        size: u64,
        existing: Option<Arc<File>>,
        copies: Vec<(u64, Range<u64>)>,
    ) -> Result<Self, ClientError> {
        let writes = DiskWrites::of_process();
        let staged = Staged::create(target, size)?;
        let way = match &existing {
            None => Way::NewFile,
            Some(old) if clone_into(&staged, old, size)? => Way::Clone,
            Some(_) => {
                let kept: u64 = copies
                    .iter()
                    .filter(|(from, to)| *from == to.start)
                    .map(|(_, to)| to.end - to.start)
                    .sum();
                if kept >= size - kept && in_place_allowed(target) { Way::InPlace } else { Way::NewFile }
            }
        };
        let changed = if way == Way::InPlace { outside(size, &copies) } else { Vec::new() };
        let rebuild = Self { staged: Arc::new(staged), existing, size, way, changed, writes };
        // A clone or a journal keeps what stays in place where it is.
        let copies = match way {
            Way::NewFile => copies,
            Way::Clone | Way::InPlace => copies.into_iter().filter(|(from, to)| *from != to.start).collect(),
        };
        if let Some(existing) = &rebuild.existing {
            rebuild.copy(existing.clone(), copies, "copying unchanged data").await?;
        }
        Ok(rebuild)
    }

    /// Copies `runs` from `source` (a local file) to the same offsets, in the kernel.
    pub(super) async fn copy_from(
        &self,
        source: &Arc<File>,
        runs: Vec<Range<u64>>,
    ) -> Result<(), ClientError> {
        let copies = runs.into_iter().map(|r| (r.start, r)).collect();
        self.copy(source.clone(), copies, "copying changed blocks").await
    }

    async fn copy(
        &self,
        from: Arc<File>,
        copies: Vec<(u64, Range<u64>)>,
        what: &'static str,
    ) -> Result<(), ClientError> {
        let staged = self.staged.clone();
        tokio::task::spawn_blocking(move || {
            copies
                .iter()
                .try_for_each(|(at, to)| copy_range(&from, *at, &staged.file, to.start, to.end - to.start))
        })
        .await
        .map_err(|e| ClientError::Local(e.to_string()))?
        .map_err(|e| ClientError::io(what, e))
    }

    /// Writes `bytes` at `offset`.
    pub(super) fn write_at(&self, bytes: &[u8], offset: u64) -> Result<(), ClientError> {
        self.staged.write_at(bytes, offset)
    }

    /// The new version's size.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// The file hash of the new version as written so far (protocol v2's,
    /// cut as `layout` says, with `seed`), taking block `i`'s hash from
    /// `known[i]` where it is there: the check before [`Rebuild::finish`].
    pub(super) async fn file_hash(
        &self,
        layout: BlockLayout,
        seed: u64,
        known: Vec<Option<u128>>,
    ) -> Result<u128, ClientError> {
        let (staged, existing, changed, way) =
            (self.staged.clone(), self.existing.clone(), self.changed.clone(), self.way);
        tokio::task::spawn_blocking(move || {
            let read = |offset: u64, buf: &mut [u8]| match way {
                Way::InPlace => read_assembled(&changed, &staged.file, existing.as_deref(), offset, buf),
                Way::Clone | Way::NewFile => staged.file.read_exact_at(buf, offset),
            };
            rebuilt_file_hash(read, layout, seed, &known)
        })
        .await
        .map_err(|e| ClientError::Local(e.to_string()))?
        .map_err(|e| ClientError::io("reading the new version back", e))
    }

    /// Makes the new version durable and the target: renamed over it (a
    /// clone or a new file, with the old one's permission bits), or written
    /// into it behind a journal.
    pub(super) async fn finish(self) -> Result<Written, ClientError> {
        let mut staged = Arc::try_unwrap(self.staged)
            .map_err(|_| ClientError::Local("staged file still in use".into()))?;
        let (way, existing, changed, size) = (self.way, self.existing, self.changed, self.size);
        tokio::task::spawn_blocking(move || match (way, existing) {
            (Way::InPlace, Some(existing)) => {
                // From here the commit in place owns the staging file: a
                // committed journal needs it, even if this process fails.
                staged.disown();
                let commit = InPlace {
                    target: staged.target(),
                    existing: &existing,
                    staging: &staged.file,
                    staging_path: staged.path(),
                    size,
                    staged: &changed,
                };
                commit.commit()
            }
            (_, existing) => {
                if let Some(meta) = existing.as_ref().and_then(|f| f.metadata().ok()) {
                    let _ = staged.file.set_permissions(meta.permissions());
                }
                staged.commit()
            }
        })
        .await
        .map_err(|e| ClientError::Local(e.to_string()))??;
        Ok(Written { way: way.name(), disk_bytes: self.writes.so_far() })
    }
}

/// Makes `staged` a clone of `old` cut to `size`; `false` (nothing done)
/// where the file system cannot clone.
fn clone_into(staged: &Staged, old: &File, size: u64) -> Result<bool, ClientError> {
    let file = &staged.file;
    let failed = |e: std::io::Error| ClientError::io("cloning the target", e);
    file.set_len(0).map_err(failed)?;
    let cloned = clone_file(file, old).map_err(failed)?;
    file.set_len(size).map_err(failed)?;
    Ok(cloned)
}

/// Whether `target` may be written in place: a regular file under a name
/// in UTF-8 (which the journal records), not a symlink (a new file replaces
/// the link, as before, rather than writing where it points) and with no
/// other hard link (whose name would see the change too).
fn in_place_allowed(target: &Path) -> bool {
    let named = target.file_name().and_then(|n| n.to_str()).is_some();
    named && std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_file() && m.nlink() == 1)
}

/// What the same-offset ones among `copies` leave of `0..size`, sorted.
fn outside(size: u64, copies: &[(u64, Range<u64>)]) -> Vec<Range<u64>> {
    let mut kept: Vec<Range<u64>> =
        copies.iter().filter(|(from, to)| *from == to.start).map(|(_, to)| to.clone()).collect();
    kept.sort_by_key(|r| r.start);
    let mut changed = Vec::new();
    let mut at = 0;
    for range in kept {
        if range.start > at {
            changed.push(at..range.start);
        }
        at = at.max(range.end);
    }
    if at < size {
        changed.push(at..size);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_stays_in_place_leaves_the_rest_to_stage() {
        let copies = vec![(0, 0..10), (50, 40..60), (20, 20..30), (30, 30..35)];
        assert_eq!(outside(100, &copies), [10..20, 35..100]);
        assert_eq!(outside(30, &[(0, 0..30)]), Vec::<Range<u64>>::new());
        assert_eq!(outside(0, &[]), Vec::<Range<u64>>::new());
        assert_eq!(outside(1, &[]), [0..1]);
    }
}
