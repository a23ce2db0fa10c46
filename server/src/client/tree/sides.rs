//! The two sides of a tree sync, each a stream of [`Item`]s in one order:
//! the byte order of their paths, a directory keyed as its path and a `/`.
//! A local side is walked on a blocking thread (`walkdir`, sorted, no
//! symlink followed); a server's side is its listing (`GET /api/v2/list`),
//! a page at a time. Both hold what is in flight, never the tree.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::Gitignore;
use tokio::sync::mpsc;

use crate::client::error::ClientError;
use crate::client::remote::{Listed, Remote};
use crate::fs::RelPath;

/// What a path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A regular file: its size, and its modification time in milliseconds
    /// since the epoch.
    File { size: u64, mtime: i64 },
    /// A directory (local sides only: a server lists files).
    Dir,
    /// Anything else: skipped, with what it is.
    Other(&'static str),
    /// Not readable: why.
    Failed(String),
}

/// One path of a side, relative to the tree's root, `/`-separated.
#[derive(Clone, Debug)]
pub(super) struct Item {
    pub(super) rel: String,
    pub(super) kind: Kind,
    /// The version a server listed (its ETag), which a removal names.
    pub(super) etag: Option<String>,
}

impl Item {
    /// Where it sorts: its path, and a `/` for a directory.
    pub(super) fn key(&self) -> impl Iterator<Item = u8> + '_ {
        self.rel.bytes().chain((self.kind == Kind::Dir).then_some(b'/'))
    }
}

/// A side's items, one at a time, with the next one looked at.
pub(super) struct Side {
    source: Source,
    peeked: Option<Item>,
}

enum Source {
    Walk(mpsc::Receiver<Item>),
    Listing {
        remote: Remote,
        prefix: String,
        excludes: Arc<Gitignore>,
        cursor: Option<String>,
        page: std::vec::IntoIter<Listed>,
        done: bool,
        /// Whether the listing gives ETags (a removal names the version).
        etags: bool,
        /// The next page, asked for.
        ahead: Option<Page>,
    },
}

/// A page of a listing on its way: its files and the next page's cursor.
type Page = tokio::task::JoinHandle<Result<(Vec<Listed>, Option<String>), ClientError>>;

/// Asks for the page of `prefix` after `cursor`.
fn fetch(remote: &Remote, prefix: &str, cursor: Option<String>, etags: bool) -> Page {
    let (remote, prefix) = (remote.clone(), prefix.to_owned());
    tokio::spawn(async move { remote.list_page(&prefix, cursor.as_deref(), etags).await })
}

impl Side {
    /// A local tree below `root` (nothing if it does not exist).
    pub(super) fn walk(root: PathBuf, excludes: Arc<Gitignore>) -> Self {
        let (tx, rx) = mpsc::channel(256);
        tokio::task::spawn_blocking(move || walk(&root, &excludes, &tx));
        Self { source: Source::Walk(rx), peeked: None }
    }

    /// The files on a server below `prefix` (empty, or ending in `/`),
    /// with their ETags when `etags`.
    pub(super) fn listing(remote: Remote, prefix: String, excludes: Arc<Gitignore>, etags: bool) -> Self {
        let source = Source::Listing {
            remote,
            prefix,
            excludes,
            cursor: None,
            page: Vec::new().into_iter(),
            done: false,
            etags,
            ahead: None,
        };
        Self { source, peeked: None }
    }

    /// The next item, without taking it.
    pub(super) async fn peek(&mut self) -> Result<Option<&Item>, ClientError> {
        if self.peeked.is_none() {
            self.peeked = self.source.next().await?;
        }
        Ok(self.peeked.as_ref())
    }

    /// Takes the next item.
    pub(super) async fn take(&mut self) -> Result<Option<Item>, ClientError> {
        self.peek().await?;
        Ok(self.peeked.take())
    }
}

impl Source {
    async fn next(&mut self) -> Result<Option<Item>, ClientError> {
        match self {
            Self::Walk(rx) => Ok(rx.recv().await),
            Self::Listing { remote, prefix, excludes, cursor, page, done, etags, ahead } => loop {
                if let Some(listed) = page.next() {
                    let Some(rel) = listed.path.strip_prefix(prefix.as_str()) else {
                        return Err(ClientError::Protocol(format!(
                            "the listing of {prefix:?} holds {:?}",
                            listed.path
                        )));
                    };
                    // A server names paths below the tree's root, and
                    // nothing else: `..`, `/x` or `a//b` never become local paths.
                    let kind = match RelPath::parse(rel) {
                        Ok(_) => Kind::File { size: listed.size, mtime: listed.mtime },
                        Err(e) => Kind::Failed(format!("the server listed a path that cannot be local: {e}")),
                    };
                    if excludes.matched_path_or_any_parents(rel, false).is_ignore() {
                        continue;
                    }
                    let etag = Some(listed.etag).filter(|e| !e.is_empty());
                    return Ok(Some(Item { rel: rel.to_owned(), kind, etag }));
                }
                if *done {
                    return Ok(None);
                }
                let coming = match ahead.take() {
                    Some(coming) => coming,
                    None => fetch(remote, prefix, None, *etags),
                };
                let (files, next) = coming.await.map_err(|e| ClientError::Local(e.to_string()))??;
                // Each page starts after the last: a cursor that does not
                // move on would list forever.
                if next.is_some() && next <= *cursor {
                    return Err(ClientError::Protocol("the listing's cursor did not move on".into()));
                }
                // The next page is asked for now, while this one is merged.
                *ahead = next.as_ref().map(|next| fetch(remote, prefix, Some(next.clone()), *etags));
                *done = next.is_none();
                *cursor = next;
                *page = files.into_iter();
            },
        }
    }
}

/// Walks `root` in key order into `tx`, leaving out what `excludes` names.
fn walk(root: &Path, excludes: &Gitignore, tx: &mpsc::Sender<Item>) {
    if !root.is_dir() {
        return;
    }
    let sort_key = |e: &walkdir::DirEntry| {
        let mut key = e.file_name().as_encoded_bytes().to_vec();
        if e.file_type().is_dir() {
            key.push(b'/');
        }
        key
    };
    let entries = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by(move |a, b| sort_key(a).cmp(&sort_key(b)))
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            !excludes.matched(rel, e.file_type().is_dir()).is_ignore()
        });
    for entry in entries {
        let item = match entry {
            Ok(entry) => item_of(root, &entry),
            Err(e) => {
                let rel = e
                    .path()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map(|p| p.to_string_lossy().into_owned());
                Item { rel: rel.unwrap_or_default(), kind: Kind::Failed(e.to_string()), etag: None }
            }
        };
        if tx.blocking_send(item).is_err() {
            return;
        }
    }
}

fn item_of(root: &Path, entry: &walkdir::DirEntry) -> Item {
    let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
    let Some(text) = rel.to_str() else {
        return Item {
            rel: rel.to_string_lossy().into_owned(),
            kind: Kind::Failed("the name is not UTF-8".into()),
            etag: None,
        };
    };
    let rel = text.to_owned();
    let kind = entry.file_type();
    let kind = if kind.is_dir() {
        Kind::Dir
    } else if kind.is_symlink() {
        Kind::Other("a symlink")
    } else if !kind.is_file() {
        Kind::Other("a device, FIFO or socket")
    } else {
        match entry.metadata() {
            Ok(meta) => Kind::File {
                size: meta.len(),
                mtime: meta.modified().map(crate::fs::mtime::to_ms).unwrap_or(0),
            },
            Err(e) => Kind::Failed(e.to_string()),
        }
    };
    Item { rel, kind, etag: None }
}
