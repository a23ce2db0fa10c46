//! Protocol v2 as both stores serve it (docs/api.md, "Protocol v2"): the
//! messages (the upload request and the answers to it, its status and its
//! commit), the checks of what a client sends (hashes, literal frames),
//! the search's accounting and the file hash check of a commit. The
//! directory (`serve/delta/`) and the bucket (`serve/bucket/`) keep only
//! what their stores do differently: where sessions, data and versions live.

mod ranges;

use std::borrow::Cow;
use std::ops::Range;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use diffcopy_core::BlockLayout;
use diffcopy_core::delta::{
    BlockHashes, DeltaError, DeltaParams, Levels, MatchError, Matcher, Need, PieceHashes, Plan, ReadAt,
    SliceFile, Source, parse_frames, pieces_of,
};
use serde::Serialize;

pub(crate) use ranges::RangeSet;

use crate::frames::frame_bytes;
use crate::fs::{RelPath, rebuilt_file_hash};
use crate::limits::{DEFAULT_BLOCK_SIZE, check_block_count, check_block_size};
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::hooks::{Committed, Reported};

/// The media type of protocol v2's binary messages.
const DELTA_TYPE: &str = "application/vnd.diffcopy.delta";

/// A protocol v2 binary message as a response.
pub(crate) fn binary(bytes: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(DELTA_TYPE))], bytes.into()).into_response()
}

/// What a client asks for when it opens a protocol v2 upload.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NewDelta {
    /// The target path.
    pub(crate) path: String,
    /// The new file's size.
    pub(crate) size: u64,
    /// The block size (level 0's pieces); default 1 MiB.
    #[serde(default)]
    pub(crate) block_size: Option<u32>,
    /// The target's ETag the client expects, if any (412 if it is not).
    #[serde(default)]
    pub(crate) base_etag: Option<String>,
    /// Skip the search: the whole file comes as literal data (the client's
    /// retry after a file hash mismatch). The block hashes are still sent,
    /// for the file hash.
    #[serde(default)]
    pub(crate) whole: bool,
}

impl NewDelta {
    /// Checks the request against the server's limits: its path, its block
    /// size (and so its levels), its size and its block count.
    pub(crate) fn check(&self, max_file_size: u64) -> AppResult<(RelPath, Levels)> {
        let path = RelPath::parse(&self.path)?;
        let block_size = self.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
        check_block_size(block_size)?;
        if self.size > max_file_size {
            return Err(AppError::file_too_large(self.size, max_file_size));
        }
        let levels = Levels::for_block(block_size)
            .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
        let header =
            diffcopy_core::SignatureHeader::new(diffcopy_core::HashAlgorithm::Sha1, block_size, self.size)
                .map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
        check_block_count(&header)?;
        Ok((path, levels))
    }
}

/// What a client may send with `POST /api/v2/uploads/{id}/commit`:
/// nothing, or this as JSON.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct CommitRequest {
    /// The new version's modification time, milliseconds since the Unix
    /// epoch: the uploader's own file's, so that a later quick check
    /// (size and time, as `diffcopy -r` and rsync compare) finds it unchanged.
    #[serde(default)]
    pub(crate) mtime: Option<i64>,
}

/// The largest commit request read.
pub(crate) const MAX_COMMIT_REQUEST: u64 = 4 << 10;

impl CommitRequest {
    /// Reads a commit request's body: empty, or JSON (400 `bad_json`).
    pub(crate) fn parse(body: &[u8]) -> AppResult<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body)
            .map_err(|e| AppError::new(ErrorKind::BadJson, format!("the commit request is not valid: {e}")))
    }

    /// The modification time as a time.
    pub(crate) fn mtime(&self) -> Option<std::time::SystemTime> {
        crate::fs::mtime::from_ms(self.mtime?)
    }
}

/// What opening an upload answers.
#[derive(Debug, Serialize)]
pub(crate) struct Created {
    pub(crate) id: String,
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) block_size: u32,
    pub(crate) levels: Vec<u32>,
    /// 16 hex digits.
    pub(crate) seed: String,
    pub(crate) expires_in_secs: u64,
    /// The literal bytes a client should put in one data request, where
    /// the server cares (over a bucket: each request's run is one object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_batch: Option<u64>,
    pub(crate) status: DeltaStatus,
}

