//! A file's version: what its ETag and the signature cache key on.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;

/// Identity and change markers of a file at one moment. Any write changes
/// the size, the mtime or the ctime (which cannot be set back by a client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileVersion {
    /// Device.
    pub(crate) dev: u64,
    /// Inode.
    pub(crate) ino: u64,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub(crate) mtime_ns: i128,
    /// Status-change time, nanoseconds since the epoch.
    pub(crate) ctime_ns: i128,
}

impl FileVersion {
    /// The version of an open file.
    pub(crate) fn of(file: &File) -> io::Result<Self> {
        let m = file.metadata()?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })
    }

    /// The modification time in whole milliseconds since the epoch, as
    /// listings show it (rounded down).
    pub(crate) fn mtime_ms(&self) -> i64 {
        i64::try_from(self.mtime_ns.div_euclid(1_000_000)).unwrap_or(i64::MAX)
    }

    /// Whether the bytes can differ from `other`'s: same file, size and
    /// mtime. Unlike equality this ignores the ctime, which also moves when
    /// the file is merely unlinked or renamed over (its bytes stay as they
    /// were for whoever still has it open).
    pub(crate) fn same_content(&self, other: &Self) -> bool {
        (self.dev, self.ino, self.size, self.mtime_ns) == (other.dev, other.ino, other.size, other.mtime_ns)
    }

    /// The strong ETag, quoted: size, mtime, inode and ctime in hex. The
    /// ctime catches a same-size write whose mtime was set back.
    pub(crate) fn etag(&self) -> String {
        format!("\"{:x}-{:x}-{:x}-{:x}\"", self.size, self.mtime_ns, self.ino, self.ctime_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_over_an_open_file_keeps_its_content_version() {
        let dir = std::env::temp_dir().join(format!("diffcopy-version-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"old").unwrap();
        let old = File::open(dir.join("f")).unwrap();
        let before = FileVersion::of(&old).unwrap();
        std::fs::write(dir.join("g"), b"new").unwrap();
        std::fs::rename(dir.join("g"), dir.join("f")).unwrap();
        let after = FileVersion::of(&old).unwrap();
        assert!(after.same_content(&before), "the bytes of the open file did not change");
        let replaced = FileVersion::of(&File::open(dir.join("f")).unwrap()).unwrap();
        assert!(!replaced.same_content(&before));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
