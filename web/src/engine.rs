//! Which engine hashes a file, and with what settings: the `strategy`,
//! `hash`, `blockSize`, `sliceSize`, `readsInFlight` and `workers` options
//! resolved once. A leaf: `hash_blob.rs` (the calling thread) and
//! `hash_workers.rs` (the workers) both read it.

use diffcopy_core::HashAlgorithm;
use js_sys::Reflect;
use wasm_bindgen::JsCast;
use web_sys::SubtleCrypto;

use crate::error::{ErrorCode, WebError};
use crate::options::Options;

/// Blocks smaller than this are hashed in wasm even where WebCrypto exists:
/// one `digest()` call per small block costs more than it saves.
const WEBCRYPTO_MIN_BLOCK: u32 = 64 * 1024;
/// How the caller asked to hash (the `strategy` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// WebCrypto where possible, else wasm.
    Auto,
    /// `crypto.subtle.digest` per block.
    WebCrypto,
    /// The core compiled to wasm.
    Wasm,
}

/// What hashes here, once a [`Strategy`] is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    /// `crypto.subtle.digest` per block.
    WebCrypto,
    /// The core compiled to wasm.
    Wasm,
}

impl Engine {
    /// The engine's name as JS sees it: "webcrypto" or "wasm".
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::WebCrypto => "webcrypto",
            Self::Wasm => "wasm",
        }
    }
}

/// Everything `hash` needs besides the blob and callbacks.
#[derive(Clone, Debug)]
pub(crate) struct HashConfig {
    pub(crate) algorithm: HashAlgorithm,
    pub(crate) block_size: u32,
    pub(crate) strategy: Strategy,
    /// Bytes per read (rounded down to whole blocks, at least one, for webcrypto).
    pub(crate) slice_size: Option<u32>,
    /// Reads in flight (all workers together, or on the calling thread); 0 = automatic.
    pub(crate) in_flight: u32,
    /// Hashing workers: `Some(0)` hashes on the calling thread, `None` decides by size.
    pub(crate) workers: Option<u32>,
}

impl HashConfig {
    /// Reads `hash`, `blockSize`, `strategy`, `sliceSize`, `readsInFlight` and `workers`.
    pub(crate) fn from_options(options: &Options) -> Result<Self, WebError> {
        let strategy = match options.string("strategy")?.as_deref() {
            None | Some("auto") => Strategy::Auto,
            Some("webcrypto") => Strategy::WebCrypto,
            Some("wasm") => Strategy::Wasm,
            Some(other) => {
                return Err(WebError::new(
                    ErrorCode::InvalidOption,
                    format!("option `strategy` must be \"auto\", \"webcrypto\" or \"wasm\", not \"{other}\""),
                ));
            }
        };
        Ok(Self {
            algorithm: options.hash()?,
            block_size: options.block_size()?,
            strategy,
            slice_size: options.integer("sliceSize", 1, 1 << 30)?,
            in_flight: options.integer("readsInFlight", 1, 64)?.unwrap_or(0),
            workers: options.integer("workers", 0, 16)?,
        })
    }

    /// The engine that will run here: `auto` resolved, `webcrypto` checked.
    pub(crate) fn resolve(&self) -> Result<Engine, WebError> {
        let webcrypto_algorithm = webcrypto_name(self.algorithm).is_some();
        match self.strategy {
            Strategy::Wasm => Ok(Engine::Wasm),
            Strategy::WebCrypto if !webcrypto_algorithm => Err(WebError::new(
                ErrorCode::InvalidOption,
                format!("WebCrypto cannot hash {}; use strategy \"wasm\"", self.algorithm),
            )),
            Strategy::WebCrypto if subtle().is_none() => Err(WebError::new(
                ErrorCode::WebCryptoUnavailable,
                "WebCrypto exists only in secure contexts (https, localhost); use strategy \"wasm\"",
            )),
            Strategy::WebCrypto => Ok(Engine::WebCrypto),
            Strategy::Auto => {
                Ok(if webcrypto_algorithm && self.block_size >= WEBCRYPTO_MIN_BLOCK && subtle().is_some() {
                    Engine::WebCrypto
                } else {
                    Engine::Wasm
                })
            }
        }
    }
}

/// The WebCrypto name of `algorithm`, if WebCrypto has it.
pub(crate) fn webcrypto_name(algorithm: HashAlgorithm) -> Option<&'static str> {
    match algorithm {
        HashAlgorithm::Sha1 => Some("SHA-1"),
        HashAlgorithm::Sha256 => Some("SHA-256"),
        HashAlgorithm::Blake3 => None,
    }
}

/// `crypto.subtle` of this global (window or worker), in a secure context only.
pub(crate) fn subtle() -> Option<SubtleCrypto> {
    let global = js_sys::global();
    let secure = Reflect::get(&global, &"isSecureContext".into()).ok()?.as_bool()?;
    if !secure {
        return None;
    }
    let crypto = Reflect::get(&global, &"crypto".into()).ok()?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).ok()?;
    subtle.dyn_into::<SubtleCrypto>().ok()
}
