//! Protocol v2's download endpoints (docs/api.md, "Protocol v2"): a
//! version's block hashes, the piece hashes a client's need refines, and
//! the literal ranges it asks for, each from the version `If-Match` names.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use diffcopy_core::delta::{Codec, DeltaParams, FRAMES_HEADER, Levels, MAX_FRAME, Need, PieceHashes};
use futures_util::StreamExt as _;
use serde::Deserialize;

use super::{Reads, Version, current_or_404};
use crate::frames::push_frame_as;
use crate::fs::RelPath;
use crate::limits::{DEFAULT_BLOCK_SIZE, check_block_size};
use crate::serve::body::read_body_within;
use crate::serve::commit::target_changed;
use crate::serve::error::{AppError, AppResult, ErrorKind};
use crate::serve::v2::binary;

/// The most bytes of literal data one download frame carries.
const DOWNLOAD_FRAME: u64 = 4 << 20;
const _: () = assert!(DOWNLOAD_FRAME <= MAX_FRAME as u64);

/// The most bytes a need may take.
const MAX_NEED: u64 = 16 << 20;

/// The query of `GET /api/v2/signatures/{path}`.
#[derive(Debug, Deserialize)]
pub(super) struct BlockSizeQuery {
    block_size: Option<u32>,
}

/// The query of `POST /api/v2/hashes/{path}`.
#[derive(Debug, Deserialize)]
pub(super) struct PieceQuery {
    block_size: Option<u32>,
    /// The seed of the block hashes, 16 hex digits.
    seed: String,
}

/// The query of `POST /api/v2/data/{path}`.
#[derive(Debug, Deserialize)]
pub(super) struct DataQuery {
    /// The codecs the client reads besides raw, comma-separated: `zstd`,
    /// `lz4`; without it, `zstd` (what every CLI reads).
    codecs: Option<String>,
}

impl DataQuery {
    /// The codec to compress with: zstd if the client reads it, else LZ4
    /// if it reads that, else none; 400 `bad_query` for an unknown name.
    fn codec(&self) -> AppResult<Codec> {
        let Some(codecs) = &self.codecs else { return Ok(Codec::Zstd) };
        let mut best = Codec::Raw;
        for name in codecs.split(',').filter(|n| !n.is_empty()) {
            match name {
                "zstd" => best = Codec::Zstd,
                "lz4" if best == Codec::Raw => best = Codec::Lz4,
                "lz4" | "raw" => {}
                other => {
                    return Err(AppError::new(
                        ErrorKind::BadQuery,
                        format!("unknown codec {other:?}: codecs are zstd, lz4 and raw"),
                    ));
                }
            }
        }
        Ok(best)
    }
}

impl PieceQuery {
    /// The seed; 400 `bad_query` unless it is 16 hex digits.
    fn seed(&self) -> AppResult<u64> {
        u64::from_str_radix(&self.seed, 16)
            .map_err(|_| AppError::new(ErrorKind::BadQuery, "seed must be 16 hex digits"))
    }
}

/// The parameters of a `size`-byte file's hashes at `block_size` (default
/// 1 MiB) under `seed`.
fn params_of(size: u64, block_size: Option<u32>, seed: u64) -> AppResult<DeltaParams> {
    let block_size = block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
    check_block_size(block_size)?;
    let levels =
        Levels::for_block(block_size).map_err(|e| AppError::new(ErrorKind::BadBlockSize, e.to_string()))?;
    Ok(DeltaParams { file_size: size, seed, levels })
}

/// The current version of `path`, which must be the one `If-Match` names
/// (400 `missing_if_match` without it, 412 `target_changed` if another).
async fn version_matching<S: Reads>(
    state: &Arc<S>,
    path: &RelPath,
    headers: &HeaderMap,
) -> AppResult<Arc<S::Version>> {
    let wanted = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        AppError::new(ErrorKind::MissingIfMatch, "If-Match must name the version the hashes came from")
    })?;
    let version = current_or_404(state, path).await?;
    if version.etag() != wanted {
        return Err(target_changed(path));
    }
    Ok(version)
}

