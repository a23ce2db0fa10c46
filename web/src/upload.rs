//! `uploadFile`: protocol v2 where the server has it (`delta/`), else API
//! v1, pipelined here.
//!
//! Over API v1 three things run at once: the server's signature streams in,
//! the local file is hashed, and changed blocks are `PUT` (a few at a time)
//! as soon as the [`Planner`] decides them. Then the upload is committed with
//! the full signature, and the server checks every block before it installs
//! the new version.

use std::cell::RefCell;
use std::rc::Rc;

use diffcopy_core::{BlockLayout, diff, hex};
use futures_channel::mpsc;
use futures_util::{StreamExt, TryStreamExt, future::try_join3};
use js_sys::{Date, Object, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use web_sys::{Blob, File};

use crate::api::{Api, BodyReader, Session};
use crate::diff::set;
use crate::engine::HashConfig;
use crate::error::{ErrorCode, WebError};
use crate::hash_blob::{self, Report};
use crate::job::{Upload, again_later, with_retries};
use crate::options::{Options, check_abort};
use crate::plan::Planner;
use crate::progress::Progress;
use crate::read::{blob_size, slice};
use crate::resume;

/// Default block uploads in flight.
const DEFAULT_CONCURRENCY: u32 = 4;
/// Seconds an upload is tried again while the server answers 503 with
/// `Retry-After`, as the CLI's `--retry-for`.
const DEFAULT_RETRY_FOR: u32 = 120;

/// Uploads `file` so that the server's `path` becomes a copy of it, sending
/// only what the server lacks. Resolves to an `UploadResult`.
#[wasm_bindgen(js_name = uploadFile, unchecked_return_type = "UploadResult")]
pub async fn upload_file(
    #[wasm_bindgen(unchecked_param_type = "Blob")] file: Blob,
    #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: Option<Object>,
) -> Result<JsValue, JsValue> {
    let options = Options::new(options);
    let hash = HashConfig::from_options(&options)?;
    let path = match options.string("path")? {
        Some(path) => path,
        None => file_name(&file)
            .ok_or_else(|| WebError::new(ErrorCode::InvalidOption, "option `path` is needed for a Blob"))?,
    };
    if path.trim_matches('/').is_empty() {
        return Err(WebError::new(ErrorCode::InvalidOption, "option `path` is empty").into());
    }
    let signal = options.signal()?;
    let protocol = match options.string("protocol")?.as_deref() {
        None | Some("auto") => Protocol::Auto,
        Some("v2") => Protocol::V2,
        Some("v1") => Protocol::V1,
        Some(other) => {
            return Err(WebError::new(
                ErrorCode::InvalidOption,
                format!("option `protocol` must be \"auto\", \"v2\" or \"v1\", not \"{other}\""),
            )
            .into());
        }
    };
    if protocol == Protocol::V1 {
        // Fail on a strategy that cannot run here before anything is sent.
        hash.resolve()?;
    }
    let upload = Upload {
        api: Api::new(&options.string("serverUrl")?.unwrap_or_default(), options.token()?, signal.clone()),
        path,
        hash,
        concurrency: options.integer("concurrency", 1, 64)?.unwrap_or(DEFAULT_CONCURRENCY),
        resume: options.boolean("resume")?.unwrap_or(true),
        progress: Progress::new(options.function("onProgress")?),
        signal,
    };
    let patience = f64::from(options.integer("retryFor", 0, 86_400)?.unwrap_or(DEFAULT_RETRY_FOR));
    let (upload, file) = (&upload, &file);
    let result = again_later(upload.signal.as_ref(), patience, || async move {
        if protocol != Protocol::V1 {
            match crate::delta::upload(upload, file).await? {
                Some(result) => return Ok(result),
                None if protocol == Protocol::V2 => {
                    return Err(WebError::new(
                        ErrorCode::NoProtocolV2,
                        "the server does not speak protocol v2",
                    ));
                }
                None => upload.hash.resolve().map(drop)?,
            }
        }
        upload.run(file).await
    })
    .await;
    Ok(result?)
}

/// The `protocol` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// v2 where the server has it, else v1.
    Auto,
    V2,
    V1,
}

fn file_name(blob: &Blob) -> Option<String> {
    wasm_bindgen::JsCast::dyn_ref::<File>(blob).map(File::name).filter(|n| !n.is_empty())
}

