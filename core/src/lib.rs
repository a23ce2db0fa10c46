//! Block layout, streaming block hashing, signatures and diffs for
//! differential file transfer.
//!
//! The pipeline in three steps:
//!
//! 1. each side hashes its file in fixed blocks into a [`Signature`]
//!    ([`SignatureBuilder`] takes the bytes in chunks of any size);
//! 2. [`diff`] compares the source's signature with the target's (or with none)
//!    and names the blocks the target lacks;
//! 3. the caller sends those blocks; [`BlockLayout`] gives their byte ranges.
//!
//! ```
//! use diffcopy_core::{diff, HashAlgorithm, SignatureBuilder};
//!
//! let old = vec![7u8; 10_000];
//! let mut new = old.clone();
//! new[5_000] = 8; // one byte changes inside block 1
//!
//! let sign = |bytes: &[u8]| {
//!     let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, 4096).unwrap();
//!     builder.update(bytes);
//!     builder.finish()
//! };
//! let delta = diff(&sign(&new), Some(&sign(&old))).unwrap();
//! assert_eq!(delta.blocks(), &[1]);
//! assert_eq!(delta.bytes_to_send(), 4096);
//! assert_eq!(delta.layout().block_range(1), Some(4096..8192));
//! ```
//!
//! The crate is `no_std` + `alloc` without its default `std` feature, and builds
//! for `wasm32-unknown-unknown`. It does no I/O and starts no threads: callers
//! spread [`hash_block`] calls over threads and hand the digests to
//! [`Signature::push_digest`] in block order.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod builder;
pub mod delta;
mod diff;
mod digest;
mod error;
mod hash;
pub mod hex;
mod layout;
mod runs;
mod signature;
mod text;
mod wire;

pub use builder::SignatureBuilder;
pub use diff::{Delta, diff};
pub use digest::{Digest, MAX_DIGEST_LEN};
pub use error::{DecodeError, DiffError, HexError, ParseAlgorithmError, SignatureError, TextError};
pub use hash::{HashAlgorithm, Hasher, hash_block};
pub use layout::{BlockLayout, MAX_BLOCK_SIZE};
pub use runs::{in_runs, index_runs};
pub use signature::{Signature, SignatureHeader};
pub use text::parse_text;
pub use wire::{HEADER_LEN, MAGIC, WIRE_VERSION};
