//! A protocol v2 upload kept in the bucket, so that any instance serves
//! any of its requests and one killed mid-upload loses nothing:
//!
//! * `open`: the request, the seed and the base version, written once;
//! * `round/<n>`: each search round's hashes message, written before the
//!   answer goes out (`If-None-Match: *`, so two instances cannot both run
//!   round n). An instance without the session's matcher in memory replays
//!   the rounds: the search is deterministic, so it reaches the same state;
//! * `searched`: the search's outcome (plan, file hash, the block hashes
//!   it found whole), written by the last round;
//! * `data/<a>-<b>`: the literal bytes, one object per contiguous run of a
//!   data request.
//!
//! Each instance caches what it has read or computed; the store decides.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use diffcopy_core::delta::{DeltaParams, Levels, Matcher, Need, Plan};
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};

use super::BucketStore;
use super::cache::Arrived;
use super::keys::data_range;
use super::reader::{ObjectReader, hash_blocks};
use crate::frames::whole_blocks;
use crate::s3::{Condition, S3Error};
use crate::serve::commit::target_changed;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::served::SessionScope;
use crate::serve::v2::{
    DeltaStatus, Hashes, Literal, NewDelta, Progress, RangeSet, Work, expected_hashes_len, literal_frames,
};

/// Literal bytes of one data request, borrowed from its body or decoded.
enum Run {
    Slice(Bytes),
    Owned(Vec<u8>),
}

impl Run {
    fn extend(&mut self, more: &Run) {
        let more: &[u8] = match more {
            Run::Slice(b) => b,
            Run::Owned(v) => v,
        };
        match self {
            Run::Owned(v) => v.extend_from_slice(more),
            Run::Slice(b) => {
                let mut v = b.to_vec();
                v.extend_from_slice(more);
                *self = Run::Owned(v);
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Run::Slice(b) => b,
            Run::Owned(v) => Bytes::from(v),
        }
    }
}

/// An upload as opened: `sessions/<id>/open`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Opened {
    pub(crate) id: String,
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) block_size: u32,
    /// 16 hex digits.
    pub(crate) seed: String,
    /// The version the search reads, if the path had one.
    pub(crate) base: Option<BaseVersion>,
    /// The ETag the client compared against, if any.
    pub(crate) base_etag: Option<String>,
    pub(crate) whole: bool,
    /// The `sub` of the token that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<String>,
}

/// The version an upload's plan copies from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BaseVersion {
    pub(crate) version: String,
    pub(crate) size: u64,
    /// The pointer's store ETag when the upload opened: the commit's `If-Match`.
    pub(crate) pointer_etag: String,
}

impl Opened {
    pub(crate) fn params(&self) -> AppResult<DeltaParams> {
        let seed =
            u64::from_str_radix(&self.seed, 16).map_err(|e| AppError::internal("a session's seed", e))?;
        let levels =
            Levels::for_block(self.block_size).map_err(|e| AppError::internal("a session's levels", e))?;
        Ok(DeltaParams { file_size: self.size, seed, levels })
    }

    fn old_len(&self) -> u64 {
        if self.whole { 0 } else { self.base.as_ref().map_or(0, |b| b.size) }
    }
}

/// The search's outcome: `sessions/<id>/searched`.
#[derive(Debug)]
pub(crate) struct Searched {
    pub(crate) file_hash: u128,
    pub(crate) known: Vec<Option<u128>>,
    pub(crate) plan: Plan,
}

const SEARCHED_MAGIC: &[u8; 4] = b"DCS1";

impl Searched {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + 17 * self.known.len());
        out.extend_from_slice(SEARCHED_MAGIC);
        out.extend_from_slice(&self.file_hash.to_le_bytes());
        out.extend_from_slice(&(self.known.len() as u64).to_le_bytes());
        for hash in &self.known {
            out.push(u8::from(hash.is_some()));
            out.extend_from_slice(&hash.unwrap_or(0).to_le_bytes());
        }
        out.extend_from_slice(&self.plan.encode());
        out
    }

    fn decode(bytes: &[u8], old_len: u64) -> Option<Self> {
        let rest = bytes.strip_prefix(SEARCHED_MAGIC)?;
        let file_hash = u128::from_le_bytes(rest.get(..16)?.try_into().ok()?);
        let count = u64::from_le_bytes(rest.get(16..24)?.try_into().ok()?) as usize;
        let table = rest.get(24..24 + count.checked_mul(17)?)?;
        let known = table
            .chunks_exact(17)
            .map(|e| (e[0] == 1).then(|| u128::from_le_bytes(e[1..].try_into().unwrap_or_default())))
            .collect();
        let plan = Plan::decode(&rest[24 + 17 * count..], old_len).ok()?;
        Some(Self { file_hash, known, plan })
    }
}

