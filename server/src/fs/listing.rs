//! The files beneath the root whose paths start with a prefix, in the byte
//! order of their paths, a page at a time: what `GET /api/v2/list` serves
//! from a directory.
//!
//! The walk is depth first with each directory's names sorted, a directory
//! keyed as its name and a `/`: that order is the byte order of the whole
//! paths (`a-b` before `a/x`, since `-` < `/`), the order a bucket lists in.
//! A page resumes after the last path of the one before by skipping every
//! directory whose paths all come before it, so a page costs the
//! directories on its way, never the tree. Only regular files are listed:
//! symlinks (followed by no listing), devices, FIFOs and sockets are not,
//! nor the server's own names (`.diffcopy-…`), nor names that are not UTF-8.

use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType, StatxFlags};

use crate::fs::{FileVersion, FsError, RESERVED_PREFIX, Root};

/// A regular file found by a listing.
#[derive(Clone, Debug)]
pub(crate) struct FoundFile {
    /// Its path below the root.
    pub(crate) path: String,
    /// Its version now.
    pub(crate) version: FileVersion,
}

/// One directory on the walk's way: its path (empty or ending in `/`) and
/// the names still to visit, the next last.
struct Level {
    dir: OwnedFd,
    path: String,
    pending: Vec<(String, bool)>,
}

impl Root {
    /// Up to `limit` files whose paths start with `prefix` and sort after
    /// `after`, in path order, and whether more may follow.
    pub(crate) fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<FoundFile>, bool), FsError> {
        let (folder, first) = split_prefix(prefix);
        let dir = match self.open_dir(folder.trim_end_matches('/')) {
            Ok(dir) => dir,
            Err(FsError::NotFound | FsError::NotAFile) => return Ok((Vec::new(), false)),
            Err(e) => return Err(e),
        };
        let mut top = read_level(dir, folder, after)?;
        top.pending.retain(|(name, _)| name.starts_with(first));
        let mut stack = vec![top];
        let mut found = Vec::new();
        while let Some(level) = stack.last_mut() {
            let Some((name, is_dir)) = level.pending.pop() else {
                stack.pop();
                continue;
            };
            let path = format!("{}{name}", level.path);
            if is_dir {
                let opened = rustix::fs::openat(
                    &level.dir,
                    name.as_str(),
                    rustix::fs::OFlags::DIRECTORY
                        | rustix::fs::OFlags::RDONLY
                        | rustix::fs::OFlags::NOFOLLOW
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                );
                // Gone, or replaced by something else, since it was read.
                let Ok(dir) = opened else { continue };
                let next = read_level(dir, format!("{path}/"), after)?;
                stack.push(next);
                continue;
            }
            let Ok(stat) = rustix::fs::statx(
                &level.dir,
                name.as_str(),
                AtFlags::SYMLINK_NOFOLLOW,
                StatxFlags::BASIC_STATS,
            ) else {
                continue;
            };
            if FileType::from_raw_mode(u32::from(stat.stx_mode)) != FileType::RegularFile {
                continue;
            }
            if found.len() == limit {
                return Ok((found, true));
            }
            found.push(FoundFile { path, version: version_of(&stat) });
        }
        Ok((found, false))
    }
}

/// A directory's names (`path` is its own, empty or ending in `/`) that are
/// regular files or directories and may hold paths after `after`, sorted
/// so that the next in path order is last.
fn read_level(dir: OwnedFd, path: String, after: Option<&str>) -> Result<Level, FsError> {
    let mut pending = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else { continue };
        if name == "." || name == ".." || name.starts_with(RESERVED_PREFIX) {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_or(FileType::Unknown, |s| FileType::from_raw_mode(s.st_mode)),
            kind => kind,
        };
        let is_dir = match kind {
            FileType::Directory => true,
            FileType::RegularFile => false,
            _ => continue,
        };
        if !listed_after(&path, name, is_dir, after) {
            continue;
        }
        pending.push((name.to_owned(), is_dir));
    }
    sort_for_popping(&mut pending);
    Ok(Level { dir, path, pending })
}

/// A listing's prefix as the folder its walk starts in (empty or ending in
/// `/`) and what the names there must start with: `a/b/` is `a/b/` and
/// ``, `a/b` is `a/` and `b`. Both stores' listings start so.
pub(crate) fn split_prefix(prefix: &str) -> (String, &str) {
    match prefix.rsplit_once('/') {
        Some((folder, first)) => (format!("{folder}/"), first),
        None => (String::new(), prefix),
    }
}