/// A client's need, read from `body` and checked against a `size`-byte version.
async fn need_of<S: Reads>(state: &S, body: Body, size: u64) -> AppResult<Need> {
    let body = read_body_within(state.settings().body_timeout, body, MAX_NEED, "a need").await?;
    Need::decode(&body, size).map_err(|e| AppError::new(ErrorKind::BadDeltaMessage, e.to_string()))
}

/// `GET /api/v2/signatures/{path}`: the version's block hashes, its ETag
/// beside them.
pub(super) async fn signature<S: Reads>(
    State(state): State<Arc<S>>,
    Path(path): Path<String>,
    query: Result<Query<BlockSizeQuery>, QueryRejection>,
) -> AppResult<Response> {
    let Query(query) = query?;
    let path = RelPath::parse(&path)?;
    let block_size = query.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
    check_block_size(block_size)?;
    let version = current_or_404(&state, &path).await?;
    let etag = version.etag();
    let mut response = binary(state.block_hashes(version, block_size).await?);
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// `POST /api/v2/hashes/{path}`: the piece hashes of the ranges a client's
/// need asks to refine.
pub(super) async fn piece_hashes<S: Reads>(
    State(state): State<Arc<S>>,
    Path(path): Path<String>,
    query: Result<Query<PieceQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let Query(query) = query?;
    let path = RelPath::parse(&path)?;
    let seed = query.seed()?;
    let version = version_matching(&state, &path, &headers).await?;
    let params = params_of(version.size(), query.block_size, seed)?;
    let need = need_of(&*state, body, params.file_size).await?;
    if params.levels.size(usize::from(need.level)).is_none() || need.level == 0 {
        return Err(AppError::new(
            ErrorKind::BadDeltaMessage,
            format!("level {} is not a finer level", need.level),
        ));
    }
    let mut reader = version.clone().reader();
    let hashes = tokio::task::spawn_blocking(move || {
        PieceHashes::compute(&params, need.level, &need.refine, &mut reader)
    })
    .await
    .map_err(|e| AppError::internal("hashing pieces", e))?
    .map_err(|e| version.read_failed("reading a version", e))?;
    Ok(binary(hashes.encode()))
}

/// `POST /api/v2/data/{path}`: the literal ranges a client's need names, in
/// frames of at most 4 MiB (compressed with a codec the client reads, where
/// that is smaller), streamed.
pub(super) async fn literal_data<S: Reads>(
    State(state): State<Arc<S>>,
    Path(path): Path<String>,
    query: Result<Query<DataQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let Query(query) = query?;
    let codec = query.codec()?;
    let path = RelPath::parse(&path)?;
    let version = version_matching(&state, &path, &headers).await?;
    let need = need_of(&*state, body, version.size()).await?;
    let pieces: Vec<Range<u64>> = need
        .literal
        .iter()
        .flat_map(|r| diffcopy_core::delta::pieces(r.clone(), DOWNLOAD_FRAME as u32))
        .collect();
    let stats = state.counters().clone();
    let head = futures_util::stream::once(async { Ok::<_, io::Error>(Bytes::from_static(&FRAMES_HEADER)) });
    let frames = futures_util::stream::iter(pieces).then(move |range| {
        let (version, stats) = (version.clone(), stats.clone());
        async move {
            let bytes = version.read(range.clone()).await.map_err(|e| io::Error::other(e.to_string()))?;
            let frame = tokio::task::spawn_blocking(move || {
                let mut frame = Vec::with_capacity(bytes.len() + 17);
                push_frame_as(&mut frame, range.start, &bytes, codec);
                frame
            })
            .await
            .map_err(io::Error::other)?;
            stats.literal_sent(frame.len() as u64);
            Ok(Bytes::from(frame))
        }
    });
    Ok(binary(Body::from_stream(head.chain(frames))))
}