/// What an instance holds of one session.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) opened: Opened,
    pub(crate) params: DeltaParams,
    /// Rounds the matcher has run.
    rounds: usize,
    matcher: Option<Box<Matcher>>,
    searched: Option<Arc<Searched>>,
    /// The search's work reported so far (for the stats).
    reported: Work,
    /// Set when this instance ended the session (committed or aborted it):
    /// a request that waited for the session's lock meanwhile finds it gone.
    pub(crate) ended: bool,
}

impl Live {
    /// An upload this instance knows nothing of yet but how it opened.
    fn new(opened: Opened) -> AppResult<Self> {
        Ok(Self {
            params: opened.params()?,
            opened,
            rounds: 0,
            matcher: None,
            searched: None,
            reported: Work::default(),
            ended: false,
        })
    }
}

/// A store request that failed, as the client hears it: 503
/// `store_unavailable` (try again) when the store did not answer, throttled
/// or failed on its side; else 502 `store_failed`.
pub(super) fn store_error(what: &str, e: S3Error) -> AppError {
    let kind = if e.is_transient() { ErrorKind::StoreUnavailable } else { ErrorKind::StoreFailed };
    tracing::warn!("the object store failed {what}: {e}");
    AppError::new(kind, format!("the object store failed {what}: {e}"))
}

/// A read of a version through [`super::reader::ObjectReader`] that failed.
pub(super) fn store_read_error(what: &str, e: std::io::Error) -> AppError {
    match e.into_inner().map(|inner| inner.downcast::<S3Error>()) {
        Some(Ok(s3)) => store_error(what, *s3),
        Some(Err(other)) => {
            AppError::new(ErrorKind::StoreFailed, format!("the object store failed {what}: {other}"))
        }
        None => AppError::new(ErrorKind::StoreFailed, format!("the object store failed {what}")),
    }
}

impl BucketStore {
    /// Opens an upload: checks the request and the base, writes `open`.
    pub(super) async fn open_upload(&self, request: NewDelta, owner: Option<String>) -> AppResult<Opened> {
        let (path, levels) = request.check(self.max_file_size)?;
        self.check_key(&path)?;
        let block_size = levels.block_size();
        let current = self.current(path.as_str()).await.map_err(|e| store_error("reading a pointer", e))?;
        if let Some(expected) = &request.base_etag
            && current.as_ref().map(|c| c.head.etag()).as_ref() != Some(expected)
        {
            return Err(target_changed(&path));
        }
        let id = crate::random::random_hex(16).map_err(|e| AppError::internal("making a session id", e))?;
        let seed = crate::random::random_hex(8).map_err(|e| AppError::internal("making a seed", e))?;
        let opened = Opened {
            id: id.clone(),
            path: path.to_string(),
            size: request.size,
            block_size,
            seed,
            base: current.map(|c| BaseVersion {
                version: c.head.version,
                size: c.head.size,
                pointer_etag: c.pointer_etag,
            }),
            base_etag: request.base_etag,
            whole: request.whole,
            owner,
        };
        let body =
            serde_json::to_vec(&opened).map_err(|e| AppError::internal("writing an upload's record", e))?;
        let body = Bytes::from(body);
        self.bucket
            .put(&self.keys.opened(&id), body, Condition::IfNoneMatch)
            .await
            .map_err(|e| store_error("opening an upload", e))?;
        self.cache.insert(&id, Live::new(opened.clone())?);
        Ok(opened)
    }

    /// Session `id`, from this instance's memory or from the store.
    pub(crate) async fn session(&self, id: &str) -> AppResult<Arc<tokio::sync::Mutex<Live>>> {
        if let Some(live) = self.cache.get(id) {
            return Ok(live);
        }
        let opened = self.read_opened(id).await?.ok_or_else(|| AppError::no_such_upload(id))?;
        Ok(self.cache.insert(id, Live::new(opened)?))
    }

    /// How session `id` opened, from the store; `None` if it does not exist.
    async fn read_opened(&self, id: &str) -> AppResult<Option<Opened>> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(body) = self
            .bucket
            .get(&self.keys.opened(id), None)
            .await
            .map_err(|e| store_error("reading an upload", e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| AppError::internal("reading an upload's record", e))
    }

