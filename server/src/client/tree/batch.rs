//! How a tree's files travel: each by itself ([`Sender::one`], a whole
//! sync as `diffcopy FILE URL` runs it), or, for new small files going to
//! a server, many in one request (`POST /api/v2/batch`, [`Sender::batch`]):
//! one round trip for hundreds of files, each still verified and committed
//! atomically by the server. A file the batch could not take for a reason
//! of the moment (the whole request failed, a 5xx for that file, a server
//! without batches) goes again by itself, with its retries.

use std::path::PathBuf;
use std::sync::Arc;

use diffcopy_core::hex;
use sha2::{Digest, Sha256};

use super::End;
use super::report::{Action, FileReport};
use crate::client::location::Location;
use crate::client::multi::Multi;
use crate::client::options::SyncOptions;
use crate::client::remote::{BatchFile, Remote};
use crate::client::sync::sync_with;

/// The largest file sent in a batch.
pub(super) const SMALL_FILE: u64 = 256 << 10;
/// A server's files removed in one exchange (`--delete`).
pub(super) const REMOVALS: usize = 500;

/// A batch is sent once it holds this many bytes...
const BATCH_BYTES: u64 = 4 << 20;
/// ...or this many files.
const BATCH_FILES: usize = 500;

/// A file to send.
#[derive(Clone, Debug)]
pub(super) struct File {
    pub(super) rel: String,
    pub(super) action: Action,
    pub(super) size: u64,
    /// Milliseconds since the epoch.
    pub(super) mtime: i64,
}

/// Small files synced together, each by itself but its requests sent with
/// the others' (`POST /api/v2/multi`), this many at once; one group runs
/// at a time ([`Sender::group`]), so that a tree holds at most some 20 of
/// the server's upload sessions (`--max-uploads`, 64 by default).
const GROUP_FILES: usize = 16;

/// Small files waiting for their batch or their group.
#[derive(Debug)]
pub(super) struct Pending {
    files: Vec<File>,
    bytes: u64,
    max_files: usize,
}

impl Pending {
    /// New small files for a batch (`POST /api/v2/batch`).
    pub(super) fn batch() -> Self {
        Self { files: Vec::new(), bytes: 0, max_files: BATCH_FILES }
    }

    /// Small files for a group (each synced, their requests together).
    pub(super) fn group() -> Self {
        Self { files: Vec::new(), bytes: 0, max_files: GROUP_FILES }
    }

    /// Adds a file; a full batch, when this filled one.
    pub(super) fn add(&mut self, file: File) -> Option<Vec<File>> {
        self.bytes += file.size;
        self.files.push(file);
        (self.bytes >= BATCH_BYTES || self.files.len() >= self.max_files).then(|| self.take())
    }

    /// What waits, taken.
    pub(super) fn take(&mut self) -> Vec<File> {
        self.bytes = 0;
        std::mem::take(&mut self.files)
    }
}

/// What sending needs: the per-file sync's options, the HTTP client, the ends.
#[derive(Clone, Debug)]
pub(super) struct Sender {
    pub(super) per_file: Arc<SyncOptions>,
    pub(super) http: reqwest::Client,
    pub(super) source: End,
    pub(super) target: End,
    /// Held by the group that runs.
    pub(super) groups: Arc<tokio::sync::Semaphore>,
}

impl Sender {
    /// The server's `scheme://host:port`, if either end is on one.
    pub(super) fn server(&self) -> Option<&str> {
        match (&self.source, &self.target) {
            (End::Remote { base, .. }, _) | (_, End::Remote { base, .. }) => Some(base),
            _ => None,
        }
    }

    /// Syncs small files each by itself, all at once, their requests sent
    /// together: each step of every file's sync in one exchange.
    pub(super) async fn group(&self, files: Vec<File>) -> Vec<FileReport> {
        let Some(base) = self.server() else { return self.each(files).await };
        let Ok(_running) = self.groups.acquire().await else { return self.each(files).await };
        let multi = Multi::new(self.http.clone(), base, self.per_file.token.clone());
        let syncs = files.into_iter().map(|file| {
            let member = multi.join();
            let multi = multi.clone();
            async move {
                let report = self.sync(file, Some(&multi)).await;
                drop(member);
                report
            }
        });
        futures_util::future::join_all(syncs).await
    }

    /// Removes a server's files (`--delete`), each only if it is still the
    /// version listed (its ETag), the requests together in one exchange.
    pub(super) async fn remove(&self, files: Vec<(String, String)>) -> Vec<FileReport> {
        let End::Remote { base, prefix } = &self.target else { return Vec::new() };
        let multi = Multi::new(self.http.clone(), base, self.per_file.token.clone());
        let removals = files.into_iter().map(|(rel, etag)| {
            let member = multi.join();
            let path = format!("{prefix}{rel}");
            let remote = Remote::new(self.http.clone(), base, &path, self.per_file.token.clone())
                .with_multi(Some(multi.clone()));
            async move {
                let removed = remote.remove(&etag).await;
                drop(member);
                match removed {
                    Ok(()) => FileReport::new(&rel, Action::Deleted),
                    Err(e) => FileReport::new(&rel, Action::Failed).because(format!("not removed: {e}")),
                }
            }
        });
        futures_util::future::join_all(removals).await
    }

    /// Syncs one file by itself.
    pub(super) async fn one(&self, file: File) -> FileReport {
        self.sync(file, None).await
    }

