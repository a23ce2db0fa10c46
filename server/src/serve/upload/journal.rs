//! A small on-disk record of open upload sessions, so a restarted server
//! resumes them (or cleans up after them) instead of leaving staging files.
//!
//! `ROOT/.diffcopy-sessions/<id>.json` describes a session; `<id>.log`
//! appends one record per accepted block: the index (u64, little endian)
//! then its digest. Records are appended after the block's bytes are
//! written to the staging file; a torn last record is ignored, and a
//! restored session re-hashes its blocks at commit.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::fs::{Dir, FsError, JOURNAL_DIR, Root};

/// What a session was opened with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct SessionRecord {
    /// Session id.
    pub(super) id: String,
    /// Target path.
    pub(super) path: String,
    /// Source size.
    pub(super) size: u64,
    /// Block size.
    pub(super) block_size: u32,
    /// Algorithm name.
    pub(super) hash: String,
    /// The target version the client diffed against.
    pub(super) base_etag: Option<String>,
    /// The `sub` of the token that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) owner: Option<String>,
}

/// A session found on disk at start-up.
#[derive(Debug)]
pub(super) struct Recovered {
    /// How it was opened.
    pub(super) record: SessionRecord,
    /// Accepted blocks: index and digest bytes.
    pub(super) blocks: Vec<(u64, Vec<u8>)>,
    /// When it last changed.
    pub(super) modified: SystemTime,
}

/// The journal directory.
#[derive(Debug)]
pub(super) struct Journal {
    dir: Dir,
}

impl Journal {
    /// Opens (creating) the journal below `root`.
    pub(super) fn open(root: &Root) -> Result<Self, FsError> {
        Ok(Self { dir: root.internal_dir(JOURNAL_DIR)? })
    }

    /// Records a new session; returns its block log.
    pub(super) fn begin(&self, record: &SessionRecord) -> Result<File, FsError> {
        let json = serde_json::to_vec(record).map_err(|e| FsError::Io(std::io::Error::other(e)))?;
        let log = self.dir.create_new(&format!("{}.log", record.id))?;
        let meta = self.dir.create_new(&format!("{}.json", record.id))?;
        meta.write_all_at(&json, 0)?;
        Ok(log)
    }

    /// Forgets session `id`.
    pub(super) fn end(&self, id: &str) {
        for name in [format!("{id}.json"), format!("{id}.log")] {
            if let Err(e) = self.dir.remove(&name) {
                tracing::warn!("could not remove journal entry {name}: {e}");
            }
        }
    }

    /// Opens the block log of a recovered session for appending.
    pub(super) fn reopen_log(&self, id: &str) -> Result<File, FsError> {
        self.dir.open_existing(&format!("{id}.log"))
    }

    /// Every session on disk. Unreadable entries are removed.
    pub(super) fn load(&self, digest_len: impl Fn(&str) -> Option<usize>) -> Vec<Recovered> {
        let mut out = Vec::new();
        for name in self.dir.names_starting_with("").unwrap_or_default() {
            let Some(id) = name.strip_suffix(".json") else { continue };
            match self.load_one(id, &digest_len) {
                Some(recovered) => out.push(recovered),
                None => self.end(id),
            }
        }
        out
    }

    fn load_one(&self, id: &str, digest_len: &impl Fn(&str) -> Option<usize>) -> Option<Recovered> {
        let mut json = Vec::new();
        self.dir.open_read(&format!("{id}.json")).ok()??.read_to_end(&mut json).ok()?;
        let record: SessionRecord = serde_json::from_slice(&json).ok()?;
        if record.id != id {
            return None;
        }
        let log = self.dir.open_read(&format!("{id}.log")).ok()??;
        let modified = log.metadata().ok()?.modified().ok()?;
        let mut bytes = Vec::new();
        (&log).read_to_end(&mut bytes).ok()?;
        let record_len = 8 + digest_len(&record.hash)?;
        let blocks = bytes
            .chunks_exact(record_len)
            .map(|r| (u64::from_le_bytes(r[..8].try_into().unwrap_or_default()), r[8..].to_vec()))
            .collect();
        Some(Recovered { record, blocks, modified })
    }
}
