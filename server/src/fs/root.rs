//! The served directory, opened once; every file operation stays beneath it.
//!
//! Opens go through `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`
//! relative to the root's directory descriptor, so neither `..` nor a symlink
//! (absolute or relative) nor a `/proc` magic link can reach outside, whatever
//! the path's text. Creating, renaming and removing happen with `*at` calls on
//! a parent directory opened the same way, with single-segment names.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::fs::RelPath;

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// Why a file operation beneath the root failed.
#[derive(Debug)]
pub(crate) enum FsError {
    /// The file or a directory on its path does not exist.
    NotFound,
    /// Resolving the path would leave the root (through a symlink).
    OutsideRoot,
    /// The path names a directory or another non-regular file.
    NotAFile,
    /// Anything else.
    Io(io::Error),
}

impl std::fmt::Display for FsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such file or directory"),
            Self::OutsideRoot => f.write_str("the path resolves outside the served root"),
            Self::NotAFile => f.write_str("not a regular file"),
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Errno> for FsError {
    fn from(errno: Errno) -> Self {
        match errno {
            Errno::NOENT | Errno::NOTDIR => Self::NotFound,
            Errno::XDEV | Errno::LOOP => Self::OutsideRoot,
            Errno::ISDIR => Self::NotAFile,
            other => Self::Io(other.into()),
        }
    }
}

impl From<io::Error> for FsError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

/// The root directory every path is resolved beneath.
#[derive(Debug)]
pub(crate) struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

/// A directory beneath the root, for `*at` operations on single names.
#[derive(Debug)]
pub(crate) struct Dir(OwnedFd);

impl Root {
    /// Opens (creating it if needed) the directory to serve.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path)?;
        let dir =
            rustix::fs::open(path, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        // Fail at start-up, not on the first request, where openat2 is missing.
        rustix::fs::openat2(
            &dir,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| io::Error::other(format!("openat2 is needed (Linux 5.6 or later): {e}")))?;
        Ok(Self { dir, path: path.canonicalize()? })
    }

