//! Remembering upload sessions in `localStorage`, so that picking the same
//! file again after a reload continues where the last attempt stopped.
//!
//! A session is remembered per (server, path, file name, size, last
//! modified, block size, hash): a file that changed on disk gets a new
//! session. Only `File`s are remembered (a plain `Blob` has no identity).
//! Without `localStorage` (workers, privacy modes) nothing is remembered.

use js_sys::{Array, JSON};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, File, Storage};

const PREFIX: &str = "diffcopy:upload:";

/// The storage key for a session uploading `blob` to `path` on `server`, or
/// `None` when `blob` is not a `File`.
pub(crate) fn key(server: &str, path: &str, blob: &Blob, block_size: u32, hash: &str) -> Option<String> {
    let file = blob.dyn_ref::<File>()?;
    let parts: Array = [
        JsValue::from(server),
        path.into(),
        file.name().into(),
        file.size().into(),
        file.last_modified().into(),
        block_size.into(),
        hash.into(),
    ]
    .into_iter()
    .collect();
    let json: String = JSON::stringify(&parts).ok()?.into();
    Some(format!("{PREFIX}{json}"))
}

fn storage() -> Option<Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The session id remembered under `key`.
pub(crate) fn load(key: &str) -> Option<String> {
    storage()?.get_item(key).ok()?
}

/// Remembers session `id` under `key` (silently does nothing when storage is
/// unavailable or full).
pub(crate) fn store(key: &str, id: &str) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(key, id);
    }
}

/// Forgets the session under `key`.
pub(crate) fn forget(key: &str) {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(key);
    }
}