/// What [`DeltaStatus::codecs`] says: every codec `frames::frame_bytes` reads.
const CODECS: &[&str] = &["zstd", "lz4"];

/// What `GET /api/v2/uploads/{id}` answers.
#[derive(Debug, Serialize)]
pub(crate) struct DeltaStatus {
    pub(crate) id: String,
    pub(crate) path: String,
    pub(crate) size: u64,
    /// `searching`, `receiving` or `committing`.
    pub(crate) phase: &'static str,
    /// The level whose hashes come next, while searching.
    pub(crate) level: Option<u8>,
    /// Literal bytes the plan needs, once known.
    pub(crate) literal_bytes: Option<u64>,
    /// Literal ranges still missing, `[start, end)`.
    pub(crate) missing: Vec<[u64; 2]>,
    /// The compressed frames the server reads besides raw ones (in the
    /// status, so that a client resuming a session knows them too).
    pub(crate) codecs: &'static [&'static str],
}

/// Where an upload is, for its status.
pub(crate) enum Progress<'a> {
    /// The search waits for the hashes of `level` (`None`: a round runs).
    Searching { level: Option<u8> },
    /// Literal data may arrive; `received` has.
    Receiving { plan: &'a Plan, received: &'a RangeSet },
    /// A commit runs.
    Committing { plan: &'a Plan },
}

impl DeltaStatus {
    /// The status of upload `id` of a `size`-byte file at `path`.
    pub(crate) fn new(id: &str, path: &str, size: u64, progress: Progress<'_>) -> Self {
        let (phase, level, literal_bytes, missing) = match progress {
            Progress::Searching { level } => ("searching", level, None, Vec::new()),
            Progress::Receiving { plan, received } => {
                ("receiving", None, Some(plan.literal_bytes()), missing(plan, received))
            }
            Progress::Committing { plan } => ("committing", None, Some(plan.literal_bytes()), Vec::new()),
        };
        let missing = missing.into_iter().map(|r| [r.start, r.end]).collect();
        Self {
            id: id.to_owned(),
            path: path.to_owned(),
            size,
            phase,
            level,
            literal_bytes,
            missing,
            codecs: CODECS,
        }
    }
}

fn bad_message(e: DeltaError) -> AppError {
    AppError::new(ErrorKind::BadDeltaMessage, e.to_string())
}

/// Old bytes a search rolled over and hashed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Work {
    pub(crate) rolled: u64,
    pub(crate) hashed: u64,
}

impl Work {
    /// The work `matcher` has done since `reported`, which then becomes
    /// all it has done: a round's share, for the stats.
    pub(crate) fn since(matcher: &Matcher, reported: &mut Work) -> Work {
        let stats = matcher.stats();
        let total = Work { rolled: stats.rolled + stats.rolled_near, hashed: stats.hashed };
        let round = Work { rolled: total.rolled - reported.rolled, hashed: total.hashed - reported.hashed };
        *reported = total;
        round
    }
}

/// The two kinds of hashes message.
pub(crate) enum Hashes {
    Blocks(BlockHashes),
    Pieces(PieceHashes),
}

impl Hashes {
    /// Decodes a level-0 (`DCB2`) or finer message.
    pub(crate) fn decode(body: &[u8]) -> AppResult<Self> {
        if body.starts_with(b"DCB2") {
            BlockHashes::decode(body).map(Self::Blocks)
        } else {
            PieceHashes::decode(body).map(Self::Pieces)
        }
        .map_err(bad_message)
    }

    /// The new file's hash, which comes with the level-0 message.
    pub(crate) fn file_hash(&self) -> Option<u128> {
        match self {
            Self::Blocks(h) => Some(h.file_hash()),
            Self::Pieces(_) => None,
        }
    }

    /// Runs `matcher` on these hashes over the old file `old`.
    fn search<F: ReadAt>(
        &self,
        matcher: &mut Matcher,
        old: &mut F,
        aligned: Option<&[u128]>,
    ) -> Result<Need, MatchError<F::Error>> {
        match self {
            Self::Blocks(hashes) => matcher.blocks(hashes, old, aligned),
            Self::Pieces(hashes) => matcher.pieces(hashes, old),
        }
    }

