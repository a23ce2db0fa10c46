//! `diffcopy -r SOURCE TARGET`: a directory tree, with rsync's habits
//! (docs/cli.md, "Trees").
//!
//! Both sides are streams of paths in one order (`sides.rs`): a local tree
//! walked, or a server's listing. They are merged like two sorted lists: a
//! path on both sides is compared by size and modification time (or, with
//! `--checksum`, by content through protocol v2), a path only in the source
//! is sent, a path only in the target is removed with `--delete`. Each file
//! that must move is one sync of its own (`sync.rs`, over one shared HTTP
//! client), `--files-in-flight` at once: verified and committed atomically
//! as a single file is. A file that fails is reported and the rest go on.
//! What is held is what is in flight, never the tree.

mod batch;
mod report;
mod sides;

use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use batch::{File, Pending, Sender};
pub use report::TreeSummary;
use report::{Action, FileReport, Reporter};
use sides::{Item, Kind, Side};

use super::error::ClientError;
use super::location::Location;
use super::options::{ProtocolChoice, SyncOptions};
use super::progress::Progress;
use super::remote::{Protocol, Remote};
use super::sync::{http_client, protocol};

/// What a tree sync is asked to do.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    /// How each file syncs; its `source` and `target` are the trees'.
    pub sync: SyncOptions,
    /// Whether SOURCE was written with a trailing `/`: its contents go into
    /// TARGET, not a folder of its name.
    pub contents: bool,
    /// Remove target files the source lacks.
    pub delete: bool,
    /// Paths left out, as lines of a `.gitignore`.
    pub excludes: Vec<String>,
    /// Compare content, not size and time.
    pub checksum: bool,
    /// Files synced at once.
    pub files_in_flight: usize,
    /// A line of JSON per path on stdout.
    pub json: bool,
    /// Send every file by itself, never small new ones in a batch.
    pub no_batch: bool,
}

/// One end of a tree: a local directory, or a prefix on a server (empty or
/// ending in `/`).
#[derive(Clone, Debug)]
enum End {
    Local(PathBuf),
    Remote { base: String, prefix: String },
}

impl End {
    /// Where the path `rel` of the tree is.
    fn location(&self, rel: &str) -> Location {
        match self {
            Self::Local(root) => Location::Local(root.join(rel)),
            Self::Remote { base, prefix } => {
                Location::Remote { base: base.clone(), path: format!("{prefix}{rel}") }
            }
        }
    }
}

/// `path` as a prefix of the paths below it: empty, or ending in `/`.
fn folder(path: &str) -> String {
    let path = path.trim_matches('/');
    if path.is_empty() { String::new() } else { format!("{path}/") }
}

/// The ends of a tree sync: `source` as given, and `target` with the
/// source's name below it unless `contents` (rsync's trailing `/`).
fn ends(source: &Location, target: &Location, contents: bool) -> (End, End) {
    let name = match source {
        _ if contents => None,
        Location::Local(path) => path.file_name().and_then(|n| n.to_str()).map(str::to_owned),
        Location::Remote { path, .. } => path.trim_end_matches('/').rsplit('/').next().map(str::to_owned),
    }
    .filter(|n| !n.is_empty() && n != "." && n != "..");
    let source = match source {
        Location::Local(path) => End::Local(path.clone()),
        Location::Remote { base, path } => End::Remote { base: base.clone(), prefix: folder(path) },
    };
    let target = match (target, name) {
        (Location::Local(path), Some(name)) => End::Local(path.join(name)),
        (Location::Local(path), None) => End::Local(path.clone()),
        (Location::Remote { base, path }, name) => {
            let path = folder(path) + name.as_deref().unwrap_or("");
            End::Remote { base: base.clone(), prefix: folder(&path) }
        }
    };
    (source, target)
}

/// `--exclude`'s patterns as one matcher.
fn excludes(patterns: &[String]) -> Result<Gitignore, ClientError> {
    let mut builder = GitignoreBuilder::new("");
    for pattern in patterns {
        builder
            .add_line(None, pattern)
            .map_err(|e| ClientError::Usage(format!("--exclude {pattern:?}: {e}")))?;
    }
    builder.build().map_err(|e| ClientError::Usage(format!("--exclude: {e}")))
}

