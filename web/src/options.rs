//! Reading the plain JS option objects the API takes.

use diffcopy_core::{HashAlgorithm, MAX_BLOCK_SIZE};
use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::AbortSignal;

use crate::error::{ErrorCode, WebError};
use crate::token::TokenSource;

/// The default block size: 1 MiB, as pdiffcopy.
pub(crate) const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;

/// A JS options object, which may be left out.
pub(crate) struct Options(JsValue);

impl Options {
    /// Wraps `value` (wasm-bindgen has checked that it is an object).
    pub(crate) fn new(value: Option<js_sys::Object>) -> Self {
        Self(value.map_or(JsValue::UNDEFINED, JsValue::from))
    }

    /// The property `name`, or `None` when absent, `undefined` or `null`.
    fn get(&self, name: &str) -> Option<JsValue> {
        if !self.0.is_object() {
            return None;
        }
        Reflect::get(&self.0, &name.into()).ok().filter(|v| !v.is_undefined() && !v.is_null())
    }

    /// A string option.
    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, WebError> {
        self.get(name).map(|v| v.as_string().ok_or_else(|| invalid(name, "a string"))).transpose()
    }

    /// The `token` option: a string, or a function returning one (or a
    /// promise of one).
    pub(crate) fn token(&self) -> Result<TokenSource, WebError> {
        match self.get("token") {
            None => Ok(TokenSource::None),
            Some(v) => match v.as_string() {
                Some(token) => Ok(TokenSource::Fixed(token)),
                None => v
                    .dyn_into::<Function>()
                    .map(TokenSource::Callback)
                    .map_err(|_| invalid("token", "a string or a function")),
            },
        }
    }

    /// A boolean option.
    pub(crate) fn boolean(&self, name: &str) -> Result<Option<bool>, WebError> {
        self.get(name).map(|v| v.as_bool().ok_or_else(|| invalid(name, "a boolean"))).transpose()
    }

    /// A whole-number option within `min..=max`.
    pub(crate) fn integer(&self, name: &str, min: u32, max: u32) -> Result<Option<u32>, WebError> {
        let Some(value) = self.get(name) else { return Ok(None) };
        let range = || format!("a whole number from {min} to {max}");
        let n = value.as_f64().ok_or_else(|| invalid(name, &range()))?;
        if n.fract() != 0.0 || n < f64::from(min) || n > f64::from(max) {
            return Err(invalid(name, &range()));
        }
        Ok(Some(n as u32))
    }

    /// A function option (a callback).
    pub(crate) fn function(&self, name: &str) -> Result<Option<Function>, WebError> {
        self.get(name).map(|v| v.dyn_into::<Function>().map_err(|_| invalid(name, "a function"))).transpose()
    }

    /// The `signal` option: an `AbortSignal`.
    pub(crate) fn signal(&self) -> Result<Option<AbortSignal>, WebError> {
        self.get("signal")
            .map(|v| v.dyn_into::<AbortSignal>().map_err(|_| invalid("signal", "an AbortSignal")))
            .transpose()
    }

    /// The `hash` option (default sha1).
    pub(crate) fn hash(&self) -> Result<HashAlgorithm, WebError> {
        match self.string("hash")? {
            None => Ok(HashAlgorithm::default()),
            Some(name) => parse_hash(&name),
        }
    }

    /// The `blockSize` option (default 1 MiB).
    pub(crate) fn block_size(&self) -> Result<u32, WebError> {
        Ok(self.integer("blockSize", 1, MAX_BLOCK_SIZE)?.unwrap_or(DEFAULT_BLOCK_SIZE))
    }
}

/// Parses a hash name (`sha1`, `sha256`, `blake3`; case-insensitive).
pub(crate) fn parse_hash(name: &str) -> Result<HashAlgorithm, WebError> {
    name.parse().map_err(|e| WebError::new(ErrorCode::UnknownHash, format!("{e}")))
}

fn invalid(name: &str, expected: &str) -> WebError {
    WebError::new(ErrorCode::InvalidOption, format!("option `{name}` must be {expected}"))
}

/// Fails with `aborted` when `signal` has fired.
pub(crate) fn check_abort(signal: Option<&AbortSignal>) -> Result<(), WebError> {
    match signal {
        Some(signal) if signal.aborted() => Err(WebError::aborted()),
        _ => Ok(()),
    }
}