impl Upload {
    async fn run(&self, file: &Blob) -> Result<JsValue, WebError> {
        let started = Date::now();
        check_abort(self.signal.as_ref())?;
        let size = blob_size(file);
        let algorithm = self.hash.algorithm;
        let layout = BlockLayout::new(size, self.hash.block_size)
            .map_err(|e| WebError::new(ErrorCode::InvalidOption, e.to_string()))?;

        self.progress.report(Some("comparing"), 0, 0, true);
        let target = self.api.signature(&self.path, self.hash.block_size, algorithm.name()).await?;
        let base_etag = target.as_ref().and_then(|(_, etag)| etag.clone());

        let key = resume::key(self.api.base(), &self.path, file, self.hash.block_size, algorithm.name())
            .filter(|_| self.resume);
        let session = self.session(key.as_deref(), size, base_etag.as_deref()).await?;

        let plan = Rc::new(RefCell::new(Planner::new(algorithm, layout, session.received.clone())));
        let (queue, blocks) = mpsc::unbounded::<u64>();
        let queue = RefCell::new(Some(queue));
        // Decides what can be decided; closes the queue once every block is.
        let decide = || {
            let mut plan = plan.borrow_mut();
            if let Some(tx) = queue.borrow().as_ref() {
                plan.decide(|index| {
                    let _ = tx.unbounded_send(index);
                });
            }
            if plan.is_done() {
                queue.borrow_mut().take();
            }
        };
        decide();

        let sent = RefCell::new((0u64, 0u64));
        let comparing = async {
            let Some((response, _)) = &target else {
                plan.borrow_mut().target_absent();
                decide();
                return Ok(());
            };
            let mut body = BodyReader::new(response);
            let mut received = 0u64;
            while let Some(chunk) = body.next().await? {
                plan.borrow_mut().target_bytes(&chunk)?;
                received += chunk.len() as u64;
                let expected = plan.borrow().target_len().unwrap_or(received);
                self.progress.report(Some("comparing"), received, expected, false);
                decide();
            }
            plan.borrow_mut().target_end()?;
            self.progress.report(Some("comparing"), received, received, true);
            decide();
            Ok::<_, WebError>(())
        };
        let hashing = async {
            let mut on_block = |_: u64, digest: &[u8]| {
                plan.borrow_mut().local_digest(digest);
                decide();
                Ok(())
            };
            let mut on_bytes = |done| self.progress.report(Some("hashing"), done, size, false);
            self.progress.report(Some("hashing"), 0, size, true);
            let report =
                Report { signal: self.signal.as_ref(), on_block: &mut on_block, on_bytes: &mut on_bytes };
            hash_blob::hash(file, &self.hash, report).await
        };
        let uploading =
            blocks.map(Ok::<u64, WebError>).try_for_each_concurrent(self.concurrency as usize, |index| {
                let digest = plan.borrow().local_block_digest(index).map(hex::encode).unwrap_or_default();
                let sent = &sent;
                let plan = &plan;
                let session = &session;
                async move {
                    let range = layout.block_range(index).unwrap_or_default();
                    let bytes = slice(file, range.start, range.end)?;
                    self.put_block(&session.id, index, &bytes, &digest).await?;
                    let mut sent = sent.borrow_mut();
                    sent.0 += 1;
                    sent.1 += range.end - range.start;
                    self.progress.report(Some("uploading"), sent.1, plan.borrow().queued_bytes, false);
                    Ok(())
                }
            });
        let ((), (source, hashed), ()) = try_join3(comparing, hashing, uploading).await?;
        check_abort(self.signal.as_ref())?;
        let (blocks_sent, bytes_sent) = *sent.borrow();
        self.progress.report(Some("uploading"), bytes_sent, bytes_sent, true);

        let target = plan.borrow().target_signature()?;
        let delta = diff(&source, target.as_ref())
            .map_err(|e| WebError::new(ErrorCode::SignatureMismatch, e.to_string()))?;
        self.progress.report(Some("committing"), 0, 1, true);
        let committed = match self.api.commit(&session.id, &source.encode()).await {
            Ok(committed) => committed,
            Err(error) => {
                // A session the server refused to commit will not commit next time either.
                if let (Some(key), Some(409 | 412 | 404)) = (&key, error.status()) {
                    resume::forget(key);
                }
                return Err(error);
            }
        };
        if let Some(key) = &key {
            resume::forget(key);
        }
        self.progress.report(Some("committing"), 1, 1, true);

        let result = Object::new();
        set(&result, "path", self.path.as_str().into());
        set(&result, "protocol", "v1".into());
        set(&result, "blocksSent", (blocks_sent as f64).into());
        set(&result, "bytesSent", (bytes_sent as f64).into());
        set(&result, "blocksResumed", (plan.borrow().resumed_blocks as f64).into());
        set(&result, "totalBlocks", (delta.total_blocks() as f64).into());
        set(&result, "totalBytes", (size as f64).into());
        set(&result, "similarity", delta.similarity_percent().into());
        set(&result, "seconds", ((Date::now() - started) / 1000.0).into());
        let etag = Reflect::get(&committed, &"etag".into()).ok().and_then(|e| e.as_string());
        set(&result, "etag", etag.unwrap_or_default().into());
        set(&result, "strategy", hashed.engine.name().into());
        set(&result, "hashWorkers", hashed.workers.into());
        Ok(result.into())
    }

    /// The remembered session when it still fits this upload, else a new one.
    async fn session(
        &self,
        key: Option<&str>,
        size: u64,
        base_etag: Option<&str>,
    ) -> Result<Session, WebError> {
        let hash = self.hash.algorithm.name();
        if let Some(id) = key.and_then(resume::load) {
            match self.api.get_upload(&id).await? {
                Some(s) if s.size == size && s.block_size == self.hash.block_size && s.hash == hash => {
                    return Ok(s);
                }
                _ => resume::forget(key.unwrap_or_default()),
            }
        }
        let session = self.api.create_upload(&self.path, size, self.hash.block_size, hash, base_etag).await?;
        if let Some(key) = key {
            resume::store(key, &session.id);
        }
        Ok(session)
    }

    /// PUTs one block, trying again after transient failures.
    async fn put_block(&self, id: &str, index: u64, bytes: &Blob, digest: &str) -> Result<(), WebError> {
        with_retries(self.signal.as_ref(), || self.api.put_block(id, index, bytes, digest)).await
    }
}