/// Syncs the tree `options.sync.source` to `options.sync.target`.
pub async fn sync_tree(options: &TreeOptions) -> Result<TreeSummary, ClientError> {
    let started = Instant::now();
    let sync = &options.sync;
    let (source, target) = ends(&sync.source, &sync.target, options.contents);
    let direction = match (&source, &target) {
        (End::Local(_), End::Remote { .. }) => "upload",
        (End::Remote { .. }, End::Local(_)) => "download",
        (End::Local(_), End::Local(_)) => "copy",
        (End::Remote { .. }, End::Remote { .. }) => {
            return Err(ClientError::Usage("one side must be a local path".into()));
        }
    };
    if let End::Local(root) = &source {
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(ClientError::Usage(format!(
                    "{} is not a directory (leave out -r)",
                    root.display()
                )));
            }
            Err(e) => return Err(ClientError::NotFound(format!("{}: {e}", root.display()))),
        }
    }
    let http = http_client(sync)?;
    let token = sync.token.clone();
    let server = |base: &str| Remote::new(http.clone(), base, "", token.clone());
    let mut per_file = sync.clone();
    per_file.progress = Progress::new(false);
    per_file.dry_run = false;
    for end in [&source, &target] {
        if let End::Remote { base, .. } = end {
            if protocol(sync, &server(base)).await? != Protocol::V2 {
                return Err(ClientError::Usage(
                    "a tree needs a diffcopy server that speaks protocol v2".into(),
                ));
            }
            per_file.protocol = ProtocolChoice::V2;
        }
    }
    let excludes = Arc::new(excludes(&options.excludes)?);
    let side = |end: &End| match end {
        End::Local(root) => Side::walk(root.clone(), excludes.clone()),
        // ETags only where a removal will name them: they are most of a
        // compressed listing's bytes.
        End::Remote { base, prefix } => {
            Side::listing(server(base), prefix.clone(), excludes.clone(), options.delete)
        }
    };
    let (mut from, mut to) = (side(&source), side(&target));
    if let End::Local(root) = &target
        && !sync.dry_run
    {
        std::fs::create_dir_all(root).map_err(|e| ClientError::io(root.display(), e))?;
    }
    let groups = Arc::new(tokio::sync::Semaphore::new(1));
    let sender = Sender { per_file: Arc::new(per_file), http, source, target, groups };
    let mut run = Run {
        options,
        sender,
        pending: Pending::batch(),
        grouped: Pending::group(),
        batching: !options.no_batch,
        reporter: Reporter::new(direction, sync.dry_run, options.json, sync.progress),
        in_flight: FuturesUnordered::new(),
        made: Vec::new(),
        blocked: Vec::new(),
        to_remove: Vec::new(),
        removals: Vec::new(),
    };
    loop {
        let order = match (from.peek().await?, to.peek().await?) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(s), Some(t)) => s.key().cmp(t.key()),
        };
        let (s, t) = match order {
            Ordering::Less => (from.take().await?, None),
            Ordering::Greater => (None, to.take().await?),
            Ordering::Equal => (from.take().await?, to.take().await?),
        };
        run.path(s, t).await;
    }
    let mut summary = run.finish().await;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

type Transfer = std::pin::Pin<Box<dyn Future<Output = Vec<FileReport>> + Send>>;

/// A tree sync under way.
struct Run<'a> {
    options: &'a TreeOptions,
    /// How files travel; it holds the two ends.
    sender: Sender,
    /// New small files waiting to go up in one batch.
    pending: Pending,
    /// Other small files waiting to sync together.
    grouped: Pending,
    /// Whether small files are batched, or grouped.
    batching: bool,
    reporter: Reporter,
    in_flight: FuturesUnordered<Transfer>,
    /// The local target's directories on the current path, known to be
    /// real directories (made, or found so): no file is written through a
    /// symlink.
    made: Vec<String>,
    /// Target folders (`a/b/`) that are not directories: nothing goes below.
    blocked: Vec<String>,
    /// Target directories the source lacks, removed at the end (`--delete`).
    to_remove: Vec<String>,
    /// A server's files the source lacks, with the ETags listed, waiting
    /// to be removed together (`--delete`).
    removals: Vec<(String, String)>,
}

