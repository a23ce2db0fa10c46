//! What the directory's upload sessions of both protocols (API v1 in
//! `upload/`, protocol v2 in `delta/`) share: one session table (find a
//! session and keep it alive, end it, expire the idle ones, count them) and
//! one staging file beside the target. Each protocol keeps only what it
//! does differently: what a session holds and how it commits.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::fs::{Dir, FsError, JOURNAL_DIR, RESERVED_PREFIX, RelPath, Root, start_writeback};
use crate::serve::commit::Staged;
use crate::serve::error::{AppError, AppResult, ErrorKind};

/// `mutex`'s guard, whether or not a thread panicked holding it (the
/// sessions' state stays usable: every change to it is one assignment).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An upload session, as the table sees it.
pub(super) trait Session: Send + Sync {
    /// Marks the session as used now.
    fn touch(&self);

    /// When it was last used, or `None` while a commit (or a search round)
    /// runs: such a session never expires.
    fn idle_since(&self) -> Option<Instant>;

    /// Removes what the session left on disk (its staging file).
    fn discard(&self);
}

/// The open sessions of one protocol, by id.
#[derive(Debug)]
pub(super) struct SessionTable<T>(Mutex<HashMap<String, Arc<T>>>);

impl<T> Default for SessionTable<T> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<T: Session> SessionTable<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<T>>> {
        lock(&self.0)
    }

    /// Adds session `id`.
    pub(crate) fn insert(&self, id: String, session: Arc<T>) {
        self.lock().insert(id, session);
    }

    /// Session `id`, touched so that it does not expire; 404
    /// `no_such_upload` if there is none.
    pub(crate) fn get(&self, id: &str) -> AppResult<Arc<T>> {
        let session = self.lock().get(id).cloned().ok_or_else(|| AppError::no_such_upload(id))?;
        session.touch();
        Ok(session)
    }

    /// Takes session `id` out of the table; 404 `no_such_upload` if there
    /// is none.
    pub(crate) fn remove(&self, id: &str) -> AppResult<Arc<T>> {
        self.lock().remove(id).ok_or_else(|| AppError::no_such_upload(id))
    }

    /// Takes out the sessions idle for longer than `ttl`.
    pub(super) fn take_expired(&self, ttl: Duration) -> Vec<(String, Arc<T>)> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let expired: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| s.idle_since().is_some_and(|seen| now.duration_since(seen) > ttl))
            .map(|(id, _)| id.clone())
            .collect();
        expired.into_iter().filter_map(|id| sessions.remove(&id).map(|s| (id, s))).collect()
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A session's staging file: `.diffcopy-<id>.part` beside the target,
/// where the new version's bytes land before a commit.
#[derive(Debug)]
pub(super) struct Staging {
    dir: Dir,
    name: String,
    file: File,
}

fn staging_name(id: &str) -> String {
    format!("{RESERVED_PREFIX}{id}.part")
}

impl Staging {
    /// Creates session `id`'s staging file in `dir`, `size` bytes long (of
    /// holes); nothing is left behind if that fails.
    pub(crate) fn create(dir: Dir, id: &str, size: u64, path: &RelPath) -> AppResult<Self> {
        let name = staging_name(id);
        let file = dir.create_new(&name).map_err(|e| AppError::from_fs(e, path))?;
        if let Err(e) = file.set_len(size) {
            let _ = dir.remove(&name);
            return Err(AppError::from_fs(e.into(), path));
        }
        Ok(Self { dir, name, file })
    }

    /// Session `id`'s staging file in `dir`, left by an earlier run.
    pub(super) fn reopen(dir: Dir, id: &str) -> Option<Self> {
        let name = staging_name(id);
        let file = dir.open_existing(&name).ok()?;
        Some(Self { dir, name, file })
    }

    /// The open file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Writes `bytes` at `offset` and starts writing them back to the disk
    /// at once, so that the commit's fsync finds little left to do.
    pub(crate) fn write_at(&self, bytes: &[u8], offset: u64) -> std::io::Result<()> {
        self.file.write_all_at(bytes, offset)?;
        start_writeback(&self.file, offset..offset + bytes.len() as u64);
        Ok(())
    }

    /// The staging file of the new version of `path`, for a commit.
    pub(crate) fn staged<'a>(&'a self, path: &'a RelPath) -> Staged<'a> {
        Staged { path, dir: &self.dir, name: &self.name, file: &self.file }
    }

    /// Removes the file (best effort: a failure is logged).
    pub(crate) fn remove(&self, path: &RelPath) {
        if let Err(e) = self.dir.remove(&self.name) {
            tracing::warn!(path = %path, "could not remove staging file {}: {e}", self.name);
        }
    }
}

/// The data writes a session admitted and that are not done yet, so that a
/// commit, once it has stopped admitting more, waits for them.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    in_flight: Mutex<u32>,
    /// Notified whenever the last write in flight ends.
    done: Notify,
}

/// One admitted write, counted until dropped.
#[must_use]
pub(crate) struct Admitted<'a>(&'a Writes);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.0.in_flight);
        *in_flight -= 1;
        if *in_flight == 0 {
            self.0.done.notify_waiters();
        }
    }
}

