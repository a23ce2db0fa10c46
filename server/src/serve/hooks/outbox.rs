//! Where webhook deliveries wait: [`Outbox`], kept by each store beside
//! its data. [`DirOutbox`] is a directory's reserved `.diffcopy-hooks/`;
//! the bucket's is `serve/bucket/outbox.rs`.

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;

use crate::fs::{Dir, Root};

/// A delivery as read from the outbox: its id, its bytes, and the version
/// a conditional replace must name.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) id: String,
    pub(crate) entry: Bytes,
    pub(crate) version: String,
}

/// Durable storage of deliveries. Ids sort in the order they were queued.
pub(crate) trait Outbox: Send + Sync + 'static {
    /// Stores a new delivery, durably, before returning.
    fn add(&self, id: &str, entry: Bytes) -> impl Future<Output = Result<(), String>> + Send;

    /// Up to `most` deliveries, oldest first, after id `after` if given.
    fn pending(
        &self,
        most: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Stored>, String>> + Send;

    /// Replaces `stored` with `entry` if it is still the version read: the
    /// new version, or `None` when someone else changed or removed it.
    fn replace(
        &self,
        stored: &Stored,
        entry: Bytes,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send;

    /// Removes delivery `id` (gone already is fine).
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// The reserved directory below a served root (clients cannot name it).
const DIR: &str = ".diffcopy-hooks";
const SUFFIX: &str = ".json";

/// A directory's outbox: one file per delivery, written to a temporary name,
/// synced and renamed into place. One server serves a directory, so a
/// replace needs no version.
#[derive(Debug, Clone)]
pub(crate) struct DirOutbox {
    dir: Arc<Dir>,
}

impl DirOutbox {
    pub(crate) fn open(root: &Root) -> std::io::Result<Self> {
        let dir = root.internal_dir(DIR).map_err(|e| std::io::Error::other(format!("opening {DIR}: {e}")))?;
        Ok(Self { dir: Arc::new(dir) })
    }

    /// Writes `entry` as delivery `id`, durably (blocking).
    fn write(dir: &Dir, id: &str, entry: &[u8]) -> Result<(), String> {
        let temporary = format!(".{id}.tmp");
        let written = (|| {
            let _ = dir.remove(&temporary);
            let mut file = dir.create_new(&temporary).map_err(|e| e.to_string())?;
            file.write_all(entry).and_then(|()| file.sync_all()).map_err(|e| e.to_string())?;
            dir.rename(&temporary, &format!("{id}{SUFFIX}")).map_err(|e| e.to_string())?;
            dir.sync().map_err(|e| e.to_string())
        })();
        if written.is_err() {
            let _ = dir.remove(&temporary);
        }
        written.map_err(|e| format!("writing the webhook delivery {id}: {e}"))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Dir) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || work(&dir)).await.map_err(|e| e.to_string())?
    }
}

/// Delivery `id`'s bytes; `None` if it is gone.
fn read_entry(dir: &Dir, id: &str) -> Result<Option<Bytes>, String> {
    let Some(mut file) = dir.open_read(&format!("{id}{SUFFIX}")).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let mut entry = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut entry).map_err(|e| e.to_string())?;
    Ok(Some(Bytes::from(entry)))
}

impl Outbox for DirOutbox {
    async fn add(&self, id: &str, entry: Bytes) -> Result<(), String> {
        let id = id.to_owned();
        self.blocking(move |dir| Self::write(dir, &id, &entry)).await
    }

    async fn pending(&self, most: usize, after: Option<&str>) -> Result<Vec<Stored>, String> {
        let after = after.map(str::to_owned);
        self.blocking(move |dir| {
            let mut ids: Vec<String> = dir
                .names_starting_with("")
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter_map(|name| {
                    name.strip_suffix(SUFFIX).filter(|id| !id.starts_with('.')).map(str::to_owned)
                })
                .filter(|id| after.as_ref().is_none_or(|after| id > after))
                .collect();
            ids.sort();
            ids.truncate(most);
            let mut stored = Vec::with_capacity(ids.len());
            for id in ids {
                // One that cannot be read (not a file, say) is skipped, and
                // said, rather than stopping every delivery after it.
                match read_entry(dir, &id) {
                    Ok(Some(entry)) => stored.push(Stored { id, entry, version: String::new() }),
                    Ok(None) => {}
                    Err(e) => tracing::error!(id, "a webhook delivery cannot be read, skipped: {e}"),
                }
            }
            Ok(stored)
        })
        .await
    }

    async fn replace(&self, stored: &Stored, entry: Bytes) -> Result<Option<String>, String> {
        let id = stored.id.clone();
        self.blocking(move |dir| Self::write(dir, &id, &entry)).await?;
        Ok(Some(String::new()))
    }

    async fn remove(&self, id: &str) -> Result<(), String> {
        let name = format!("{id}{SUFFIX}");
        self.blocking(move |dir| dir.remove(&name).and_then(|()| dir.sync()).map_err(|e| e.to_string())).await
    }
}
