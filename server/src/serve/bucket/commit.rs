//! Committing an upload inside the store: the new version is one
//! multipart upload whose parts are copies of the old version and of the
//! stored literal data where 5 MiB or more sit together, and uploads of the
//! short rest, padded (`parts.rs`). Its file hash is checked before the
//! pointer is swapped; the loser of a race deletes what it wrote and
//! answers 412, like the directory server.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use diffcopy_core::BlockLayout;
use diffcopy_core::delta::Source;
use futures_util::{StreamExt as _, TryStreamExt as _};
use tokio::runtime::Handle;

use super::BucketStore;
use super::head::Head;
use super::parts::{Part, Piece, min_part, plan_parts};
use super::reader::read_range;
use super::session::{Live, Searched, store_error};
use crate::faults::{FaultHook, FaultPoint};
use crate::fs::RelPath;
use crate::s3::{Condition, MAX_PART, S3Error};
use crate::serve::commit::target_changed;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::v2::{DeltaOutcome, RangeSet, StoreCost, mismatch, missing, missing_data, rebuilt_hash};

/// Parts in flight at once: an upload part of 5 to 15 MiB is assembled in
/// memory, so two (copies take no memory here, but keep their order).
const PARTS_IN_FLIGHT: usize = 2;

/// The new file as stretches of objects: `sources[piece.source]` is each
/// piece's key.
struct Assembly {
    sources: Vec<String>,
    pieces: Vec<Piece>,
    /// Where each piece starts in the new file.
    starts: Vec<u64>,
}

impl Assembly {
    fn new(searched: &Searched, base_key: Option<String>, data: &[(Range<u64>, String)]) -> AppResult<Self> {
        let mut sources: Vec<String> = base_key.into_iter().collect();
        let first_data = sources.len();
        sources.extend(data.iter().map(|(_, key)| key.clone()));
        let mut pieces = Vec::new();
        for segment in searched.plan.segments() {
            match segment.source {
                Source::Old(at) => {
                    pieces.push(Piece { source: 0, at, len: segment.new.end - segment.new.start })
                }
                Source::Literal => {
                    let mut pos = segment.new.start;
                    while pos < segment.new.end {
                        // A stored run holding `pos`: `data` is in key order,
                        // which is start order, so the nearest start at or
                        // before `pos` is the usual one (runs overlap only
                        // where a client sent a range again).
                        let at = data.partition_point(|(r, _)| r.start <= pos);
                        let (i, (range, _)) =
                            data[..at].iter().enumerate().rev().find(|(_, (r, _))| pos < r.end).ok_or_else(
                                || AppError::internal("committing", format!("no literal data at {pos}")),
                            )?;
                        let end = range.end.min(segment.new.end);
                        pieces.push(Piece { source: first_data + i, at: pos - range.start, len: end - pos });
                        pos = end;
                    }
                }
            }
        }
        let starts = pieces
            .iter()
            .scan(0u64, |at, p| {
                let start = *at;
                *at += p.len;
                Some(start)
            })
            .collect();
        Ok(Self { sources, pieces, starts })
    }

    /// The object that holds all of `range` of the new file in one piece,
    /// if one does.
    fn one_source(&self, range: &Range<u64>) -> Option<&str> {
        let i = self.starts.partition_point(|&s| s <= range.start).checked_sub(1)?;
        let (piece, start) = (self.pieces.get(i)?, self.starts[i]);
        (range.end <= start + piece.len).then(|| self.sources[piece.source].as_str())
    }

    /// Fills `buf` with the new file's bytes at `offset` (blocking).
    fn read_at(
        &self,
        store: &BucketStore,
        runtime: &Handle,
        offset: u64,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        let mut i = self.starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let mut done = 0usize;
        while done < buf.len() {
            let (piece, start) = (
                self.pieces.get(i).ok_or_else(|| std::io::Error::other("read past the end"))?,
                self.starts[i],
            );
            let from = offset + done as u64 - start;
            let n = (piece.len - from).min((buf.len() - done) as u64);
            let at = piece.at + from;
            let bytes = runtime
                .block_on(read_range(&store.bucket, &self.sources[piece.source], at..at + n))
                .map_err(std::io::Error::other)?;
            buf[done..done + n as usize].copy_from_slice(&bytes);
            done += n as usize;
            i += 1;
        }
        Ok(())
    }

    /// The bytes of `pieces`, read from the store.
    async fn bytes_of(&self, store: &BucketStore, pieces: &[Piece]) -> Result<Bytes, S3Error> {
        let mut out = BytesMut::with_capacity(pieces.iter().map(|p| p.len as usize).sum());
        for piece in pieces {
            let key = &self.sources[piece.source];
            let got = store.bucket.get_into(key, piece.range(), &mut out).await?;
            if got != Some(piece.len) {
                return Err(S3Error::Protocol(format!("{key}: {got:?} bytes read of {}", piece.len)));
            }
        }
        Ok(out.freeze())
    }
}