    /// The path and owner of session `id`, if it exists: from this
    /// instance's memory unless a request holds the session (a commit, a
    /// search round), else from the store.
    pub(crate) async fn session_scope(&self, id: &str) -> AppResult<Option<SessionScope>> {
        let scope = |opened: &Opened| SessionScope { path: opened.path.clone(), owner: opened.owner.clone() };
        // Through this instance's memory, so that the request's handler
        // finds the session there rather than reading it again.
        let live = match self.session(id).await {
            Ok(live) => live,
            Err(e) if e.kind() == ErrorKind::NoSuchUpload => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Ok(live) = live.try_lock() {
            return Ok(Some(scope(&live.opened)));
        }
        Ok(self.read_opened(id).await?.as_ref().map(scope))
    }

    /// Brings `live` up to what the store holds: the search's outcome if
    /// it is over, else a matcher that has run every stored round.
    async fn catch_up(&self, live: &mut Live) -> AppResult<()> {
        if live.searched.is_some() {
            return Ok(());
        }
        let id = live.opened.id.clone();
        let searched = self
            .bucket
            .get(&self.keys.searched(&id), None)
            .await
            .map_err(|e| store_error("reading a search", e))?;
        if let Some(bytes) = searched {
            let searched = Searched::decode(&bytes, live.opened.old_len())
                .ok_or_else(|| AppError::internal("reading a search", "the stored outcome is not valid"))?;
            live.searched = Some(Arc::new(searched));
            live.matcher = None;
            return Ok(());
        }
        let rounds =
            self.bucket.list(&self.keys.rounds(&id)).await.map_err(|e| store_error("listing rounds", e))?;
        if live.matcher.is_some() && live.rounds == rounds.len() {
            return Ok(());
        }
        let mut matcher = Box::new(Matcher::new(live.params, live.opened.old_len()));
        for (n, round) in rounds.iter().enumerate() {
            let body =
                self.bucket.get(&round.key, None).await.map_err(|e| store_error("reading a round", e))?;
            let body =
                body.ok_or_else(|| AppError::internal("replaying a search", format!("round {n} is gone")))?;
            matcher = self.search(&live.opened, matcher, body).await?.0;
        }
        live.rounds = rounds.len();
        live.matcher = Some(matcher);
        Ok(())
    }

    /// Runs one round on a blocking thread, reading the base from the store.
    async fn search(
        &self,
        opened: &Opened,
        mut matcher: Box<Matcher>,
        body: Bytes,
    ) -> AppResult<(Box<Matcher>, Need, Option<u128>)> {
        let base = match (&opened.base, opened.whole) {
            (Some(base), false) => {
                Some(ObjectReader::new(self.bucket.clone(), self.keys.version(&base.version), base.size))
            }
            _ => None,
        };
        let path = opened.path.clone();
        // Level 0 first compares every block with the base's at the same
        // offset: those hashes come from parallel GETs of the whole base,
        // not from the search's reads one block at a time.
        let aligned = match (&opened.base, opened.whole, body.starts_with(b"DCB2")) {
            (Some(base), false, true) => {
                let seed = matcher.params().seed;
                let key = self.keys.version(&base.version);
                let stretches: Vec<Vec<u128>> =
                    hash_blocks(self.bucket.clone(), key, base.size, opened.block_size, move |b| {
                        diffcopy_core::delta::block_hash(seed, b)
                    })
                    .try_collect()
                    .await
                    .map_err(|e| store_error("reading the old version", e))?;
                Some(stretches.concat())
            }
            _ => None,
        };
        tokio::task::spawn_blocking(move || {
            let hashes = Hashes::decode(&body)?;
            let mut base = base;
            let need = hashes.search_in(&mut matcher, base.as_mut(), aligned.as_deref(), |e| {
                store_read_error(&format!("reading the old version of {path}"), e)
            })?;
            Ok((matcher, need, hashes.file_hash()))
        })
        .await
        .map_err(|e| AppError::internal("searching", e))?
    }

    /// The exact length of the next hashes message of `live`.
    pub(crate) async fn next_hashes_len(&self, live: &mut Live) -> AppResult<u64> {
        self.catch_up(live).await?;
        let over = || AppError::new(ErrorKind::SearchOver, "this upload expects no hashes now");
        let matcher = live.matcher.as_ref().ok_or_else(over)?;
        expected_hashes_len(&live.params, matcher).ok_or_else(over)
    }

    /// One search round: runs it, stores its message, and the outcome when
    /// it was the last. The caller has called [`Self::next_hashes_len`].
    pub(crate) async fn round(&self, live: &mut Live, body: Bytes) -> AppResult<(Need, Work)> {
        let matcher = live
            .matcher
            .take()
            .ok_or_else(|| AppError::new(ErrorKind::SearchOver, "this upload expects no hashes now"))?;
        let (matcher, need, file_hash) = match self.search(&live.opened, matcher, body.clone()).await {
            Ok(done) => done,
            // The matcher is gone with the failed round: the next request
            // replays the stored rounds.
            Err(e) => return Err(e),
        };
        let id = live.opened.id.clone();
        match self.bucket.put(&self.keys.round(&id, live.rounds), body, Condition::IfNoneMatch).await {
            Ok(_) => {}
            Err(e) if e.is_precondition_failed() => {
                live.rounds = usize::MAX;
                return Err(AppError::new(
                    ErrorKind::RoundInProgress,
                    "another request ran this round of the search",
                ));
            }
            Err(e) => {
                live.rounds = usize::MAX;
                return Err(store_error("storing a round", e));
            }
        }
        live.rounds += 1;
        let work = Work::since(&matcher, &mut live.reported);
        match matcher.plan() {
            Some(plan) => {
                let file_hash = match (file_hash, self.file_hash_of(&id).await?) {
                    (Some(hash), _) | (None, Some(hash)) => hash,
                    (None, None) => {
                        return Err(AppError::internal("ending a search", "no file hash was sent"));
                    }
                };
                let searched = Searched { file_hash, known: matcher.known_block_hashes(), plan };
                self.bucket
                    .put(&self.keys.searched(&id), Bytes::from(searched.encode()), Condition::None)
                    .await
                    .map_err(|e| store_error("storing a search", e))?;
                live.searched = Some(Arc::new(searched));
            }
            None => live.matcher = Some(matcher),
        }
        Ok((need, work))
    }

    /// The file hash in session `id`'s level-0 message.
    async fn file_hash_of(&self, id: &str) -> AppResult<Option<u128>> {
        let body = self
            .bucket
            .get(&self.keys.round(id, 0), None)
            .await
            .map_err(|e| store_error("reading a round", e))?;
        Ok(body.and_then(|b| diffcopy_core::delta::BlockHashes::decode(&b).ok()).map(|h| h.file_hash()))
    }

    /// The search's outcome, once it is over.
    pub(crate) async fn searched(&self, live: &mut Live) -> AppResult<Arc<Searched>> {
        if live.ended {
            return Err(AppError::no_such_upload(&live.opened.id));
        }
        self.catch_up(live).await?;
        live.searched
            .clone()
            .ok_or_else(|| AppError::new(ErrorKind::NotReceiving, "this upload does not take data now"))
    }

    /// Stores a body of literal frames: each frame must lie in a literal
    /// range of `searched.plan`; returns the bytes taken off the wire.
    pub(crate) async fn put_data(
        &self,
        id: &str,
        params: &DeltaParams,
        searched: &Searched,
        body: &Bytes,
    ) -> AppResult<u64> {
        // Runs of contiguous frames; a run of one raw frame is a slice of
        // the body, not a copy.
        let mut runs: Vec<(Range<u64>, Run)> = Vec::new();
        let mut stored = 0u64;
        for Literal { range, bytes, stored: on_wire } in literal_frames(body, &searched.plan)? {
            stored += on_wire;
            let bytes = match bytes {
                Cow::Borrowed(raw) => Run::Slice(body.slice_ref(raw)),
                Cow::Owned(decoded) => Run::Owned(decoded),
            };
            match runs.last_mut() {
                Some((run, data)) if run.end == range.start => {
                    run.end = range.end;
                    data.extend(&bytes);
                }
                _ => runs.push((range, bytes)),
            }
        }
        // The commit may have begun since the handler looked.
        self.refuse_if_committing(id).await?;
        // Data objects are written once: a range sent again (a retry, or
        // other bytes through another instance) leaves the first, and its
        // hashes stay those of the request that wrote it.
        let puts = runs.into_iter().map(|(range, data)| {
            let key = self.keys.data(id, &range);
            let data = data.into_bytes();
            async move {
                match self.bucket.put(&key, data.clone(), Condition::IfNoneMatch).await {
                    Ok(_) => {}
                    Err(e) if e.is_precondition_failed() => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                }
                let blocks = whole_blocks(params, &range, &data);
                Ok::<_, S3Error>(
                    blocks.into_iter().map(|(i, hash)| (i, Arrived { key: key.clone(), hash })).collect(),
                )
            }
        });
        let mut arrived = Vec::new();
        for result in futures_util::future::join_all(puts).await {
            arrived.extend(result.map_err(|e| store_error("storing literal data", e))?);
        }
        self.cache.arrived(id, arrived);
        Ok(stored)
    }

    /// The literal data objects stored for session `id`, in start order
    /// (key order, the offsets being zero-padded): (range, key).
    pub(super) async fn data_objects(&self, id: &str) -> AppResult<Vec<(Range<u64>, String)>> {
        let prefix = self.keys.data_prefix(id);
        let listed = self.bucket.list(&prefix).await.map_err(|e| store_error("listing literal data", e))?;
        Ok(listed
            .into_iter()
            .filter_map(|o| {
                let range = data_range(o.key.strip_prefix(&prefix)?)?;
                (o.size == range.end - range.start).then_some((range, o.key))
            })
            .collect())
    }

    /// Session `live`'s state for resuming.
    pub(crate) async fn status(&self, live: &mut Live) -> AppResult<DeltaStatus> {
        self.catch_up(live).await?;
        let id = live.opened.id.clone();
        let at = |progress| DeltaStatus::new(&id, &live.opened.path, live.opened.size, progress);
        let Some(searched) = &live.searched else {
            let level = live.matcher.as_ref().and_then(|m| m.expected()).map(|e| e.0);
            return Ok(at(Progress::Searching { level }));
        };
        let plan = &searched.plan;
        if self.committing(&id).await? {
            return Ok(at(Progress::Committing { plan }));
        }
        let received = RangeSet::from_ranges(self.data_objects(&id).await?.into_iter().map(|(r, _)| r));
        Ok(at(Progress::Receiving { plan, received: &received }))
    }

    /// Whether a commit of session `id` has begun, here or at another instance.
    async fn committing(&self, id: &str) -> AppResult<bool> {
        let marker = self
            .bucket
            .get(&self.keys.committing(id), None)
            .await
            .map_err(|e| store_error("reading an upload", e))?;
        Ok(marker.is_some())
    }

    /// 409 `not_receiving` once a commit of session `id` has begun: it
    /// takes no more data, as on a directory.
    pub(super) async fn refuse_if_committing(&self, id: &str) -> AppResult<()> {
        if self.committing(id).await? {
            return Err(AppError::new(
                ErrorKind::NotReceiving,
                "this upload is committing; it takes no data now",
            ));
        }
        Ok(())
    }

    /// Ends session `live` (its lock held): removes every object of it and
    /// forgets it.
    pub(crate) async fn end(&self, live: &mut Live) -> AppResult<()> {
        live.ended = true;
        self.end_session(&live.opened.id.clone()).await
    }

    /// Removes every object of session `id` and forgets it.
    async fn end_session(&self, id: &str) -> AppResult<()> {
        self.forget(id);
        let keys = self
            .bucket
            .list(&self.keys.session(id))
            .await
            .map_err(|e| store_error("listing an upload", e))?;
        self.delete_all(keys.into_iter().map(|o| o.key).collect()).await
    }

    /// Drops what this instance holds of session `id`.
    pub(super) fn forget(&self, id: &str) {
        self.cache.forget(id);
    }

    /// Deletes `keys`, 16 at a time.
    pub(super) async fn delete_all(&self, keys: Vec<String>) -> AppResult<()> {
        let results: Vec<Result<(), S3Error>> = futures_util::stream::iter(keys)
            .map(|key| async move { self.bucket.delete(&key).await })
            .buffer_unordered(16)
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>().map_err(|e| store_error("deleting", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_outcome_round_trips_and_truncation_is_refused() {
        let plan = Plan::literal(5000);
        let searched =
            Searched { file_hash: 0x1234_5678_9abc, known: vec![Some(7), None, Some(u128::MAX)], plan };
        let bytes = searched.encode();
        let back = Searched::decode(&bytes, 0).expect("decodes");
        assert_eq!((back.file_hash, &back.known), (searched.file_hash, &searched.known));
        assert_eq!(back.plan, searched.plan);
        for cut in [0, 3, 20, 30, bytes.len() - 1] {
            assert!(Searched::decode(&bytes[..cut], 0).is_none(), "cut at {cut}");
        }
    }
}
