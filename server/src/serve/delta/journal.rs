//! The on-disk record of protocol v2 upload sessions, beside API v1's in
//! `ROOT/.diffcopy-sessions/`, so a restarted server resumes a session whose
//! search had ended: `<id>.v2` describes it (JSON), `<id>.v2plan` holds the
//! plan once the search is over, `<id>.v2data` logs each literal range
//! written to the staging file (offset and length, u64 little endian). A torn
//! last record is ignored; the file hash checks everything at commit. A
//! session still searching is dropped at restart: its client starts over.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::fs::{Dir, FsError, JOURNAL_DIR, Root};

/// What a session was opened with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct DeltaRecord {
    pub(super) id: String,
    pub(super) path: String,
    pub(super) size: u64,
    pub(super) block_size: u32,
    /// The seed, as 16 hex digits.
    pub(super) seed: String,
    /// The ETag the client said it compared against, if any.
    pub(super) base_etag: Option<String>,
    /// The target's ETag when the session opened (`None`: it did not exist).
    pub(super) base_version: Option<String>,
    /// The new file's hash, as 32 hex digits, once the client sent it.
    #[serde(default)]
    pub(super) file_hash: Option<String>,
    /// The `sub` of the token that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) owner: Option<String>,
}

/// A session found on disk at start-up.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) record: DeltaRecord,
    /// The encoded plan.
    pub(super) plan: Vec<u8>,
    /// Literal ranges written.
    pub(super) received: Vec<Range<u64>>,
    /// When it last changed.
    pub(super) modified: SystemTime,
}

/// The journal's directory.
#[derive(Debug)]
pub(super) struct DeltaJournal {
    dir: Dir,
}

fn names(id: &str) -> [String; 3] {
    [format!("{id}.v2"), format!("{id}.v2plan"), format!("{id}.v2data")]
}

impl DeltaJournal {
    pub(super) fn open(root: &Root) -> Result<Self, FsError> {
        Ok(Self { dir: root.internal_dir(JOURNAL_DIR)? })
    }

    /// Writes (or rewrites) a session's record.
    pub(super) fn record(&self, record: &DeltaRecord) -> Result<(), FsError> {
        let json = serde_json::to_vec(record).map_err(|e| FsError::Io(std::io::Error::other(e)))?;
        self.replace(&format!("{}.v2", record.id), &json)
    }

    /// Keeps a session's plan; returns its data log, to append to.
    pub(super) fn plan(&self, id: &str, plan: &[u8]) -> Result<File, FsError> {
        self.replace(&format!("{id}.v2plan"), plan)?;
        let name = format!("{id}.v2data");
        self.dir.remove(&name)?;
        self.dir.create_new(&name)
    }

    /// Opens a recovered session's data log, to append to.
    pub(super) fn reopen_data(&self, id: &str) -> Result<File, FsError> {
        self.dir.open_existing(&format!("{id}.v2data"))
    }

    /// Writes `bytes` as `name` in one step (a new file renamed into place).
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), FsError> {
        let temp = format!("{name}.new");
        self.dir.remove(&temp)?;
        let file = self.dir.create_new(&temp)?;
        file.write_all_at(bytes, 0)?;
        self.dir.rename(&temp, name)
    }

    /// Forgets session `id`.
    pub(super) fn end(&self, id: &str) {
        for name in names(id) {
            if let Err(e) = self.dir.remove(&name) {
                tracing::warn!("could not remove journal entry {name}: {e}");
            }
        }
    }

    /// Every session on disk whose search had ended; the others are removed.
    pub(super) fn load(&self) -> Vec<Recovered> {
        let mut out = Vec::new();
        for name in self.dir.names_starting_with("").unwrap_or_default() {
            let Some(id) = name.strip_suffix(".v2") else { continue };
            match self.load_one(id) {
                Some(recovered) => out.push(recovered),
                None => self.end(id),
            }
        }
        out
    }

    fn read(&self, name: &str) -> Option<(Vec<u8>, SystemTime)> {
        let file = self.dir.open_read(name).ok()??;
        let modified = file.metadata().ok()?.modified().ok()?;
        let mut bytes = Vec::new();
        (&file).read_to_end(&mut bytes).ok()?;
        Some((bytes, modified))
    }

    fn load_one(&self, id: &str) -> Option<Recovered> {
        let [record_name, plan_name, data_name] = names(id);
        let (json, _) = self.read(&record_name)?;
        let record: DeltaRecord = serde_json::from_slice(&json).ok()?;
        if record.id != id {
            return None;
        }
        let (plan, _) = self.read(&plan_name)?;
        let (log, modified) = self.read(&data_name)?;
        let received = log
            .chunks_exact(16)
            .map(|r| {
                let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
                let (offset, len) = (word(&r[..8]), word(&r[8..]));
                offset..offset.saturating_add(len)
            })
            .collect();
        Some(Recovered { record, plan, received, modified })
    }
}

/// Appends `range` to a session's data log (best effort: at worst the range
/// is asked for again after a restart).
pub(super) fn log_received(log: &File, at: u64, range: &Range<u64>) -> bool {
    let mut record = [0u8; 16];
    record[..8].copy_from_slice(&range.start.to_le_bytes());
    record[8..].copy_from_slice(&(range.end - range.start).to_le_bytes());
    log.write_all_at(&record, at).is_ok()
}