impl BucketStore {
    /// Writes the new version at `key` from `assembly`.
    async fn write_version(&self, key: &str, size: u64, assembly: &Assembly) -> Result<StoreCost, S3Error> {
        let parts = plan_parts(&assembly.pieces, min_part(size), MAX_PART);
        let mut written = StoreCost { parts: parts.len(), ..StoreCost::default() };
        for part in &parts {
            match part {
                Part::Copy(p) => written.copied_bytes += p.len,
                Part::Upload(_) => written.uploaded_bytes += part.len(),
            }
        }
        if let [] | [Part::Upload(_)] = parts.as_slice() {
            let pieces = match parts.first() {
                Some(Part::Upload(pieces)) => pieces.as_slice(),
                _ => &[],
            };
            let body = assembly.bytes_of(self, pieces).await?;
            self.bucket.put(key, body, Condition::None).await?;
            return Ok(written);
        }
        let upload = self.bucket.create_multipart(key).await?;
        let done: Result<Vec<(u32, String)>, S3Error> =
            futures_util::stream::iter(parts.into_iter().enumerate())
                .map(|(i, part)| {
                    let (upload, number) = (&upload, i as u32 + 1);
                    async move {
                        let etag = match part {
                            Part::Copy(p) => {
                                upload.copy_part(number, &assembly.sources[p.source], p.range()).await?
                            }
                            Part::Upload(pieces) => {
                                upload.upload_part(number, assembly.bytes_of(self, &pieces).await?).await?
                            }
                        };
                        Ok((number, etag))
                    }
                })
                .buffered(PARTS_IN_FLIGHT)
                .try_collect()
                .await;
        match done {
            Ok(etags) => upload.complete(&etags).await.map(|()| written),
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!("aborting the multipart upload of {key}: {abort}");
                }
                Err(e)
            }
        }
    }

    /// The block hashes the commit need not read back: those the search
    /// found in the old version, and those of blocks that arrived whole at
    /// this instance, where the new file takes the whole block from the
    /// very object that arrived (data objects are written once, so it holds
    /// the bytes hashed).
    fn known_hashes(
        &self,
        id: &str,
        searched: &Searched,
        assembly: &Assembly,
        layout: BlockLayout,
    ) -> Vec<Option<u128>> {
        let arrivals = self.cache.arrivals(id);
        let mut known = searched.known.clone();
        for (i, hash) in known.iter_mut().enumerate().filter(|(_, hash)| hash.is_none()) {
            let Some(arrived) = arrivals.get(&(i as u64)) else { continue };
            let from = layout.block_range(i as u64).and_then(|range| assembly.one_source(&range));
            if from == Some(arrived.key.as_str()) {
                *hash = Some(arrived.hash);
            }
        }
        known
    }

    /// Checks and commits session `id`.
    pub(crate) async fn commit(&self, id: &str, mtime: Option<i64>) -> AppResult<DeltaOutcome> {
        let live = self.session(id).await?;
        let mut live = live.lock().await;
        let result = self.commit_locked(id, &mut live, mtime).await;
        if result.is_err() && !live.ended {
            // The client may mend what failed and commit again: data may
            // come again meanwhile, as on a directory.
            if let Err(e) = self.bucket.delete(&self.keys.committing(id)).await {
                tracing::warn!(id, "reopening an upload to data: {e}");
            }
        }
        result
    }

    async fn commit_locked(&self, id: &str, live: &mut Live, mtime: Option<i64>) -> AppResult<DeltaOutcome> {
        // A search still running is the client's to finish; the store
        // failing while this instance catches up is the store's.
        let searched = self.searched(live).await.map_err(|e| match e.kind() {
            ErrorKind::NotReceiving => AppError::new(ErrorKind::SearchNotOver, "the search is not over yet"),
            _ => e,
        })?;
        let (opened, params) = (live.opened.clone(), live.params);
        let path = RelPath::parse(&opened.path)?;
        let plan = &searched.plan;
        // From here on data is refused (at every instance); the data
        // listed next is what the commit builds from.
        self.bucket
            .put(&self.keys.committing(id), Bytes::new(), Condition::None)
            .await
            .map_err(|e| store_error("marking an upload committing", e))?;
        let data = self.data_objects(id).await?;
        let received = RangeSet::from_ranges(data.iter().map(|(r, _)| r.clone()));
        let gaps = missing(plan, &received);
        if !gaps.is_empty() {
            return Err(missing_data(&gaps));
        }
        // The path must still be at the version the search read.
        let current = self.current(path.as_str()).await.map_err(|e| store_error("reading a pointer", e))?;
        let still = match (&current, &opened.base) {
            (None, None) => true,
            (Some(c), Some(b)) => c.head.version == b.version && c.pointer_etag == b.pointer_etag,
            _ => false,
        };
        if !still {
            self.end(live).await?;
            return Err(target_changed(&path));
        }
        let base_key = opened.base.as_ref().map(|b| self.keys.version(&b.version));
        let assembly = Assembly::new(&searched, base_key, &data)?;
        let layout = BlockLayout::new(params.file_size, params.levels.block_size())
            .map_err(|e| AppError::internal("the upload's block layout", e))?;
        let store = self.clone();
        let (checked, assembly) = {
            let runtime = Handle::current();
            // Blocks the search found whole, or that arrived whole here,
            // have known hashes; the others are read back from the store.
            let known = self.known_hashes(id, &searched, &assembly, layout);
            let faults = self.faults.clone();
            tokio::task::spawn_blocking(move || {
                FaultHook::at(faults.as_ref(), FaultPoint::FileHashCheck);
                let read = |offset: u64, buf: &mut [u8]| assembly.read_at(&store, &runtime, offset, buf);
                let hash = rebuilt_hash(read, layout, params.seed, &known);
                (hash, assembly)
            })
            .await
            .map_err(|e| AppError::internal("checking the file hash", e))?
        };
        if checked? != searched.file_hash {
            self.end(live).await?;
            return Err(mismatch());
        }
        if let (Some(base), Some(current)) = (&opened.base, &current)
            && !opened.whole
            && plan.is_identity(base.size)
        {
            if mtime.is_some() && mtime != current.head.mtime {
                // The bytes stay; the pointer takes the time the uploader gave.
                let head = Head { mtime, ..current.head.clone() };
                match self.swap(path.as_str(), &head, Some(&current.pointer_etag)).await {
                    Ok(()) => {}
                    Err(e) if e.is_precondition_failed() => {
                        self.end(live).await?;
                        return Err(target_changed(&path));
                    }
                    Err(e) => return Err(store_error("swapping the pointer", e)),
                }
            }
            self.end(live).await?;
            return Ok(DeltaOutcome::new(&path, plan, current.head.etag(), "none"));
        }
        let version =
            crate::random::random_hex(16).map_err(|e| AppError::internal("making a version id", e))?;
        let key = self.keys.version(&version);
        let written = self
            .write_version(&key, params.file_size, &assembly)
            .await
            .map_err(|e| store_error("writing the new version", e))?;
        let hashes = self
            .bucket
            .get(&self.keys.round(id, 0), None)
            .await
            .map_err(|e| store_error("reading the block hashes", e))?
            .ok_or_else(|| AppError::internal("committing", "the session's level-0 hashes are gone"))?;
        self.bucket
            .put(&self.keys.hashes(&version), hashes, Condition::None)
            .await
            .map_err(|e| store_error("writing the block hashes", e))?;
        let head = Head { version: version.clone(), size: params.file_size, mtime };
        let expected = opened.base.as_ref().map(|b| b.pointer_etag.as_str());
        match self.swap(path.as_str(), &head, expected).await {
            Ok(()) => {}
            Err(e) if e.is_precondition_failed() => {
                // Another commit from the same base won: what this one wrote goes.
                self.delete_all(vec![key, self.keys.hashes(&version)]).await?;
                self.end(live).await?;
                return Err(target_changed(&path));
            }
            // Unanswered, the swap may have happened: the new version stays
            // (the session too, so the client may retry) and nothing is deleted.
            Err(e) => return Err(store_error("swapping the pointer", e)),
        }
        if let Some(base) = &opened.base {
            self.supersede(&base.version).await;
        }
        self.end(live).await?;
        Ok(DeltaOutcome::new(&path, plan, head.etag(), "s3").with_store(written))
    }

    /// Removes `path`'s pointer if the file is the version `if_match`
    /// names (any, without it), on the pointer's own ETag where the store
    /// deletes on a condition; its version is marked superseded.
    pub(crate) async fn remove(&self, path: &RelPath, if_match: Option<&str>) -> AppResult<()> {
        let current = self
            .current(path.as_str())
            .await
            .map_err(|e| store_error("reading a pointer", e))?
            .ok_or_else(|| AppError::not_found(path))?;
        if if_match.is_some_and(|etag| etag != current.head.etag()) {
            return Err(target_changed(path));
        }
        match self.bucket.delete_if_match(&self.keys.head(path.as_str()), &current.pointer_etag).await {
            Ok(()) => {}
            Err(e) if e.is_precondition_failed() => return Err(target_changed(path)),
            Err(e) => return Err(store_error("removing a pointer", e)),
        }
        self.supersede(&current.head.version).await;
        Ok(())
    }
}
