//! Local files: hashing on all cores, and writing a new version beside the
//! target that replaces it atomically.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use diffcopy_core::{HashAlgorithm, Signature, SignatureHeader, hash_block};

use super::error::ClientError;
use super::in_place;
use super::progress::Progress;
use crate::fs::{RESERVED_PREFIX, dir_of, hash_file_blocks, sync_dir};

/// Opens `path` for reading; `None` if it does not exist. A commit in
/// place of it that a crash interrupted is finished first.
pub(crate) fn open_existing(path: &Path) -> Result<Option<File>, ClientError> {
    in_place::recover(path)?;
    match File::open(path) {
        Ok(file) => {
            if !file.metadata().map_err(|e| ClientError::io(path.display(), e))?.is_file() {
                return Err(ClientError::Usage(format!("{} is not a regular file", path.display())));
            }
            Ok(Some(file))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClientError::io(path.display(), e)),
    }
}

/// The signature of an open file, hashed on all cores.
pub(super) async fn sign_file(
    file: Arc<File>,
    algorithm: HashAlgorithm,
    block_size: u32,
    progress: &Progress,
    label: &str,
) -> Result<Signature, ClientError> {
    let size = file.metadata().map_err(|e| ClientError::io(label, e))?.len();
    let header =
        SignatureHeader::new(algorithm, block_size, size).map_err(|e| ClientError::Usage(e.to_string()))?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut rx = hash_file_blocks(file, header.layout(), threads, move |b| hash_block(algorithm, b));
    let mut signature = Signature::new(header);
    signature.reserve_digests();
    let bar = progress.bar(label, size);
    let layout = header.layout();
    while let Some(digest) = rx.recv().await {
        let digest = digest.map_err(|e| ClientError::io(format!("reading {label}"), e))?;
        let index = signature.digest_count();
        signature.push_digest(digest.as_bytes()).map_err(|e| ClientError::Local(e.to_string()))?;
        bar.inc(u64::from(layout.block_len(index).unwrap_or(0)));
    }
    bar.finish_and_clear();
    if !signature.is_complete() {
        return Err(ClientError::Local(format!("{label} changed while it was hashed")));
    }
    Ok(signature)
}

/// A new file beside the target, renamed over it by [`Staged::commit`] and
/// removed if dropped before that.
#[derive(Debug)]
pub(crate) struct Staged {
    /// The file being written.
    pub(crate) file: File,
    path: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Staged {
    /// Creates `.diffcopy-<random>.part` beside `target`, `size` bytes long.
    pub(crate) fn create(target: &Path, size: u64) -> Result<Self, ClientError> {
        let dir = dir_of(target);
        let random = crate::random::random_hex(8).map_err(|e| ClientError::io("reading /dev/urandom", e))?;
        let name = format!("{RESERVED_PREFIX}{random}.part");
        let path = dir.join(name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| ClientError::io(format!("creating {}", path.display()), e))?;
        file.set_len(size).map_err(|e| ClientError::io(path.display(), e))?;
        Ok(Self { file, path, target: target.to_path_buf(), done: false })
    }

    /// Writes `bytes` at `offset`.
    pub(super) fn write_at(&self, bytes: &[u8], offset: u64) -> Result<(), ClientError> {
        self.file.write_all_at(bytes, offset).map_err(|e| ClientError::io(self.path.display(), e))
    }

    /// The staging file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The target it is to replace.
    pub(super) fn target(&self) -> &Path {
        &self.target
    }

    /// Leaves the staging file in place when this is dropped.
    pub(super) fn disown(&mut self) {
        self.done = true;
    }

    /// fsync, rename over the target, fsync the directory.
    pub(crate) fn commit(mut self) -> Result<(), ClientError> {
        self.file.sync_all().map_err(|e| ClientError::io(self.path.display(), e))?;
        std::fs::rename(&self.path, &self.target)
            .map_err(|e| ClientError::io(format!("renaming over {}", self.target.display()), e))?;
        self.done = true;
        let _ = sync_dir(&dir_of(&self.target));
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