    /// Runs `matcher` on these hashes over `old`, if there is an old
    /// version, else over nothing; a read of `old` that fails is answered
    /// as `read_error` says.
    pub(crate) fn search_in<F: ReadAt<Error = std::io::Error>>(
        &self,
        matcher: &mut Matcher,
        old: Option<&mut F>,
        aligned: Option<&[u128]>,
        read_error: impl FnOnce(std::io::Error) -> AppError,
    ) -> AppResult<Need> {
        let searched = match old {
            Some(old) => self.search(matcher, old, aligned),
            None => self.search(matcher, &mut SliceFile(&[]), None).map_err(|e| match e {
                MatchError::Delta(e) => MatchError::Delta(e),
                MatchError::Read(never) => match never {},
            }),
        };
        searched.map_err(|e| match e {
            MatchError::Delta(e) => bad_message(e),
            MatchError::Read(e) => read_error(e),
        })
    }
}

/// The exact length of the hashes message `matcher` waits for, so that a
/// longer body is refused as it arrives; `None` when it waits for none.
pub(crate) fn expected_hashes_len(params: &DeltaParams, matcher: &Matcher) -> Option<u64> {
    let (level, ranges) = matcher.expected()?;
    if level == 0 {
        return Some(BlockHashes::encoded_len(params));
    }
    Some(PieceHashes::encoded_len(pieces_of(params, level, ranges).count() as u64))
}

/// Whether `range` lies within one literal segment of `plan`.
fn inside_literal(plan: &Plan, range: &Range<u64>) -> bool {
    let segments = plan.segments();
    let i = segments.partition_point(|s| s.new.end <= range.start);
    segments
        .get(i)
        .is_some_and(|s| s.source == Source::Literal && s.new.start <= range.start && range.end <= s.new.end)
}

/// The literal ranges of `plan` that have not arrived.
pub(crate) fn missing(plan: &Plan, received: &RangeSet) -> Vec<Range<u64>> {
    plan.literal_ranges().flat_map(|r| received.missing(r)).collect()
}

/// 409 `missing_data`, naming the ranges (`gaps`) that have not arrived.
pub(crate) fn missing_data(gaps: &[Range<u64>]) -> AppError {
    let runs: Vec<[u64; 2]> = gaps.iter().map(|r| [r.start, r.end]).collect();
    AppError::new(ErrorKind::MissingData, format!("{} literal ranges have not arrived", gaps.len()))
        .with("missing", serde_json::json!(runs))
}

/// One frame of a data request: where its bytes go, the bytes, and how
/// many came on the wire.
pub(crate) struct Literal<'a> {
    pub(crate) range: Range<u64>,
    pub(crate) bytes: Cow<'a, [u8]>,
    pub(crate) stored: u64,
}

/// The frames of a data request, each checked to lie inside one literal
/// range of `plan` and decoded, before any is kept.
pub(crate) fn literal_frames<'a>(body: &'a [u8], plan: &Plan) -> AppResult<Vec<Literal<'a>>> {
    let frames = parse_frames(body, plan.file_size()).map_err(bad_message)?;
    frames
        .into_iter()
        .map(|frame| {
            let range = frame.range();
            if !inside_literal(plan, &range) {
                return Err(AppError::new(
                    ErrorKind::UnexpectedData,
                    format!("bytes {}..{} are not literal data of this upload", range.start, range.end),
                ));
            }
            let bytes = frame_bytes(&frame).map_err(|e| AppError::new(ErrorKind::BadDeltaMessage, e))?;
            Ok(Literal { range, bytes, stored: frame.stored.len() as u64 })
        })
        .collect()
}

/// What a successful commit answers.
#[derive(Debug, Serialize)]
pub(crate) struct DeltaOutcome {
    path: String,
    size: u64,
    etag: String,
    /// Bytes that came as literal data.
    literal_bytes: u64,
    /// Bytes copied from the old version.
    copied_bytes: u64,
    /// Of those, bytes found elsewhere than at their own offset.
    moved_bytes: u64,
    /// Where those are in the new file: merged ranges, at most
    /// [`MAX_MOVED_RANGES`] (neighbours joined beyond that: for display).
    moved: Vec<[u64; 2]>,
    /// Whether the new file is the old one, untouched.
    unchanged: bool,
    /// How the new version was installed: `reflink`, `journal`, `replace`,
    /// or `none` for an unchanged file.
    commit: &'static str,
    /// Over a directory: the bytes of file data the commit wrote to the
    /// disk (copied, journaled, applied; a clone writes none), as the
    /// kernel counted them.
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_bytes_written: Option<u64>,
    /// Over a bucket: what building the new version cost in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<StoreCost>,
}