/// Whether the name `name` in the folder `folder` (empty or ending in
/// `/`) may hold paths after `after`, the last path of the page before:
/// a file after it, or a directory not all of whose paths come before it.
/// Both stores' listings resume so.
pub(crate) fn listed_after(folder: &str, name: &str, is_dir: bool, after: Option<&str>) -> bool {
    let Some(after) = after else { return true };
    let full = format!("{folder}{name}{}", if is_dir { "/" } else { "" });
    if is_dir { *after <= *full || after.starts_with(&full) } else { *full > *after }
}

/// Sorts a folder's names (`is_dir` set for folders) so that the next in
/// the listings' order is last: a folder sorts as its name and a `/`,
/// which makes the walk's order the byte order of whole paths.
pub(crate) fn sort_for_popping(names: &mut [(String, bool)]) {
    let key = |(name, is_dir): &(String, bool)| {
        name.as_bytes().iter().copied().chain(is_dir.then_some(b'/')).collect::<Vec<u8>>()
    };
    names.sort_unstable_by_key(|entry| std::cmp::Reverse(key(entry)));
}

fn version_of(stat: &rustix::fs::Statx) -> FileVersion {
    let ns = |t: rustix::fs::StatxTimestamp| i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    FileVersion {
        dev: rustix::fs::makedev(stat.stx_dev_major, stat.stx_dev_minor),
        ino: stat.stx_ino,
        size: stat.stx_size,
        mtime_ns: ns(stat.stx_mtime),
        ctime_ns: ns(stat.stx_ctime),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn tree(name: &str, files: &[&str]) -> (PathBuf, Root) {
        let base = std::env::temp_dir().join(format!("diffcopy-listing-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for file in files {
            let path = base.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file.as_bytes()).unwrap();
        }
        let root = Root::open(&base).unwrap();
        (base, root)
    }

    fn paths(found: &[FoundFile]) -> Vec<&str> {
        found.iter().map(|f| f.path.as_str()).collect()
    }

    /// Every page size gives the same paths, in byte order, each once.
    #[test]
    fn pages_walk_the_tree_in_path_order() {
        let files = ["a-b", "a/x", "a/y/z", "a0", "b/c/d/e", "b/c.txt", "é/ü", "z", "a/.diffcopy-staged"];
        let (base, root) = tree("order", &files);
        std::fs::create_dir_all(base.join("empty/dir")).unwrap();
        std::os::unix::fs::symlink("z", base.join("link")).unwrap();
        let mut expected: Vec<&str> = files.iter().copied().filter(|f| !f.contains(".diffcopy-")).collect();
        expected.sort_unstable();
        for limit in 1..=expected.len() + 1 {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (page, more) = root.list("", after.as_deref(), limit).unwrap();
                assert!(page.len() <= limit);
                all.extend(page.iter().map(|f| f.path.clone()));
                match (more, page.last()) {
                    (true, Some(last)) => after = Some(last.path.clone()),
                    _ => break,
                }
            }
            assert_eq!(all, expected, "limit {limit}");
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_prefix_splits_at_its_last_slash() {
        assert_eq!(split_prefix(""), (String::new(), ""));
        assert_eq!(split_prefix("ab"), (String::new(), "ab"));
        assert_eq!(split_prefix("a/b/"), ("a/b/".to_owned(), ""));
        assert_eq!(split_prefix("a/b"), ("a/".to_owned(), "b"));
    }

    #[test]
    fn a_prefix_is_a_string_prefix_of_the_paths() {
        let (base, root) = tree("prefix", &["a/b/1", "a/b/2", "a/bc", "a/c", "ab"]);
        let list = |prefix| root.list(prefix, None, 100).unwrap().0;
        assert_eq!(paths(&list("a/b/")), ["a/b/1", "a/b/2"]);
        assert_eq!(paths(&list("a/b")), ["a/b/1", "a/b/2", "a/bc"]);
        assert_eq!(paths(&list("a")), ["a/b/1", "a/b/2", "a/bc", "a/c", "ab"]);
        assert!(list("nothing/here/").is_empty());
        assert!(list("ab/").is_empty());
        let (one, more) = root.list("a/b/", Some("a/b/1"), 100).unwrap();
        assert_eq!((paths(&one), more), (vec!["a/b/2"], false));
        let found = &list("ab")[0];
        assert_eq!(found.version.size, 2);
        let meta = std::fs::metadata(base.join("ab")).unwrap();
        assert_eq!(found.version, FileVersion::of(&std::fs::File::open(base.join("ab")).unwrap()).unwrap());
        assert_eq!(found.version.size, meta.len());
        std::fs::remove_dir_all(base).unwrap();
    }
}
