//! One protocol v2 upload: the search rounds, then the literal data landing
//! in a staging file beside the target, then the commit.

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use diffcopy_core::delta::{DeltaParams, Matcher, Need, Plan, Source};

use super::base::{Aligned, BaseFile, aligned_hashes};
use super::journal::{DeltaJournal, DeltaRecord, log_received};
use crate::faults::{FaultHook, FaultPoint};
use crate::frames::{Arrivals, whole_blocks};
use crate::fs::{DiskWrites, RelPath};
use crate::serve::commit::{Base, Copy, copy_in};
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::sessions::{Session, Staging, Writes, commit_in_progress, lock};
use crate::serve::v2::{
    DeltaStatus, Hashes, Literal, Progress, RangeSet, Work, expected_hashes_len, literal_frames, missing,
    missing_data,
};

/// A protocol v2 upload in progress.
#[derive(Debug)]
pub(crate) struct DeltaUpload {
    /// The session id (32 hex digits).
    pub(crate) id: String,
    /// The target path.
    pub(crate) path: RelPath,
    /// The `sub` of the token that opened it.
    pub(crate) owner: Option<String>,
    /// The new file's size, the seed and the levels.
    pub(crate) params: DeltaParams,
    /// The target's version when the session opened, if it existed.
    pub(super) base: Option<Arc<BaseFile>>,
    /// The ETag the client said it compared against, if any.
    pub(super) base_etag: Option<String>,
    pub(super) staging: Staging,
    /// Held while data is written into `staging`: one write at a time.
    /// Measured on ext4 (1 GiB of literal data, 4 requests in flight): two
    /// threads writing one file spun on its inode lock for 15% of the
    /// server's time.
    pub(super) writing: Mutex<()>,
    pub(super) aligned: Option<Aligned>,
    pub(super) state: Mutex<State>,
    /// Data writes in flight.
    pub(super) writes: Writes,
}

/// Where a session is.
#[derive(Debug)]
pub(super) enum Phase {
    /// Waiting for the hashes of the next level.
    Searching(Box<Matcher>),
    /// A round of the search is running.
    Busy,
    /// The search is over: literal data may arrive.
    Receiving { plan: Arc<Plan>, received: RangeSet },
    /// A commit is running.
    Committing { plan: Arc<Plan> },
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) phase: Phase,
    pub(super) last_seen: Instant,
    /// The new file's hash, from the level-0 hashes.
    pub(super) file_hash: Option<u128>,
    /// The data log and its length.
    pub(super) log: Option<(File, u64)>,
    /// The search's work reported so far.
    pub(super) searched: Work,
    /// The hashes of the new file's blocks the search found whole, by
    /// index: the commit rehashes only the others.
    pub(super) known: Arc<Vec<Option<u128>>>,
    /// The blocks that arrived whole in one data frame (in this process's
    /// life: a session resumed after a restart has none), whose hashes the
    /// commit need not read back either.
    pub(super) arrived: Arrivals,
    /// The copy of the data the plan moves within the old version into the
    /// staging file, begun when the search ends so that it overlaps the
    /// literal data's arrival (in this process's life).
    pub(super) moved_in: MovedIn,
}

impl State {
    /// A session's state in `phase`, with the file hash and data log it has
    /// (a session resumed from its journal), nothing searched or arrived yet
    /// in this process.
    pub(super) fn new(phase: Phase, file_hash: Option<u128>, log: Option<(File, u64)>) -> Self {
        Self {
            phase,
            last_seen: Instant::now(),
            file_hash,
            log,
            searched: Work::default(),
            known: Arc::new(Vec::new()),
            arrived: Arrivals::default(),
            moved_in: MovedIn::default(),
        }
    }
}

/// Where the copy of the moved data into the staging file is.
#[derive(Debug, Default)]
pub(super) enum MovedIn {
    /// Not begun (a session resumed after a restart, or nothing moves):
    /// the commit copies.
    #[default]
    No,
    /// Under way on a blocking thread, which answers with the bytes it
    /// wrote to the disk ([`DiskWrites`]).
    Copying(tokio::task::JoinHandle<AppResult<Option<u64>>>),
    /// Done: the staging file holds it; the bytes that took on the disk.
    Done(Option<u64>),
}

impl DeltaUpload {
    /// The exact length of the next hashes message, so its body can be
    /// refused as soon as it is longer; `None` unless the search waits for one.
    pub(crate) fn next_hashes_len(&self) -> Option<u64> {
        let state = lock(&self.state);
        let Phase::Searching(matcher) = &state.phase else { return None };
        expected_hashes_len(&self.params, matcher)
    }