impl Run<'_> {
    /// Deals with one path, on one side or both.
    async fn path(&mut self, source: Option<Item>, target: Option<Item>) {
        match (source, target) {
            (Some(s), t) => self.in_source(s, t).await,
            (None, Some(t)) => self.only_in_target(t).await,
            (None, None) => {}
        }
    }

    async fn in_source(&mut self, s: Item, t: Option<Item>) {
        // A server lists no directories: a target directory that seemed
        // the source's to lack holds this path after all.
        self.to_remove.retain(|d| !s.rel.starts_with(&format!("{d}/")));
        let done = |action| FileReport::new(&s.rel, action);
        let report = match (&s.kind, t.as_ref().map(|t| &t.kind)) {
            (Kind::Failed(why), _) => done(Action::Failed).because(why.clone()),
            (Kind::Other(what), _) => {
                done(Action::Skipped).because(format!("{what} (only files and directories are synced)"))
            }
            (_, Some(Kind::Failed(why))) => done(Action::Failed).because(format!("the target: {why}")),
            (Kind::File { .. }, Some(Kind::Other(what))) => {
                done(Action::Failed).because(format!("the target is {what}; it is not replaced"))
            }
            (Kind::Dir, _) => match self.directory(&s.rel) {
                Ok(false) => return,
                Ok(true) => done(Action::Dir),
                Err(why) => done(Action::Failed).because(why),
            },
            (&Kind::File { size, mtime }, t) => {
                let old = match t {
                    Some(&Kind::File { size, mtime }) => Some((size, mtime)),
                    _ => None,
                };
                if old == Some((size, mtime)) && !self.options.checksum {
                    done(Action::Unchanged)
                } else {
                    let action = if old.is_some() { Action::Changed } else { Action::New };
                    let mut report = done(action);
                    report.size = Some(size);
                    if self.options.sync.dry_run {
                        report
                    } else {
                        match self.parents(&s.rel) {
                            Ok(()) => return self.send(s.rel, action, size, mtime).await,
                            Err(why) => report.because(why),
                        }
                    }
                }
            }
        };
        self.reporter.add(&report);
    }

    /// Waits until fewer than `--files-in-flight` files are under way.
    async fn slot(&mut self, rel: &str) {
        while self.in_flight.len() >= self.options.files_in_flight.max(1) {
            self.settle_one().await;
        }
        self.reporter.started(rel);
    }

    /// Starts syncing one file.
    async fn send(&mut self, rel: String, action: Action, size: u64, mtime: i64) {
        let small = size <= batch::SMALL_FILE
            && action == Action::New
            && matches!(self.sender.target, End::Remote { .. });
        let file = File { rel, action, size, mtime };
        if small && self.batching {
            if let Some(full) = self.pending.add(file) {
                let sender = self.sender.clone();
                self.start(&full[0].rel.clone(), Box::pin(async move { sender.batch(full).await })).await;
            }
            return;
        }
        if size <= batch::SMALL_FILE && self.batching && self.sender.server().is_some() {
            if let Some(full) = self.grouped.add(file) {
                let sender = self.sender.clone();
                self.start(&full[0].rel.clone(), Box::pin(async move { sender.group(full).await })).await;
            }
            return;
        }
        let (rel, sender) = (file.rel.clone(), self.sender.clone());
        self.start(&rel, Box::pin(async move { vec![sender.one(file).await] })).await;
    }

    /// Starts `transfer` (of `rel`, the first of its files) once fewer than
    /// `--files-in-flight` are under way.
    async fn start(&mut self, rel: &str, transfer: Transfer) {
        self.slot(rel).await;
        self.in_flight.push(transfer);
    }

    async fn settle_one(&mut self) {
        if let Some(reports) = self.in_flight.next().await {
            for report in &reports {
                self.reporter.add(report);
            }
        }
    }

    /// A path only in the target: removed with `--delete` (a directory at
    /// the end, once emptied).
    async fn only_in_target(&mut self, t: Item) {
        if !self.options.delete {
            return;
        }
        let root = match &self.sender.target {
            End::Local(root) => root.clone(),
            End::Remote { .. } if self.options.sync.dry_run => {
                return self.reporter.add(&FileReport::new(&t.rel, Action::Deleted));
            }
            End::Remote { .. } => {
                self.removals.push((t.rel, t.etag.unwrap_or_default()));
                if self.removals.len() >= batch::REMOVALS {
                    self.remove_pending().await;
                }
                return;
            }
        };
        let report = match t.kind {
            Kind::File { .. } if self.options.sync.dry_run => FileReport::new(&t.rel, Action::Deleted),
            Kind::File { .. } => match std::fs::remove_file(root.join(&t.rel)) {
                Ok(()) => FileReport::new(&t.rel, Action::Deleted),
                Err(e) => FileReport::new(&t.rel, Action::Failed).because(format!("not removed: {e}")),
            },
            Kind::Dir => {
                self.to_remove.push(t.rel);
                return;
            }
            Kind::Other(what) => {
                FileReport::new(&t.rel, Action::Skipped).because(format!("{what}, not removed"))
            }
            Kind::Failed(_) => return,
        };
        self.reporter.add(&report);
    }

    /// Removes the server's files waiting in `removals`, in one exchange.
    async fn remove_pending(&mut self) {
        let removals = std::mem::take(&mut self.removals);
        if let Some((first, _)) = removals.first() {
            let (first, sender) = (first.clone(), self.sender.clone());
            self.start(&first, Box::pin(async move { sender.remove(removals).await })).await;
        }
    }

    /// Makes the local target's directory `rel` (and those above it);
    /// whether it made it. Nothing for a server, which has no directories.
    fn directory(&mut self, rel: &str) -> Result<bool, String> {
        let End::Local(root) = &self.sender.target else { return Ok(false) };
        if let Some(folder) = self.blocked.iter().find(|b| rel.starts_with(b.as_str())) {
            return Err(format!("{} in the target is not a directory", folder.trim_end_matches('/')));
        }
        if self.options.sync.dry_run {
            return Ok(!root.join(rel).is_dir());
        }
        self.made.retain(|d| rel == d || rel.starts_with(&format!("{d}/")));
        let mut made = false;
        let mut at = String::new();
        for segment in rel.split('/') {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(segment);
            if self.made.contains(&at) {
                continue;
            }
            let path = root.join(&at);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    self.blocked.push(format!("{at}/"));
                    return Err(format!("{at} in the target is not a directory"));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    made = true;
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
            self.made.push(at.clone());
        }
        Ok(made)
    }

    /// Makes the directories above the file `rel` in a local target.
    fn parents(&mut self, rel: &str) -> Result<(), String> {
        match rel.rsplit_once('/') {
            Some((parent, _)) => self.directory(parent).map(drop),
            None => Ok(()),
        }
    }

    /// Waits for the files in flight and removes the directories `--delete` found.
    async fn finish(mut self) -> TreeSummary {
        self.remove_pending().await;
        let rest = self.pending.take();
        if !rest.is_empty() {
            let sender = self.sender.clone();
            self.in_flight.push(Box::pin(async move { sender.batch(rest).await }));
        }
        let rest = self.grouped.take();
        if !rest.is_empty() {
            let sender = self.sender.clone();
            self.in_flight.push(Box::pin(async move { sender.group(rest).await }));
        }
        while !self.in_flight.is_empty() {
            self.settle_one().await;
        }
        if let End::Local(root) = &self.sender.target {
            for rel in self.to_remove.iter().rev() {
                let report = if self.options.sync.dry_run {
                    FileReport::new(rel, Action::Deleted)
                } else {
                    match std::fs::remove_dir(root.join(rel)) {
                        Ok(()) => FileReport::new(rel, Action::Deleted),
                        Err(e) => FileReport::new(rel, Action::Failed).because(format!("not removed: {e}")),
                    }
                };
                self.reporter.add(&report);
            }
        }
        self.reporter.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends_of(source: &str, target: &str) -> (String, String) {
        let (s, t) = ends(
            &Location::parse_dir(source).unwrap(),
            &Location::parse_dir(target).unwrap(),
            source.ends_with('/'),
        );
        let show = |e: End| match e {
            End::Local(p) => p.display().to_string(),
            End::Remote { prefix, .. } => format!("remote:{prefix}"),
        };
        (show(s), show(t))
    }

    /// rsync's trailing slash: `a` goes into TARGET as `a`, `a/` is poured in.
    #[test]
    fn a_trailing_slash_means_the_contents() {
        assert_eq!(ends_of("src/a", "http://h/x"), ("src/a".into(), "remote:x/a/".into()));
        assert_eq!(ends_of("src/a/", "http://h/x"), ("src/a/".into(), "remote:x/".into()));
        assert_eq!(ends_of("src/a/", "http://h/"), ("src/a/".into(), "remote:".into()));
        assert_eq!(ends_of("src/a", "http://h/"), ("src/a".into(), "remote:a/".into()));
        assert_eq!(ends_of("http://h/p/q", "dst"), ("remote:p/q/".into(), "dst/q".into()));
        assert_eq!(ends_of("http://h/p/q/", "dst"), ("remote:p/q/".into(), "dst".into()));
        assert_eq!(ends_of("http://h/", "dst"), ("remote:".into(), "dst".into()));
        assert_eq!(ends_of("a", "b"), ("a".into(), "b/a".into()));
        assert_eq!(ends_of(".", "b"), (".".into(), "b".into()));
    }

    #[test]
    fn excludes_are_gitignore_lines() {
        let rules = excludes(&["*.tmp".into(), "/build/".into(), "!keep.tmp".into()]).unwrap();
        let ignored = |path: &str, dir: bool| rules.matched_path_or_any_parents(path, dir).is_ignore();
        assert!(ignored("a.tmp", false));
        assert!(ignored("deep/down/a.tmp", false));
        assert!(!ignored("keep.tmp", false));
        assert!(ignored("build", true));
        assert!(ignored("build/out.o", false));
        assert!(!ignored("src/build", false));
        assert!(!ignored("a.txt", false));
    }
}
