//! A batch of small files committed into the directory (`serve/batch.rs`):
//! each file written to a staging file beside its target, one `syncfs`
//! for them all, then each renamed over its target (if the target is still
//! what the client expected) under its path's commit lock, and a second
//! `syncfs` for the renames. After a crash each file is its old or its new
//! version; a staging file a crash leaves is a `.diffcopy-` name, which
//! listings, downloads and clients never see.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::faults::{FaultHook, FaultPoint};
use crate::fs::{FileVersion, RelPath};
use crate::serve::batch::{Batches, Expected, Incoming, Landed};
use crate::serve::commit::{Expect, check_unchanged, set_mtime};
use crate::serve::error::{AppError, AppResult};
use crate::serve::hooks::Committed;
use crate::serve::sessions::{Staging, StagingRecord};
use crate::serve::state::AppState;

impl Batches for AppState {
    async fn commit_batch(self: &Arc<Self>, files: Vec<Incoming>) -> Vec<AppResult<Landed>> {
        // Every path's commit lock, in path order: two batches never wait
        // on each other in a circle (a batch names a path once).
        let mut paths: Vec<&RelPath> = files.iter().map(|f| &f.path).collect();
        paths.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut held = Vec::with_capacity(paths.len());
        for path in paths {
            held.push(self.locks.commit(path).await);
        }
        let state = self.clone();
        let count = files.len();
        let outcomes = tokio::task::spawn_blocking(move || state.commit_files(&files)).await;
        drop(held);
        outcomes.unwrap_or_else(|e| {
            (0..count).map(|_| Err(AppError::internal("committing a batch", e.to_string()))).collect()
        })
    }

    async fn report(self: &Arc<Self>, done: Committed, sub: Option<String>) {
        if let Some(hooks) = &self.hooks {
            hooks.committed(&done, sub.as_deref(), "batch", std::time::Instant::now()).await;
        }
    }
}

impl AppState {
    /// Commits `files` (blocking I/O, the paths' commit locks held).
    fn commit_files(&self, files: &[Incoming]) -> Vec<AppResult<Landed>> {
        let paths: Vec<&RelPath> = files.iter().map(|f| &f.path).collect();
        let record = match StagingRecord::write(&self.root, &paths) {
            Ok(record) => record,
            Err(e) => {
                return files.iter().map(|_| Err(AppError::internal("recording a batch", &e))).collect();
            }
        };
        let outcomes = self.commit_recorded(files, &record.ids);
        record.end();
        outcomes
    }

    /// [`Self::commit_files`] once the staging files' names are recorded.
    fn commit_recorded(&self, files: &[Incoming], ids: &[String]) -> Vec<AppResult<Landed>> {
        let mut staged: Vec<AppResult<Staging>> =
            files.iter().zip(ids).map(|(f, id)| self.stage(f, id)).collect();
        if let Err(e) = self.root.sync_fs() {
            for (file, staging) in files.iter().zip(&mut staged) {
                if let Ok(s) = staging {
                    s.remove(&file.path);
                }
                *staging = Err(AppError::internal("making a batch durable", &e));
            }
        }
        let mut outcomes: Vec<AppResult<Landed>> = files
            .iter()
            .zip(staged)
            .map(|(file, staging)| {
                let staging = staging?;
                let installed = self.install(file, &staging);
                if installed.is_err() {
                    staging.remove(&file.path);
                }
                installed
            })
            .collect();
        if let Err(e) = self.root.sync_fs() {
            tracing::error!("a batch's renames may not be durable: {e}");
            for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *outcome = Err(AppError::internal("making a batch's renames durable", &e));
            }
        }
        outcomes
    }

    /// Writes `file` to a staging file beside its target, with the old
    /// file's permissions and the mtime the client gave.
    fn stage(&self, file: &Incoming, id: &str) -> AppResult<Staging> {
        let path = &file.path;
        let dir = self.root.parent_dir(path, true).map_err(|e| AppError::from_fs(e, path))?;
        let staging = Staging::create(dir, id, 0, path)?;
        let written = (|| {
            let out = staging.file();
            out.write_all_at(&file.bytes, 0)?;
            if let Some(meta) = self.root.open_read(path).ok().and_then(|f| f.metadata().ok()) {
                out.set_permissions(meta.permissions())?;
            }
            set_mtime(out, file.mtime.and_then(crate::fs::mtime::from_ms))
        })();
        if let Err(e) = written {
            staging.remove(path);
            return Err(AppError::from_fs(e.into(), path));
        }
        Ok(staging)
    }

    /// Renames a staged file over its target if the target is what the
    /// client expected (412 `target_changed` if not).
    fn install(&self, file: &Incoming, staging: &Staging) -> AppResult<Landed> {
        let path = &file.path;
        self.applies.check_applied(path)?;
        let expect = match &file.expected {
            Expected::Any => Expect::Any,
            Expected::Absent => Expect::Absent,
            Expected::Etag(etag) => Expect::Etag(etag),
        };
        check_unchanged(&self.root, path, None, expect)?;
        let staged = staging.staged(path);
        staged.dir.rename(staged.name, path.file_name()).map_err(|e| AppError::from_fs(e, path))?;
        FaultHook::at(self.config.fault_hook.as_ref(), FaultPoint::Commit("batch-renamed"));
        // After the rename, which changes the ctime that the ETag includes.
        let version = FileVersion::of(staged.file).map_err(|e| AppError::internal("reading metadata", e))?;
        Ok(Landed { etag: version.etag(), commit_mode: "replace" })
    }
}
