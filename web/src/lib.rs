//! diffcopy in the browser: hash a `File` with the diffcopy core compiled to
//! WebAssembly and upload only what the server lacks.
//!
//! [`upload_file`] speaks protocol v2 where the server has it (`delta/`):
//! the blocks' seeded XXH3 hashes, computed in Web Workers, let the server
//! search its old version; finer hashes answer its needs round by round;
//! only the literal ranges are sent, compressed where that helps. Against
//! a server without v2 it falls back to API v1 (`upload.rs`): SHA-1 block
//! digests (WebCrypto where faster) against the server's signature, every
//! changed block `PUT` as soon as it is known.
//!
//! Smaller pieces are exported too: [`hash_blob`], [`delta_hash_blob`],
//! [`SignatureHasher`], [`hash_block`], [`diff_signatures`] and
//! [`signature_info`]. Every error is a JS `Error` with a `code` string (see
//! `error.rs`).

#![forbid(unsafe_code)]

mod api;
mod delta;
mod diff;
#[cfg(feature = "download")]
mod download;
mod engine;
mod error;
mod hash_blob;
mod hash_workers;
mod hasher;
mod job;
mod options;
mod plan;
mod progress;
mod read;
mod resume;
mod token;
mod types;
mod upload;

pub use delta::{DeltaBlockHasher, delta_block_hash, delta_hash_blob};
pub use diff::{diff_signatures, signature_info};
#[cfg(feature = "download")]
pub use download::{DeltaSearch, download_file, supports_in_place_download};
pub use hash_blob::{hash_blob, hash_strategy};
pub use hasher::{SignatureHasher, hash_block};
pub use upload::upload_file;

use wasm_bindgen::prelude::wasm_bindgen;

/// The version of this package (and of the diffcopy core compiled into it).
#[wasm_bindgen(js_name = version)]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Runs when the module is instantiated: with the default
/// `console_error_panic_hook` feature, a panic prints its message and Rust
/// location to the console instead of a bare "unreachable".
#[wasm_bindgen(start, skip_typescript)]
fn start() {
    #[cfg(feature = "console_error_panic_hook")]
    console_error_panic_hook::set_once();
}
