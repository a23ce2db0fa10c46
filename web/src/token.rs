//! The bearer token of `uploadFile`'s `token` option: a string, or a
//! function (sync or async) that returns one. A function is asked when the
//! first request goes out and again whenever the server answers that the
//! token expired (401 with `WWW-Authenticate: Bearer error="invalid_token",
//! error_description="expired"`, RFC 6750); the request then goes again
//! with the new token, so the upload goes on where it was.

use std::cell::{Cell, RefCell};

use js_sys::{Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::{ErrorCode, WebError};

/// Where the token comes from.
pub(crate) enum TokenSource {
    None,
    Fixed(String),
    Callback(Function),
}

/// The token requests carry, and how to get a new one.
pub(crate) struct Token {
    current: RefCell<Option<String>>,
    callback: Option<Function>,
    /// Bumped at each new token, so that a request that failed with a token
    /// already replaced asks for none.
    generation: Cell<u32>,
    /// The callback's answer while it is pending: requests that meet the
    /// expiry meanwhile await it too, so the callback is asked once.
    pending: RefCell<Option<Promise>>,
}

impl Token {
    pub(crate) fn new(source: TokenSource) -> Self {
        let (current, callback) = match source {
            TokenSource::None => (None, None),
            TokenSource::Fixed(token) => (Some(token), None),
            TokenSource::Callback(f) => (None, Some(f)),
        };
        Self {
            current: RefCell::new(current),
            callback,
            generation: Cell::new(0),
            pending: RefCell::new(None),
        }
    }

    /// The token to send now, if any.
    pub(crate) fn current(&self) -> Option<String> {
        self.current.borrow().clone()
    }

    /// Which token requests are being built with.
    pub(crate) fn generation(&self) -> u32 {
        self.generation.get()
    }

    /// Whether a new token can be asked for.
    pub(crate) fn renewable(&self) -> bool {
        self.callback.is_some()
    }

    /// Asks the callback for the first token, unless there is one.
    pub(crate) async fn ensure(&self) -> Result<(), WebError> {
        if self.callback.is_some() && self.current.borrow().is_none() {
            self.renew(self.generation()).await?;
        }
        Ok(())
    }

    /// Asks the callback for a new token, unless one newer than
    /// `generation` came meanwhile.
    pub(crate) async fn renew(&self, generation: u32) -> Result<(), WebError> {
        let Some(callback) = &self.callback else { return Ok(()) };
        if self.generation() != generation {
            return Ok(());
        }
        let failed =
            |value: &JsValue| WebError::from_js(ErrorCode::TokenUnavailable, "the token callback", value);
        let existing = self.pending.borrow().clone();
        let promise = match existing {
            Some(promise) => promise,
            None => {
                let value = callback.call0(&JsValue::NULL).map_err(|e| failed(&e))?;
                // A plain string becomes a settled promise: one path for both.
                let promise = value.dyn_into::<Promise>().unwrap_or_else(|value| Promise::resolve(&value));
                *self.pending.borrow_mut() = Some(promise.clone());
                promise
            }
        };
        let answer = JsFuture::from(promise).await;
        // The first request back takes the answer; the others find it taken.
        if self.generation() != generation {
            return Ok(());
        }
        self.pending.borrow_mut().take();
        let token =
            answer.map_err(|e| failed(&e))?.as_string().filter(|t| !t.is_empty()).ok_or_else(|| {
                WebError::new(
                    ErrorCode::TokenUnavailable,
                    "the token callback must return a non-empty string",
                )
            })?;
        *self.current.borrow_mut() = Some(token);
        self.generation.set(generation.wrapping_add(1));
        Ok(())
    }
}

/// Whether a 401's `WWW-Authenticate` says the token expired.
pub(crate) fn expired(www_authenticate: Option<&str>) -> bool {
    www_authenticate
        .is_some_and(|v| v.contains("error=\"invalid_token\"") && v.contains("error_description=\"expired\""))
}

#[cfg(test)]
mod tests {
    use super::expired;

    #[test]
    fn only_an_expired_token_is_renewed() {
        assert!(expired(Some(r#"Bearer error="invalid_token", error_description="expired""#)));
        assert!(!expired(Some(r#"Bearer error="invalid_token", error_description="signature""#)));
        assert!(!expired(Some("Bearer")));
        assert!(!expired(None));
    }
}