    async fn sync(&self, file: File, multi: Option<&Arc<Multi>>) -> FileReport {
        let mut options = (*self.per_file).clone();
        options.source = self.source.location(&file.rel);
        options.target = self.target.location(&file.rel);
        options.block_size = block_for(options.block_size, file.size);
        let mut report = FileReport::new(&file.rel, file.action);
        report.size = Some(file.size);
        match sync_with(&options, &self.http, multi).await {
            Ok(summary) => {
                report.bytes_sent = summary.bytes_sent;
                report.payload_bytes = summary.payload_bytes;
                if file.action == Action::Changed
                    && summary.bytes_sent == 0
                    && summary.similarity_percent >= 100.0
                {
                    report.action = Action::Unchanged;
                }
                // A local copy takes the source's time, as the server's does at commit.
                if let (Location::Local(path), Some(time)) =
                    (&options.target, crate::fs::mtime::from_ms(file.mtime))
                    && let Err(e) = std::fs::File::open(path).and_then(|f| f.set_modified(time))
                {
                    report = report.because(format!("its time was not set: {e}"));
                    report.action = Action::Failed;
                }
                report
            }
            Err(e) => {
                report.action = Action::Failed;
                report.because(e.to_string())
            }
        }
    }

    /// Sends new small files from a local source to a server in one request.
    pub(super) async fn batch(&self, files: Vec<File>) -> Vec<FileReport> {
        let (End::Local(root), End::Remote { base, prefix }) = (&self.source, &self.target) else {
            return self.each(files).await;
        };
        let (root, prefix) = (root.clone(), prefix.clone());
        let read = tokio::task::spawn_blocking(move || read_all(&root, &prefix, files)).await;
        let Ok((batch, mut reports)) = read else { return Vec::new() };
        if batch.is_empty() {
            return reports;
        }
        let remote = Remote::new(self.http.clone(), base, "", self.per_file.token.clone());
        let (files, bodies): (Vec<File>, Vec<BatchFile>) = batch.into_iter().unzip();
        let mut again = Vec::new();
        match remote.batch(&bodies).await {
            Ok((answers, payload)) => {
                let share = payload / files.len() as u64;
                for (file, answer) in files.into_iter().zip(answers) {
                    let mut report = FileReport::new(&file.rel, file.action);
                    report.size = Some(file.size);
                    match answer.status {
                        200 => {
                            report.bytes_sent = file.size;
                            report.payload_bytes = share;
                            reports.push(report);
                        }
                        // The server's trouble of the moment: by itself, with retries.
                        500.. => again.push(file),
                        _ => {
                            let why = format!("{} {}: {}", answer.status, answer.error, answer.message);
                            report.action = Action::Failed;
                            reports.push(report.because(why));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!("a batch of {} files failed ({e}); each goes by itself", files.len());
                again = files;
            }
        }
        reports.extend(self.each(again).await);
        reports
    }

    /// Syncs files one by one.
    async fn each(&self, files: Vec<File>) -> Vec<FileReport> {
        let mut reports = Vec::with_capacity(files.len());
        for file in files {
            reports.push(self.one(file).await);
        }
        reports
    }
}

/// The block size for a file of `size` bytes in a tree: `-b`, or less for
/// a file of fewer than 8 of those blocks, so that it still has 8 blocks
/// (a power of two, at least 4 KiB). A file of one block is searched
/// whole: a 40 KB file with 10 bytes changed would travel whole in one
/// 1 MiB block, and costs some 1 KB in 8 KiB blocks, as rsync's does.
fn block_for(block_size: u32, size: u64) -> u32 {
    let eighth = u32::try_from((size / 8).max(1)).unwrap_or(u32::MAX);
    eighth.checked_next_power_of_two().unwrap_or(u32::MAX).clamp(MIN_BLOCK, block_size.max(MIN_BLOCK))
}

/// The smallest block [`block_for`] picks (the server's least).
const MIN_BLOCK: u32 = 4 << 10;

/// Reads each file below `root` for a batch to `prefix` (blocking): the
/// batch, and the reports of those that could not be read.
fn read_all(
    root: &std::path::Path,
    prefix: &str,
    files: Vec<File>,
) -> (Vec<(File, BatchFile)>, Vec<FileReport>) {
    let mut batch = Vec::with_capacity(files.len());
    let mut failed = Vec::new();
    for mut file in files {
        let path: PathBuf = root.join(&file.rel);
        match std::fs::read(&path) {
            Ok(bytes) => {
                file.size = bytes.len() as u64;
                let sha256 = hex::encode(&Sha256::digest(&bytes));
                let body = BatchFile {
                    path: format!("{prefix}{}", file.rel),
                    bytes,
                    sha256,
                    mtime: file.mtime,
                    new: true,
                };
                batch.push((file, body));
            }
            Err(e) => failed
                .push(FileReport::new(&file.rel, Action::Failed).because(format!("{}: {e}", path.display()))),
        }
    }
    (batch, failed)
}

#[cfg(test)]
mod tests {
    use super::block_for;

    #[test]
    fn small_files_get_eight_blocks_or_4_kib_ones() {
        let mib = 1 << 20;
        assert_eq!(block_for(mib, 0), 4096);
        assert_eq!(block_for(mib, 1), 4096);
        assert_eq!(block_for(mib, 40_000), 8192);
        assert_eq!(block_for(mib, 64 << 10), 8192);
        assert_eq!(block_for(mib, (64 << 10) + 8), 16384);
        assert_eq!(block_for(mib, 8 << 20), mib);
        assert_eq!(block_for(mib, 100 << 20), mib);
        assert_eq!(block_for(64 << 10, 100 << 20), 64 << 10, "never above -b");
    }
}