/// What a commit over a bucket wrote: parts, and bytes uploaded into or
/// copied inside the store.
#[derive(Debug, Default, Serialize)]
pub(crate) struct StoreCost {
    pub(crate) parts: usize,
    pub(crate) uploaded_bytes: u64,
    pub(crate) copied_bytes: u64,
}

impl DeltaOutcome {
    /// The answer for `path`, built as `plan` says, now at `etag`,
    /// installed by `commit` (`none` when the file is unchanged).
    pub(crate) fn new(path: &RelPath, plan: &Plan, etag: String, commit: &'static str) -> Self {
        let (moved_bytes, moved) = moved_ranges(plan);
        Self {
            path: path.to_string(),
            size: plan.file_size(),
            etag,
            literal_bytes: plan.literal_bytes(),
            copied_bytes: plan.copied_bytes(),
            moved_bytes,
            moved,
            unchanged: commit == "none",
            commit,
            disk_bytes_written: None,
            store: None,
        }
    }

    /// With the bytes the commit wrote to the disk.
    pub(crate) fn with_disk_bytes(self, written: Option<u64>) -> Self {
        Self { disk_bytes_written: written, ..self }
    }

    /// With what the commit cost in the store.
    pub(crate) fn with_store(self, cost: StoreCost) -> Self {
        Self { store: Some(cost), ..self }
    }

    /// Bytes copied from elsewhere in the old version.
    pub(crate) fn moved_bytes(&self) -> u64 {
        self.moved_bytes
    }
}

impl Reported for DeltaOutcome {
    fn committed(&self) -> Committed {
        Committed {
            path: self.path.clone(),
            size: self.size,
            etag: self.etag.clone(),
            bytes_received: self.literal_bytes,
            commit_mode: self.commit,
        }
    }
}

/// The most ranges a commit's answer lists as moved.
const MAX_MOVED_RANGES: usize = 1024;

/// The new file's ranges that `plan` copies from elsewhere in the old one.
fn moved_ranges(plan: &Plan) -> (u64, Vec<[u64; 2]>) {
    let mut ranges: Vec<[u64; 2]> = Vec::new();
    let mut bytes = 0;
    for segment in plan.segments() {
        if matches!(segment.source, Source::Old(at) if at != segment.new.start) {
            bytes += segment.new.end - segment.new.start;
            match ranges.last_mut() {
                Some(last) if last[1] == segment.new.start => last[1] = segment.new.end,
                _ => ranges.push([segment.new.start, segment.new.end]),
            }
        }
    }
    if ranges.len() > MAX_MOVED_RANGES {
        // One range per 1/MAX_MOVED_RANGES of the file, spanning what moved there.
        let span = plan.file_size().div_ceil(MAX_MOVED_RANGES as u64).max(1);
        let mut coarse: Vec<[u64; 2]> = Vec::new();
        for [start, end] in ranges {
            match coarse.last_mut() {
                Some(last) if last[0] / span == start / span => last[1] = end,
                _ => coarse.push([start, end]),
            }
        }
        ranges = coarse;
    }
    (bytes, ranges)
}

/// 422: the rebuilt file is not the client's.
pub(crate) fn mismatch() -> AppError {
    AppError::new(
        ErrorKind::FileHashMismatch,
        "the rebuilt file does not have the file hash the client sent; nothing was committed",
    )
}

/// The file hash of the new version, as [`rebuilt_file_hash`] computes it.
pub(crate) fn rebuilt_hash(
    read: impl Fn(u64, &mut [u8]) -> std::io::Result<()> + Sync,
    layout: BlockLayout,
    seed: u64,
    known: &[Option<u128>],
) -> AppResult<u128> {
    rebuilt_file_hash(read, layout, seed, known).map_err(|e| AppError::internal("hashing the new file", e))
}
