//! diffcopy in the browser. The bindings arrive with the browser issue; for now
//! this exposes the core's version so the package builds and links.

use wasm_bindgen::prelude::wasm_bindgen;

/// The version of the diffcopy core compiled into this package.
#[wasm_bindgen(js_name = coreVersion)]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
