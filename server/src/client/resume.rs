//! Remembering an upload session so an interrupted upload resumes.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use diffcopy_core::{HashAlgorithm, hash_block};

use super::error::ClientError;
use super::options::absolute;

/// Where the session id of one upload (source file version, server URL,
/// block size, algorithm) is kept.
#[derive(Debug)]
pub(super) struct ResumeState {
    file: Option<PathBuf>,
}

impl ResumeState {
    /// The state for uploading `source` to `url`; `identity` tells this
    /// upload from others of the same file (its signature's digest for API
    /// v1, the protocol and block size for v2). Kept in `$DIFFCOPY_STATE_DIR`,
    /// else `$XDG_STATE_HOME/diffcopy`, else `~/.local/state/diffcopy`;
    /// without any of those, uploads do not resume.
    pub(super) fn for_upload(source: &Path, url: &str, identity: &str) -> Result<Self, ClientError> {
        let dir = std::env::var_os("DIFFCOPY_STATE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("diffcopy")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/diffcopy")));
        let mtime = std::fs::metadata(source)
            .and_then(|m| m.modified())
            .map(|t| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos())
            .unwrap_or(0);
        let size = std::fs::metadata(source).map(|m| m.len()).unwrap_or(0);
        let key = format!("{}\n{url}\n{size}\n{mtime}\n{identity}", absolute(source).display());
        let name = hash_block(HashAlgorithm::Sha1, key.as_bytes()).to_string();
        Ok(Self { file: dir.map(|d| d.join(format!("upload-{name}"))) })
    }

    /// The remembered session id, if any.
    pub(crate) fn load(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.file.as_ref()?).ok()?;
        let id = text.trim();
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
    }

    /// Remembers `id` (best effort: resuming is a convenience).
    pub(super) fn save(&self, id: &str) {
        if let Some(file) = &self.file {
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(file, id);
        }
    }

    /// Forgets the session after a commit.
    pub(super) fn clear(&self) {
        if let Some(file) = &self.file {
            let _ = std::fs::remove_file(file);
        }
    }
}