    /// The root's path on disk, for logs.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn openat(&self, path: &str, flags: OFlags, mode: Mode) -> Result<OwnedFd, FsError> {
        Ok(rustix::fs::openat2(&self.dir, path, flags | OFlags::CLOEXEC, mode, RESOLVE)?)
    }

    /// Opens a regular file for reading.
    pub(crate) fn open_read(&self, path: &RelPath) -> Result<File, FsError> {
        let fd = self.openat(path.as_str(), OFlags::RDONLY, Mode::empty())?;
        regular(fd)
    }

    /// Opens a regular file for reading and writing, creating it (mode 0644)
    /// when `create` is set. Parent directories must exist.
    pub(crate) fn open_write(&self, path: &RelPath, create: bool) -> Result<File, FsError> {
        // openat2 refuses a mode without O_CREAT.
        let (flags, mode) = if create {
            (OFlags::RDWR | OFlags::CREATE, Mode::from_raw_mode(0o644))
        } else {
            (OFlags::RDWR, Mode::empty())
        };
        let fd = self.openat(path.as_str(), flags, mode)?;
        regular(fd)
    }

    /// Makes everything written to the root's file system durable: one
    /// `syncfs`, for many files at once.
    pub(crate) fn sync_fs(&self) -> Result<(), FsError> {
        Ok(rustix::fs::syncfs(&self.dir)?)
    }

    /// The directory `path` beneath the root (`""`: the root itself), for
    /// a listing; not created.
    pub(super) fn open_dir(&self, path: &str) -> Result<OwnedFd, FsError> {
        let path = if path.is_empty() { "." } else { path };
        self.openat(path, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
    }

    /// The server's own directory `name` directly below the root (created;
    /// `name` must be one segment, e.g. `.diffcopy-sessions`).
    pub(crate) fn internal_dir(&self, name: &str) -> Result<Dir, FsError> {
        match rustix::fs::mkdirat(&self.dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Dir(self.openat(name, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW, Mode::empty())?))
    }

    /// The directory that holds `path`, created (with its parents) when
    /// `create` is set.
    pub(crate) fn parent_dir(&self, path: &RelPath, create: bool) -> Result<Dir, FsError> {
        let Some(parent) = path.parent() else {
            return Ok(Dir(self.openat(".", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())?));
        };
        let open = |p: &str| self.openat(p, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty());
        match open(parent) {
            Err(FsError::NotFound) if create => {}
            other => return other.map(Dir),
        }
        // Create one segment at a time, each with mkdirat on a directory
        // opened beneath the root: a symlinked segment cannot redirect it.
        let mut dir = open(".")?;
        let mut prefix = String::new();
        for segment in parent.split('/') {
            match rustix::fs::mkdirat(&dir, segment, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(segment);
            dir = open(&prefix)?;
        }
        Ok(Dir(dir))
    }
}

impl Dir {
    /// Creates a new file `name` here (mode 0644); fails if it exists.
    pub(crate) fn create_new(&self, name: &str) -> Result<File, FsError> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        Ok(File::from(rustix::fs::openat(&self.0, name, flags, Mode::from_raw_mode(0o644))?))
    }

    /// Opens the existing regular file `name` here for reading and writing,
    /// not following a symlink.
    pub(crate) fn open_existing(&self, name: &str) -> Result<File, FsError> {
        let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        regular(rustix::fs::openat(&self.0, name, flags, Mode::empty())?)
    }

    /// Opens the regular file `name` here for reading, if it exists,
    /// not following a symlink.
    pub(crate) fn open_read(&self, name: &str) -> Result<Option<File>, FsError> {
        match rustix::fs::openat(
            &self.0,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => regular(fd).map(Some),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Atomically renames `from` over `to`, both names in this directory.
    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<(), FsError> {
        Ok(rustix::fs::renameat(&self.0, from, &self.0, to)?)
    }

    /// Removes the file `name`; a missing file is not an error.
    pub(crate) fn remove(&self, name: &str) -> Result<(), FsError> {
        match rustix::fs::unlinkat(&self.0, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes a rename or creation in this directory durable.
    pub(crate) fn sync(&self) -> Result<(), FsError> {
        Ok(rustix::fs::fsync(&self.0)?)
    }

    /// The names in this directory that start with `prefix`.
    pub(crate) fn names_starting_with(&self, prefix: &str) -> Result<Vec<String>, FsError> {
        let dup = rustix::fs::openat(
            &self.0,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dup)? {
            let entry = entry?;
            if let Ok(name) = entry.file_name().to_str()
                && name.starts_with(prefix)
            {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
}

fn regular(fd: OwnedFd) -> Result<File, FsError> {
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(FsError::NotAFile);
    }
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn temp_root(name: &str) -> (PathBuf, Root) {
        let base = std::env::temp_dir().join(format!("diffcopy-root-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root_path = base.join("root");
        let root = Root::open(&root_path).unwrap();
        (base, root)
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let (base, root) = temp_root("symlinks");
        std::fs::write(base.join("secret"), b"outside").unwrap();
        symlink(base.join("secret"), root.path().join("abs-link")).unwrap();
        symlink("../secret", root.path().join("rel-link")).unwrap();
        symlink(&base, root.path().join("dir-link")).unwrap();
        for name in ["abs-link", "rel-link", "dir-link/secret"] {
            let path = RelPath::parse(name).unwrap();
            assert!(matches!(root.open_read(&path), Err(FsError::OutsideRoot)), "{name}");
            assert!(matches!(root.open_write(&path, true), Err(FsError::OutsideRoot)), "{name}");
        }
        assert!(matches!(
            root.parent_dir(&RelPath::parse("dir-link/new/file").unwrap(), true),
            Err(FsError::OutsideRoot)
        ));
        assert!(!base.join("new").exists());
        assert_eq!(std::fs::read(base.join("secret")).unwrap(), b"outside");
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn symlinks_inside_the_root_work() {
        let (base, root) = temp_root("inside");
        std::fs::write(root.path().join("real"), b"data").unwrap();
        symlink("real", root.path().join("alias")).unwrap();
        let mut text = String::new();
        io::Read::read_to_string(&mut root.open_read(&RelPath::parse("alias").unwrap()).unwrap(), &mut text)
            .unwrap();
        assert_eq!(text, "data");
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn existing_files_open_for_writing_without_create() {
        let (base, root) = temp_root("write");
        let path = RelPath::parse("w.bin").unwrap();
        assert!(matches!(root.open_write(&path, false), Err(FsError::NotFound)));
        root.open_write(&path, true).unwrap();
        root.open_write(&path, false).unwrap();
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn parent_dirs_are_created_and_directories_are_not_files() {
        let (base, root) = temp_root("parents");
        let path = RelPath::parse("a/b/c.bin").unwrap();
        assert!(matches!(root.parent_dir(&path, false), Err(FsError::NotFound)));
        let dir = root.parent_dir(&path, true).unwrap();
        dir.create_new("c.bin").unwrap();
        assert!(root.path().join("a/b/c.bin").is_file());
        assert!(matches!(root.open_read(&RelPath::parse("a/b").unwrap()), Err(FsError::NotAFile)));
        assert!(matches!(root.open_read(&RelPath::parse("a/x").unwrap()), Err(FsError::NotFound)));
        std::fs::remove_dir_all(base).unwrap();
    }
}
