//! Calling the user's progress callback, at most about 20 times a second per phase.

use std::cell::RefCell;

use js_sys::{Date, Function};
use wasm_bindgen::JsValue;

const INTERVAL_MS: f64 = 50.0;

/// A throttled progress callback: `(done, total)` or `(phase, done, total)`.
pub(crate) struct Progress {
    callback: Option<Function>,
    /// The last time each phase was reported.
    last: RefCell<Vec<(&'static str, f64)>>,
}

impl Progress {
    /// Wraps the user's callback, if any.
    pub(crate) fn new(callback: Option<Function>) -> Self {
        Self { callback, last: RefCell::new(Vec::new()) }
    }

    /// Reports `done` of `total` for `phase` (`None`: the callback takes no
    /// phase). Skipped when the phase was reported less than 50 ms ago, unless
    /// `done == total` or `force`. Exceptions thrown by the callback are ignored.
    pub(crate) fn report(&self, phase: Option<&'static str>, done: u64, total: u64, force: bool) {
        let Some(callback) = &self.callback else { return };
        let now = Date::now();
        {
            let mut last = self.last.borrow_mut();
            let key = phase.unwrap_or("");
            let slot = match last.iter_mut().find(|(p, _)| *p == key) {
                Some(slot) => slot,
                None => {
                    last.push((key, f64::NEG_INFINITY));
                    last.last_mut().expect("just pushed")
                }
            };
            if !force && done != total && now - slot.1 < INTERVAL_MS {
                return;
            }
            slot.1 = now;
        }
        let (done, total) = (JsValue::from(done as f64), JsValue::from(total as f64));
        let _ = match phase {
            Some(phase) => callback.call3(&JsValue::NULL, &phase.into(), &done, &total),
            None => callback.call2(&JsValue::NULL, &done, &total),
        };
    }
}
