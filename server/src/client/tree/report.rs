//! What a tree sync did, file by file and in all: a line per file for
//! `--json` and `-n`, warnings for what failed or was skipped, the counts
//! and the one-line summary.

use serde::Serialize;

use crate::client::progress::Progress;
use crate::client::summary::human;

/// What happened to one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Action {
    /// A file the target lacked, sent.
    New,
    /// A file that differed, synced.
    Changed,
    /// A file found the same (by size and time, or by content).
    Unchanged,
    /// A target file or directory the source lacks, removed (`--delete`).
    Deleted,
    /// A directory made in the target.
    Dir,
    /// Not a regular file or directory: left alone.
    Skipped,
    /// Failed; the rest went on.
    Failed,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Changed => "changed",
            Self::Unchanged => "unchanged",
            Self::Deleted => "deleted",
            Self::Dir => "dir",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// One path's outcome.
#[derive(Clone, Debug, Serialize)]
pub(super) struct FileReport {
    pub(super) path: String,
    pub(super) action: Action,
    /// The file's size (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) size: Option<u64>,
    /// Content bytes sent (for a download, received), before compression.
    pub(super) bytes_sent: u64,
    /// Every body both ways.
    pub(super) payload_bytes: u64,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message: Option<String>,
}

impl FileReport {
    pub(super) fn new(path: &str, action: Action) -> Self {
        Self { path: path.to_owned(), action, size: None, bytes_sent: 0, payload_bytes: 0, message: None }
    }

    pub(super) fn because(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// What a whole tree sync did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TreeSummary {
    /// `upload`, `download` or `copy`.
    pub direction: &'static str,
    /// Whether nothing was written (`-n`).
    pub dry_run: bool,
    /// Files the target lacked.
    pub files_new: u64,
    /// Files that differed.
    pub files_changed: u64,
    /// Files found the same.
    pub files_unchanged: u64,
    /// Target files and directories removed (`--delete`).
    pub files_deleted: u64,
    /// Paths that failed.
    pub files_failed: u64,
    /// Paths left alone: symlinks, devices, FIFOs, sockets.
    pub files_skipped: u64,
    /// Directories made in the target.
    pub dirs_created: u64,
    /// Content bytes sent (received, for a download), before compression.
    pub bytes_sent: u64,
    /// Every body both ways.
    pub payload_bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// The process's peak resident memory (Linux's `VmHWM`), where known:
    /// what is in flight, never the tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

impl TreeSummary {
    /// The one-line summary.
    pub fn line(&self) -> String {
        let verb = if self.dry_run { "would send" } else { "sent" };
        format!(
            "tree {}: {} new, {} changed, {} unchanged, {} deleted, {} failed, {} skipped; {verb} {} ({} in all); {:.2} s",
            self.direction,
            self.files_new,
            self.files_changed,
            self.files_unchanged,
            self.files_deleted,
            self.files_failed,
            self.files_skipped,
            human(self.bytes_sent as f64),
            human(self.payload_bytes as f64),
            self.seconds,
        )
    }
}

/// Counts the outcomes and writes each as the options ask.
pub(super) struct Reporter {
    pub(super) summary: TreeSummary,
    json: bool,
    bar: indicatif::ProgressBar,
}

impl Reporter {
    pub(super) fn new(direction: &'static str, dry_run: bool, json: bool, progress: Progress) -> Self {
        let summary = TreeSummary { direction, dry_run, ..TreeSummary::default() };
        Self { summary, json, bar: progress.counter("files") }
    }

    /// A path is being worked on (the bar shows it).
    pub(super) fn started(&self, path: &str) {
        self.bar.set_message(path.to_owned());
    }

    pub(super) fn add(&mut self, report: &FileReport) {
        let s = &mut self.summary;
        match report.action {
            Action::New => s.files_new += 1,
            Action::Changed => s.files_changed += 1,
            Action::Unchanged => s.files_unchanged += 1,
            Action::Deleted => s.files_deleted += 1,
            Action::Dir => s.dirs_created += 1,
            Action::Skipped => s.files_skipped += 1,
            Action::Failed => s.files_failed += 1,
        }
        s.bytes_sent += report.bytes_sent;
        s.payload_bytes += report.payload_bytes;
        self.bar.inc(1);
        if self.json {
            let mut line = serde_json::to_value(report).unwrap_or_default();
            line["type"] = "file".into();
            self.bar.suspend(|| println!("{line}"));
            return;
        }
        let message = report.message.as_deref().unwrap_or("");
        match report.action {
            Action::Failed => self.bar.suspend(|| eprintln!("diffcopy: {}: {message}", report.path)),
            Action::Skipped => self.bar.suspend(|| eprintln!("diffcopy: skipped {}: {message}", report.path)),
            Action::Unchanged => {}
            action if self.summary.dry_run => println!("{} {}", action.name(), report.path),
            _ => {}
        }
    }

    pub(super) fn finish(mut self) -> TreeSummary {
        self.bar.finish_and_clear();
        self.summary.peak_rss_bytes = peak_rss();
        self.summary
    }
}

/// This process's peak resident memory, from `/proc/self/status`.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
