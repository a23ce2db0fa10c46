//! `downloadFile`: protocol v2's download run by the page
//! (docs/api.md#protocol-v2). The page holds the old file and searches; the
//! server's newer version travels only where the old file lacks it.
//!
//! 1. fetch the version's block hashes and ETag;
//! 2. hash the local file's aligned blocks with the version's seed, in the
//!    hashing workers;
//! 3. search the local file in a worker (`search.rs`), asking the server for
//!    finer hashes round by round, until the plan is known;
//! 4. open the file with `createWritable({ keepExistingData: true })` (begun
//!    before the search: the browser copies the file meanwhile), write what
//!    is not in place (data found elsewhere in the old file, the
//!    literal data, fetched a few requests at once), and check the file hash
//!    (`write.rs`);
//! 5. close the stream, which swaps the new version in. Any failure or
//!    abort aborts the stream instead: the user's file stays as it was.
//!
//! Every request after the first names the version in `If-Match`; a
//! version that changes meanwhile (412 `target_changed`) starts the
//! download over, a few times, never mixing two versions.

mod api;
mod search;
mod write;

use std::ops::Range;

use diffcopy_core::delta::{BlockHashes, DeltaParams, Need, Plan, joined, literal_batches};
use futures_util::StreamExt;
use js_sys::{Date, Object, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use web_sys::{AbortSignal, Blob};

pub use search::DeltaSearch;

use crate::api::Api;
use crate::delta::{hashes, ranges_array};
use crate::diff::set;
use crate::engine::HashConfig;
use crate::error::{ErrorCode, WebError};
use crate::job::{again_later, with_retries};
use crate::options::{Options, check_abort};
use crate::progress::Progress;
use crate::read::blob_size;
use search::SearchWorker;
use write::{Feed, Opening, Writable, call, rebuild};

/// Data requests in flight by default.
const DEFAULT_CONCURRENCY: u32 = 4;
/// Literal bytes asked for per data request: the server streams them back
/// in frames of up to 4 MiB.
const DATA_BATCH: u32 = 8 << 20;
/// Times a download starts over because the server's version changed.
const ATTEMPTS: u32 = 3;
/// Seconds a download is tried again while the server answers 503 with
/// `Retry-After`, as `uploadFile`'s `retryFor`.
const DEFAULT_RETRY_FOR: u32 = 120;

/// Whether this browser can update a local file in place with
/// [`download_file`]: it has `FileSystemFileHandle.createWritable` (the
/// File System Access API, or the origin-private file system's handles) and
/// workers. Where it cannot (Firefox, Safari), offer a plain download of the
/// whole file, streamed by the browser (a link to `GET /api/v1/files/{path}`).
#[wasm_bindgen(js_name = supportsInPlaceDownload)]
pub fn supports_in_place_download() -> bool {
    let global = js_sys::global();
    let has = |object: &JsValue, name: &str| Reflect::has(object, &name.into()).unwrap_or(false);
    let prototype = Reflect::get(&global, &"FileSystemFileHandle".into())
        .ok()
        .filter(|c| c.is_function())
        .and_then(|c| Reflect::get(&c, &"prototype".into()).ok());
    prototype.is_some_and(|p| has(&p, "createWritable")) && has(&global, "Worker")
}

/// One `downloadFile` call.
struct Download {
    api: Api,
    path: String,
    handle: JsValue,
    hash: HashConfig,
    concurrency: u32,
    progress: Progress,
    signal: Option<AbortSignal>,
}

/// Brings the local file behind `handle` (a `FileSystemFileHandle`) to the
/// server's version of `path`, fetching only what it lacks. Resolves to a
/// `DownloadResult`. A failed or aborted download leaves the file as it was.
#[wasm_bindgen(js_name = downloadFile, unchecked_return_type = "DownloadResult")]
pub async fn download_file(
    #[wasm_bindgen(unchecked_param_type = "FileSystemFileHandle")] handle: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "DownloadOptions")] options: Option<Object>,
) -> Result<JsValue, JsValue> {
    let options = Options::new(options);
    let path = options.string("path")?.filter(|p| !p.trim_matches('/').is_empty());
    let path = path.ok_or_else(|| WebError::new(ErrorCode::InvalidOption, "option `path` is needed"))?;
    if !supports_in_place_download() {
        return Err(WebError::new(
            ErrorCode::Unsupported,
            "this browser cannot write into a local file in place (see supportsInPlaceDownload)",
        )
        .into());
    }
    let signal = options.signal()?;
    let download = Download {
        api: Api::new(&options.string("serverUrl")?.unwrap_or_default(), options.token()?, signal.clone()),
        path,
        handle,
        hash: HashConfig::from_options(&options)?,
        concurrency: options.integer("concurrency", 1, 64)?.unwrap_or(DEFAULT_CONCURRENCY),
        progress: Progress::new(options.function("onProgress")?),
        signal,
    };
    let patience = f64::from(options.integer("retryFor", 0, 86_400)?.unwrap_or(DEFAULT_RETRY_FOR));
    let download = &download;
    let result = again_later(download.signal.as_ref(), patience, || async move {
        let mut attempt = 1;
        loop {
            match download.once().await {
                Err(error) if error.code() == "target_changed" && attempt < ATTEMPTS => {
                    web_sys::console::warn_1(
                        &"diffcopy: the server's version changed during the download; starting over".into(),
                    );
                    attempt += 1;
                }
                other => return other,
            }
        }
    })
    .await;
    Ok(result?)
}

/// What one download moved, for its result.
#[derive(Debug, Default)]
struct Traffic {
    /// Request and response bodies: hashes, needs, frames.
    payload: u64,
}

impl Download {
    async fn once(&self) -> Result<JsValue, WebError> {
        let started = Date::now();
        check_abort(self.signal.as_ref())?;
        self.progress.report(Some("comparing"), 0, 0, true);
        let (hashes, etag) = self.api.delta_signature(&self.path, self.hash.block_size).await?;
        let mut traffic = Traffic { payload: hashes.encode().len() as u64 };
        let params = *hashes.params();
        let old: Blob = call(&self.handle, "getFile", &[], "reading the local file").await?.into();
        let old_len = blob_size(&old);
        // Opened while the search runs; aborted if it fails or finds the
        // file unchanged.
        let opening = Opening::start(&self.handle)?;
        let searched = if old_len == 0 {
            Ok((Plan::literal(params.file_size), Vec::new()))
        } else {
            self.search(&old, &hashes, &etag, &mut traffic).await
        };
        let writable = opening.ready().await?;
        let (plan, aligned) = match searched {
            Ok(searched) => searched,
            Err(error) => {
                writable.abort().await;
                return Err(error);
            }
        };
        if plan.is_identity(old_len) {
            writable.abort().await;
            return Ok(self.result(&params, &plan, &traffic, &etag, (0, true), started));
        }
        match self.write(&writable, &old, &hashes, &aligned, &plan, &etag, &mut traffic).await {
            Ok(moved) => {
                self.progress.report(Some("saving"), 0, 1, true);
                writable.close().await?;
                self.progress.report(Some("saving"), 1, 1, true);
                Ok(self.result(&params, &plan, &traffic, &etag, (moved, false), started))
            }
            Err(error) => {
                writable.abort().await;
                Err(error)
            }
        }
    }

    /// Hashes the old file's aligned blocks, then searches it for the new
    /// version's: the plan, and the aligned hashes.
    async fn search(
        &self,
        old: &Blob,
        hashes: &BlockHashes,
        etag: &str,
        traffic: &mut Traffic,
    ) -> Result<(Plan, Vec<u128>), WebError> {
        let (params, old_len, signal) = (*hashes.params(), blob_size(old), self.signal.as_ref());
        let worker = SearchWorker::start(old, hashes).await?;
        self.progress.report(Some("hashing"), 0, old_len, true);
        let old_params = DeltaParams { file_size: old_len, ..params };
        let mut aligned = Vec::new();
        let mut on_bytes = |done| self.progress.report(Some("hashing"), done, old_len, false);
        hashes::hash_blocks(old, old_params, &self.hash, signal, &mut on_bytes, &mut |h| {
            aligned.push(h.hash)
        })
        .await?;
        let rounds = params.levels.count() as u64;
        self.progress.report(Some("searching"), 0, rounds, true);
        let mut need = worker.blocks(&aligned).await?;
        while !need.is_final() {
            check_abort(signal)?;
            self.progress.report(Some("searching"), u64::from(need.level), rounds, false);
            let pieces =
                with_retries(signal, || self.api.delta_pieces(&self.path, etag, &params, &need)).await?;
            traffic.payload += (need.encode().len() + pieces.len()) as u64;
            need = worker.pieces(&pieces).await?;
        }
        self.progress.report(Some("searching"), rounds, rounds, true);
        let plan = Plan::decode(&worker.plan().await?, old_len)
            .map_err(|e| WebError::new(ErrorCode::BadResponse, format!("the search's plan: {e}")))?;
        Ok((plan, aligned))
    }

    /// Fetches the literal data and writes every block not in place; the
    /// bytes moved within the file.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        writable: &Writable,
        old: &Blob,
        hashes: &BlockHashes,
        aligned: &[u128],
        plan: &Plan,
        etag: &str,
        traffic: &mut Traffic,
    ) -> Result<u64, WebError> {
        let params = *hashes.params();
        let size = params.file_size;
        if size != blob_size(old) {
            writable.truncate(size).await?;
        }
        let literal: Vec<Range<u64>> = plan.literal_ranges().collect();
        let signal = self.signal.as_ref();
        let answers = futures_util::stream::iter(literal_batches(&literal, DATA_BATCH))
            .map(|batch| async move {
                let need = Need { level: 0, refine: Vec::new(), literal: joined(&batch) };
                with_retries(signal, || self.api.delta_fetch(&self.path, etag, &need)).await
            })
            .buffered(self.concurrency.max(1) as usize);
        let mut answers = Box::pin(answers.inspect(|answer| {
            if let Ok(body) = answer {
                traffic.payload += body.len() as u64;
            }
        }));
        let mut feed = Feed::new(&mut answers, size);
        self.progress.report(Some("receiving"), 0, size, true);
        let mut on_block = |done| {
            check_abort(signal)?;
            self.progress.report(Some("receiving"), done, size, false);
            Ok(())
        };
        let written =
            rebuild(writable, plan, &params, hashes.file_hash(), old, aligned, &mut feed, &mut on_block)
                .await?;
        self.progress.report(Some("receiving"), size, size, true);
        Ok(written.moved)
    }

    /// The `DownloadResult`.
    fn result(
        &self,
        params: &DeltaParams,
        plan: &Plan,
        traffic: &Traffic,
        etag: &str,
        (moved, unchanged): (u64, bool),
        started: f64,
    ) -> JsValue {
        let size = params.file_size;
        let literal: Vec<Range<u64>> = plan.literal_ranges().collect();
        let received = plan.literal_bytes();
        let result = Object::new();
        set(&result, "path", self.path.as_str().into());
        set(&result, "bytesReceived", (received as f64).into());
        set(&result, "payloadBytes", (traffic.payload as f64).into());
        set(&result, "copiedBytes", (plan.copied_bytes() as f64).into());
        set(&result, "movedBytes", (moved as f64).into());
        set(&result, "totalBytes", (size as f64).into());
        set(&result, "unchanged", unchanged.into());
        set(&result, "sentRanges", ranges_array(&literal, size).into());
        set(&result, "seconds", ((Date::now() - started) / 1000.0).into());
        set(&result, "etag", etag.into());
        result.into()
    }
}
