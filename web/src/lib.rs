//! diffcopy in the browser: hash a `File` with the diffcopy core compiled to
//! WebAssembly (or WebCrypto where faster) and upload only the blocks the
//! server lacks.
//!
//! The pipeline, as [`upload_file`] runs it:
//!
//! 1. fetch the server's signature of the target (404: a new file) and open an
//!    upload session (or resume the one remembered for this file);
//! 2. hash the local file in slices ([`hash_blob`]); each block whose digest
//!    differs from the server's is `PUT` as soon as it is known, a few at a time;
//! 3. commit with the full binary signature; the server checks every block.
//!
//! Smaller pieces are exported too: [`SignatureHasher`], [`hash_block`],
//! [`diff_signatures`] and [`signature_info`]. Every error is a JS `Error`
//! with a `code` string (see `error.rs`).

mod api;
mod diff;
mod error;
mod hash_blob;
mod hash_workers;
mod hasher;
mod options;
mod plan;
mod progress;
mod read;
mod resume;
mod types;
mod upload;

pub use diff::{diff_signatures, signature_info};
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
