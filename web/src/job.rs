//! One `uploadFile` call as both protocols run it: its settings
//! ([`Upload`]) and the retry of a request that failed transiently. A leaf:
//! `upload.rs` (API v1 and the choice of protocol) and `delta/` (protocol
//! v2) both use it.

use std::future::Future;

use js_sys::Reflect;
use wasm_bindgen::JsValue;
use web_sys::AbortSignal;

use crate::api::Api;
use crate::engine::HashConfig;
use crate::error::WebError;
use crate::options::check_abort;
use crate::progress::Progress;

/// Attempts per request with data when the network or server fails transiently.
const ATTEMPTS: u32 = 3;

/// One `uploadFile` call: where to, how, and whom to tell.
pub(crate) struct Upload {
    pub(crate) api: Api,
    pub(crate) path: String,
    /// Block size, hashing workers and reads (and API v1's hash and strategy).
    pub(crate) hash: HashConfig,
    /// Requests with data in flight.
    pub(crate) concurrency: u32,
    pub(crate) resume: bool,
    pub(crate) progress: Progress,
    pub(crate) signal: Option<AbortSignal>,
}

/// Runs `request`, again after a transient failure (up to
/// [`ATTEMPTS`] times in all, a little later each time).
pub(crate) async fn with_retries<T, F, Fut>(
    signal: Option<&AbortSignal>,
    mut request: F,
) -> Result<T, WebError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, WebError>>,
{
    let mut attempt = 1;
    loop {
        check_abort(signal)?;
        match request().await {
            Err(error) if error.is_transient() && attempt < ATTEMPTS => {
                sleep(250.0 * f64::from(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Runs `job` again while it fails with a 503 whose `Retry-After` says
/// when (the server's object store down or throttling, the file busy),
/// waiting as told, for up to `patience` seconds in all. An upload then
/// resumes where it stopped: a v2 session is remembered once its search
/// has ended, an API v1 session at once.
pub(crate) async fn again_later<T, F, Fut>(
    signal: Option<&AbortSignal>,
    patience: f64,
    mut job: F,
) -> Result<T, WebError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, WebError>>,
{
    let deadline = js_sys::Date::now() + patience * 1000.0;
    loop {
        let error = match job().await {
            Err(error) => error,
            done => return done,
        };
        match error.retry_after() {
            Some(wait) if js_sys::Date::now() + wait * 1000.0 <= deadline => {
                web_sys::console::warn_1(
                    &format!("diffcopy: {}; trying again in {} s", error.code(), wait.ceil() as u64).into(),
                );
                sleep(wait * 1000.0).await;
                check_abort(signal)?;
            }
            _ => return Err(error),
        }
    }
}

/// Resolves after `ms` milliseconds.
async fn sleep(ms: f64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let set_timeout = Reflect::get(&js_sys::global(), &"setTimeout".into()).ok();
        if let Some(set_timeout) =
            set_timeout.and_then(|f| wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(f).ok())
        {
            let _ = set_timeout.call2(&JsValue::NULL, &resolve, &ms.into());
        } else {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