impl Writes {
    /// Counts a write, until the guard drops. Call it holding the session's
    /// state lock, after checking that the session takes writes, so that a
    /// commit that takes that lock next finds the write counted.
    pub(super) fn admit(&self) -> Admitted<'_> {
        *lock(&self.in_flight) += 1;
        Admitted(self)
    }

    /// Waits until no admitted write is in flight.
    pub(super) async fn drained(&self) {
        loop {
            // Created before the check, so a write that ends in between still wakes it.
            let done = self.done.notified();
            if *lock(&self.in_flight) == 0 {
                return;
            }
            done.await;
        }
    }
}

/// 409 `commit_in_progress`: the session is committing already.
pub(super) fn commit_in_progress() -> AppError {
    AppError::new(ErrorKind::CommitInProgress, "this upload is committing")
}

/// The names of a batch's staging files, kept in the journal directory
/// (`batch-<id>.staged`, a line `<staging id> <path>` each, fsynced before
/// the first is made) while the batch runs: a batch a crash stops leaves
/// its staging files beside their targets, and the next start removes
/// them by it ([`recover_batches`]).
pub(crate) struct StagingRecord {
    dir: Dir,
    name: String,
    pub(crate) ids: Vec<String>,
}

impl StagingRecord {
    /// Records a staging file for each of `paths` (its id is in `ids`).
    pub(crate) fn write(root: &Root, paths: &[&RelPath]) -> Result<Self, FsError> {
        let dir = root.internal_dir(JOURNAL_DIR)?;
        let random = || crate::random::random_hex(16).map_err(FsError::Io);
        let name = format!("batch-{}.staged", random()?);
        let ids = paths.iter().map(|_| random()).collect::<Result<Vec<_>, _>>()?;
        let text: String = paths.iter().zip(&ids).map(|(path, id)| format!("{id} {path}\n")).collect();
        let file = dir.create_new(&name)?;
        file.write_all_at(text.as_bytes(), 0)?;
        file.sync_all()?;
        dir.sync()?;
        Ok(Self { dir, name, ids })
    }

    /// The batch is over: its staging files are renamed or removed.
    pub(crate) fn end(self) {
        if let Err(e) = self.dir.remove(&self.name) {
            tracing::warn!("removing the record of a batch {}: {e}", self.name);
        }
    }
}

/// Removes the staging files of batches a crash stopped (at start-up,
/// before anything is served); how many were there.
pub(crate) fn recover_batches(root: &Root) -> Result<usize, FsError> {
    let dir = root.internal_dir(JOURNAL_DIR)?;
    let mut removed = 0;
    for name in dir.names_starting_with("batch-")? {
        if !name.ends_with(".staged") {
            continue;
        }
        let mut text = String::new();
        if let Some(mut file) = dir.open_read(&name)? {
            std::io::Read::read_to_string(&mut file, &mut text)?;
        }
        for line in text.lines() {
            let Some((id, path)) = line.split_once(' ') else { continue };
            let Ok(path) = RelPath::parse(path) else { continue };
            if let Ok(parent) = root.parent_dir(&path, false)
                && let Some(staging) = Staging::reopen(parent, id)
            {
                staging.remove(&path);
                removed += 1;
            }
        }
        dir.remove(&name)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fake {
        seen: Mutex<Instant>,
        committing: bool,
        discarded: Mutex<bool>,
    }

    impl Session for Fake {
        fn touch(&self) {
            *self.seen.lock().unwrap() = Instant::now();
        }

        fn idle_since(&self) -> Option<Instant> {
            (!self.committing).then(|| *self.seen.lock().unwrap())
        }

        fn discard(&self) {
            *self.discarded.lock().unwrap() = true;
        }
    }

    fn fake(idle: Duration, committing: bool) -> Arc<Fake> {
        let seen = Instant::now().checked_sub(idle).expect("an instant in the past");
        Arc::new(Fake { seen: Mutex::new(seen), committing, discarded: Mutex::new(false) })
    }

    #[test]
    fn the_idle_expire_and_a_committing_or_touched_session_stays() {
        let table = SessionTable::default();
        let hour = Duration::from_secs(3600);
        table.insert("idle".into(), fake(hour, false));
        table.insert("committing".into(), fake(hour, true));
        table.insert("touched".into(), fake(hour, false));
        table.insert("fresh".into(), fake(Duration::ZERO, false));
        table.get("touched").unwrap();
        let expired: Vec<String> =
            table.take_expired(Duration::from_secs(60)).into_iter().map(|(id, _)| id).collect();
        assert_eq!(expired, ["idle"]);
        assert_eq!(table.len(), 3);
        assert_eq!(table.get("idle").unwrap_err().kind(), ErrorKind::NoSuchUpload);
        table.remove("fresh").unwrap();
        assert_eq!(table.remove("fresh").unwrap_err().kind(), ErrorKind::NoSuchUpload);
    }

    #[tokio::test]
    async fn a_commit_waits_for_the_writes_admitted_before_it() {
        let writes = Arc::new(Writes::default());
        writes.drained().await;
        let (admitted_tx, admitted_rx) = tokio::sync::oneshot::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        let writer = {
            let writes = writes.clone();
            tokio::task::spawn_blocking(move || {
                let _write = writes.admit();
                admitted_tx.send(()).unwrap();
                finish_rx.recv().unwrap();
            })
        };
        admitted_rx.await.unwrap();
        let mut drained = std::pin::pin!(writes.drained());
        assert!(futures_util::FutureExt::now_or_never(drained.as_mut()).is_none(), "a write is in flight");
        finish_tx.send(()).unwrap();
        drained.await;
        writer.await.unwrap();
    }
}