    /// A round of the search: the hashes of the next level in, what is
    /// still needed out.
    pub(super) async fn hashes(
        self: &Arc<Self>,
        body: Bytes,
        journal: &DeltaJournal,
    ) -> AppResult<(Need, Work)> {
        let matcher = {
            let mut state = lock(&self.state);
            match std::mem::replace(&mut state.phase, Phase::Busy) {
                Phase::Searching(matcher) => matcher,
                Phase::Busy => {
                    state.phase = Phase::Busy;
                    return Err(AppError::new(
                        ErrorKind::RoundInProgress,
                        "a round of the search is running",
                    ));
                }
                other => {
                    state.phase = other;
                    return Err(AppError::new(
                        ErrorKind::SearchOver,
                        "the search is over; send the literal data",
                    ));
                }
            }
        };
        let restore = |matcher: Box<Matcher>| lock(&self.state).phase = Phase::Searching(matcher);
        let level0 = body.starts_with(b"DCB2");
        let aligned = if level0 { aligned_hashes(self.aligned.as_ref()).await } else { None };
        let upload = self.clone();
        let ran = tokio::task::spawn_blocking(move || {
            let mut matcher = matcher;
            let result = upload.round(&mut matcher, &body, aligned.as_deref().map(Vec::as_slice));
            (matcher, result)
        })
        .await;
        let (matcher, result) = ran.map_err(|e| AppError::internal("searching", e))?;
        let (need, file_hash) = match result {
            Ok(done) => done,
            Err(e) => {
                restore(matcher);
                return Err(e);
            }
        };
        let mut state = lock(&self.state);
        if let Some(hash) = file_hash {
            state.file_hash = Some(hash);
        }
        // The round's share of the search's work.
        let round = Work::since(&matcher, &mut state.searched);
        match matcher.plan() {
            Some(plan) => {
                let log =
                    journal.plan(&self.id, &plan.encode()).map_err(|e| AppError::from_fs(e, &self.path))?;
                state.log = Some((log, 0));
                state.known = Arc::new(matcher.known_block_hashes());
                let plan = Arc::new(plan);
                let moved = moved_copies(&plan);
                if let Some(base) = self.base.as_ref().filter(|_| !moved.is_empty()) {
                    // What moved is known now: copy it while the literal data
                    // arrives, instead of at the commit.
                    let (upload, version) = (self.clone(), base.version);
                    state.moved_in = MovedIn::Copying(tokio::task::spawn_blocking(move || {
                        let written = DiskWrites::of_thread();
                        let base = upload.base.as_ref().map(|b| Base { file: &b.file, version });
                        if let Some(base) = &base {
                            copy_in(&upload.staging.staged(&upload.path), base, &moved)?;
                        }
                        Ok(written.so_far())
                    }));
                }
                state.phase = Phase::Receiving { plan, received: RangeSet::default() };
            }
            None => state.phase = Phase::Searching(matcher),
        }
        state.last_seen = Instant::now();
        Ok((need, round))
    }

    /// Decodes one hashes message and runs the matcher on it (blocking).
    fn round(
        &self,
        matcher: &mut Matcher,
        body: &[u8],
        aligned: Option<&[u128]>,
    ) -> AppResult<(Need, Option<u128>)> {
        let hashes = Hashes::decode(body)?;
        let mut old = self.base.as_ref().map(|base| base.reader());
        let need =
            hashes.search_in(matcher, old.as_mut(), aligned, |e| AppError::from_fs(e.into(), &self.path))?;
        Ok((need, hashes.file_hash()))
    }

    /// Takes a body of literal frames (blocking): each must lie in a range
    /// the plan sends as literal data; returns the bytes stored.
    pub(crate) fn put_data(&self, body: &[u8], faults: Option<&FaultHook>) -> AppResult<u64> {
        let (plan, _in_flight) = {
            let state = lock(&self.state);
            let Phase::Receiving { plan, .. } = &state.phase else {
                return Err(AppError::new(ErrorKind::NotReceiving, "this upload does not take data now"));
            };
            (plan.clone(), self.writes.admit())
        };
        let mut stored = 0u64;
        for Literal { range, bytes, stored: on_wire } in literal_frames(body, &plan)? {
            // Hashed before it is written, outside the locks: the commit
            // then reads back only what did not arrive whole.
            let whole = whole_blocks(&self.params, &range, &bytes);
            FaultHook::at(faults, FaultPoint::DataWrite { offset: range.start });
            let writing = lock(&self.writing);
            self.staging
                .write_at(&bytes, range.start)
                .map_err(|e| AppError::from_fs(e.into(), &self.path))?;
            drop(writing);
            stored += on_wire;
            let mut state = lock(&self.state);
            if let Some((log, len)) = &mut state.log
                && log_received(log, *len, &range)
            {
                *len += 16;
            }
            state.arrived.note(&self.params, &range, whole);
            if let Phase::Receiving { received, .. } = &mut state.phase {
                received.insert(range);
            }
            state.last_seen = Instant::now();
        }
        Ok(stored)
    }

