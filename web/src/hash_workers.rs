//! Hashing in Web Workers: each worker reads its own slices of the `Blob` and
//! digests the blocks in them, with WebCrypto or the core in wasm (API v1's
//! block digests, or protocol v2's block hashes).
//!
//! On the calling thread, reading a slice (copying it out of the browser's
//! pipe) and digesting it take turns on one thread; in workers they spread
//! over every core, and the page's thread stays free. A worker streams each
//! slice through one reused block-sized buffer rather than reading it into a
//! fresh `ArrayBuffer`, whose pages would all fault on first touch. The pool
//! itself is a small JS module (`js/hash_pool.js`); this side picks the
//! worker count and speaks to it.

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use crate::engine::{Engine, HashConfig, webcrypto_name};
use crate::error::{ErrorCode, WebError};

/// Files smaller than this are hashed on the calling thread unless workers
/// are asked for: starting workers costs more than it saves.
const AUTO_MIN_SIZE: u64 = 8 << 20;
/// Workers by default. A worker spends part of each read waiting for the
/// browser, so more workers than cores keep the cores busy: on 2 cores, 4
/// hashed faster than 2 or 3, and 6 no faster than 4 (web/bench). Beyond
/// that, reading the file is the limit, not hashing.
const AUTO_WORKERS: u32 = 4;

#[wasm_bindgen(module = "/js/hash_pool.js")]
extern "C" {
    /// `js/hash_pool.js`: workers hashing slices of one Blob.
    type HashPool;

    #[wasm_bindgen(constructor, catch)]
    fn new(blob: &Blob, count: u32, init: &Object) -> Result<HashPool, JsValue>;

    #[wasm_bindgen(method, js_name = whenReady)]
    fn when_ready(this: &HashPool) -> Promise;

    #[wasm_bindgen(method)]
    fn digest(this: &HashPool, start: f64, end: f64) -> Promise;

    #[wasm_bindgen(method)]
    fn request(this: &HashPool, op: &str, bytes: &Uint8Array) -> Promise;

    #[wasm_bindgen(method)]
    fn close(this: &HashPool);
}

#[wasm_bindgen]
extern "C" {
    /// `import.meta` of this package's JS glue: its `url` is what a worker imports.
    type ImportMeta;

    #[wasm_bindgen(thread_local_v2, js_namespace = import, js_name = meta)]
    static IMPORT_META: ImportMeta;

    /// `None` where a bundler replaced `import.meta` (webpack makes it
    /// `{}`); the npm package's workers then import the glue's own text.
    #[wasm_bindgen(method, getter)]
    fn url(this: &ImportMeta) -> Option<String>;
}

/// Running hashing workers over one `Blob`; dropping it stops them.
pub(crate) struct Workers {
    pool: HashPool,
    count: u32,
}

impl Workers {
    /// How many workers to hash a blob of `size` bytes with: the `workers`
    /// option when given, else 4 for blobs of 8 MiB and more where workers
    /// exist, else none.
    pub(crate) fn count_for(config: &HashConfig, size: u64) -> u32 {
        match config.workers {
            Some(count) => count,
            None if size >= AUTO_MIN_SIZE && workers_exist() => AUTO_WORKERS,
            None => 0,
        }
    }

    /// Starts `count` workers hashing `blob` with `engine` and waits until each
    /// can hash. Fails where workers cannot run here (no `Worker`, a content
    /// security policy that forbids blob: workers, a failed import).
    pub(crate) async fn start(
        blob: &Blob,
        count: u32,
        engine: Engine,
        config: &HashConfig,
    ) -> Result<Self, WebError> {
        let init = Object::new();
        set(&init, "key", config.algorithm.name().into());
        set(&init, "blockSize", config.block_size.into());
        set(&init, "digestLength", (config.algorithm.digest_len() as u32).into());
        set(&init, "engine", engine.name().into());
        if engine == Engine::WebCrypto {
            set(&init, "webcryptoName", webcrypto_name(config.algorithm).unwrap_or_default().into());
        } else {
            with_module(&init);
        }
        Self::start_with(blob, count, init).await
    }

    /// Starts `count` workers computing protocol v2's block hashes of
    /// `blob` with `seed`: each block's record of `record_len` bytes, in
    /// the core compiled to wasm (`deltaBlockHash`).
    pub(crate) async fn start_delta(
        blob: &Blob,
        count: u32,
        seed: u64,
        block_size: u32,
        record_len: usize,
    ) -> Result<Self, WebError> {
        let init = Object::new();
        set(&init, "key", js_sys::BigInt::from(seed).into());
        set(&init, "blockSize", block_size.into());
        set(&init, "digestLength", (record_len as u32).into());
        set(&init, "engine", "delta".into());
        with_module(&init);
        Self::start_with(blob, count, init).await
    }

    #[cfg(feature = "download")]
    /// Starts one worker searching `blob` (a download's old file) for the
    /// version whose block hashes are `hashes` (a `DeltaSearch`); it
    /// answers [`Self::request`]s.
    pub(crate) async fn start_search(blob: &Blob, hashes: &[u8]) -> Result<Self, WebError> {
        let init = Object::new();
        set(&init, "engine", "search".into());
        set(&init, "hashes", Uint8Array::from(hashes).into());
        with_module(&init);
        Self::start_with(blob, 1, init).await
    }

    async fn start_with(blob: &Blob, count: u32, init: Object) -> Result<Self, WebError> {
        let failed =
            |e: JsValue| WebError::from_js(ErrorCode::WorkersUnavailable, "starting hashing workers", &e);
        let pool = HashPool::new(blob, count, &init).map_err(failed)?;
        let workers = Self { pool, count };
        JsFuture::from(workers.pool.when_ready()).await.map_err(failed)?;
        Ok(workers)
    }

    /// The number of workers.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Starts hashing bytes `start..end` (whole blocks, but the file's last)
    /// at once: their digests, concatenated.
    pub(crate) fn digest(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<u8>, WebError>> + use<> {
        let digests = JsFuture::from(self.pool.digest(start as f64, end as f64));
        async move {
            let digests = digests
                .await
                .map_err(|e| WebError::from_js(ErrorCode::ReadFailed, "hashing in a worker", &e))?;
            Ok(Uint8Array::new(&digests).to_vec())
        }
    }
}

#[cfg(feature = "download")]
impl Workers {
    /// Asks a search worker to run `op` ("blocks", "pieces", "plan") of
    /// its `DeltaSearch` on `bytes`: a promise of the answer's bytes.
    pub(crate) fn request(&self, op: &str, bytes: &Uint8Array) -> Promise {
        self.pool.request(op, bytes)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.pool.close();
    }
}

/// Sets a plain data property on a fresh object (which cannot fail).
fn set(object: &Object, key: &str, value: JsValue) {
    let _ = Reflect::set(object, &key.into(), &value);
}

/// What a worker needs to run this package's wasm: its JS glue and module.
fn with_module(init: &Object) {
    if let Some(url) = IMPORT_META.with(ImportMeta::url) {
        set(init, "glue", url.into());
    }
    set(init, "module", wasm_bindgen::module());
}

fn workers_exist() -> bool {
    Reflect::has(&js_sys::global(), &"Worker".into()).unwrap_or(false)
}