    /// The session as the journal keeps it.
    pub(super) fn record(&self) -> DeltaRecord {
        DeltaRecord {
            id: self.id.clone(),
            path: self.path.to_string(),
            size: self.params.file_size,
            block_size: self.params.levels.block_size(),
            seed: format!("{:016x}", self.params.seed),
            base_etag: self.base_etag.clone(),
            base_version: self.base.as_ref().map(|b| b.version.etag()),
            file_hash: lock(&self.state).file_hash.map(|h| format!("{h:032x}")),
            owner: self.owner.clone(),
        }
    }

    /// The session's state for resuming.
    pub(crate) fn status(&self) -> DeltaStatus {
        let state = lock(&self.state);
        let progress = match &state.phase {
            Phase::Searching(matcher) => Progress::Searching { level: matcher.expected().map(|e| e.0) },
            Phase::Busy => Progress::Searching { level: None },
            Phase::Receiving { plan, received } => Progress::Receiving { plan, received },
            Phase::Committing { plan } => Progress::Committing { plan },
        };
        DeltaStatus::new(&self.id, self.path.as_str(), self.params.file_size, progress)
    }

    /// Starts the commit: the data must be complete; waits for the writes
    /// admitted before.
    pub(super) async fn begin_commit(&self) -> AppResult<ToCommit> {
        let plan = {
            let mut state = lock(&self.state);
            let hash = state.file_hash;
            let (plan, gaps) = match &state.phase {
                Phase::Receiving { plan, received } => (plan.clone(), missing(plan, received)),
                Phase::Committing { .. } => return Err(commit_in_progress()),
                _ => return Err(AppError::new(ErrorKind::SearchNotOver, "the search is not over yet")),
            };
            if !gaps.is_empty() {
                return Err(missing_data(&gaps));
            }
            if hash.is_none() {
                return Err(AppError::new(ErrorKind::SearchNotOver, "no file hash was sent"));
            }
            state.phase = Phase::Committing { plan: plan.clone() };
            plan
        };
        self.writes.drained().await;
        let copying = std::mem::take(&mut lock(&self.state).moved_in);
        let moved_in = match copying {
            // Failed (a full disk, say): the commit copies, and reports it.
            MovedIn::Copying(task) => task.await.ok().and_then(Result::ok).map_or(MovedIn::No, MovedIn::Done),
            other => other,
        };
        let mut state = lock(&self.state);
        let (moved_copied, moved_written) = match moved_in {
            MovedIn::Done(disk_bytes) => (true, disk_bytes),
            _ => (false, Some(0)),
        };
        state.moved_in = moved_in;
        let known = Arc::new(state.arrived.fill(&state.known, self.params.block_count()));
        let file_hash = state.file_hash.unwrap_or_default();
        Ok(ToCommit { plan, file_hash, known, moved_copied, moved_written })
    }

    /// Lets data arrive again after a commit failed for a reason the client
    /// can mend (the target changed stays fatal: the caller ends the session).
    pub(super) fn end_commit(&self) {
        let mut state = lock(&self.state);
        if let Phase::Committing { plan } = &state.phase {
            let plan = plan.clone();
            let received = RangeSet::from_ranges(plan.literal_ranges());
            state.phase = Phase::Receiving { plan, received };
        }
    }
}

impl Session for DeltaUpload {
    fn touch(&self) {
        lock(&self.state).last_seen = Instant::now();
    }

    fn idle_since(&self) -> Option<Instant> {
        let state = lock(&self.state);
        (!matches!(state.phase, Phase::Committing { .. } | Phase::Busy)).then_some(state.last_seen)
    }

    fn discard(&self) {
        self.staging.remove(&self.path);
    }
}

/// The data `plan` finds elsewhere in the old version: what the staging
/// file takes from it before the commit installs the new version.
pub(super) fn moved_copies(plan: &Plan) -> Vec<Copy> {
    plan.segments()
        .iter()
        .filter_map(|s| match s.source {
            Source::Old(at) if at != s.new.start => Some(Copy { new: s.new.clone(), old_start: at }),
            _ => None,
        })
        .collect()
}

/// What a commit checks and builds.
pub(super) struct ToCommit {
    pub(super) plan: Arc<Plan>,
    /// The file hash the client sent.
    pub(super) file_hash: u128,
    /// The block hashes the commit need not read back: those the search
    /// found ([`State::known`]) and those that arrived whole ([`State::arrived`]).
    pub(super) known: Arc<Vec<Option<u128>>>,
    /// Whether the data the plan moves is in the staging file already
    /// ([`State::moved_in`]).
    pub(super) moved_copied: bool,
    /// The bytes that copy wrote to the disk (0 when there was none;
    /// `None` where the kernel does not say).
    pub(super) moved_written: Option<u64>,
}
