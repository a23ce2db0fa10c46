//! Helpers shared by the browser tests.

#![allow(dead_code, unreachable_pub)]

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, File};

/// Deterministic, not very compressible test bytes.
pub fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A `Blob` of `data`, built from parts of awkward sizes.
pub fn blob(data: &[u8]) -> Blob {
    let parts: Array = data.chunks(1009).map(|c| JsValue::from(Uint8Array::from(c))).collect();
    Blob::new_with_u8_array_sequence(&parts).unwrap()
}

/// A `File` named `name` holding `data`.
pub fn file(data: &[u8], name: &str) -> File {
    let parts: Array = data.chunks(1 << 20).map(|c| JsValue::from(Uint8Array::from(c))).collect();
    File::new_with_u8_array_sequence(&parts, name).unwrap()
}

/// A plain object from `(name, value)` pairs.
pub fn object(fields: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (name, value) in fields {
        Reflect::set(&object, &(*name).into(), value).unwrap();
    }
    object
}

/// A property of a JS value.
pub fn get(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &name.into()).unwrap()
}

/// A numeric property of a JS value.
pub fn num(value: &JsValue, name: &str) -> f64 {
    get(value, name).as_f64().unwrap_or_else(|| panic!("{name} is not a number"))
}

/// The bytes of a `Uint8Array`.
pub fn to_vec(value: &JsValue) -> Vec<u8> {
    value.dyn_ref::<Uint8Array>().expect("a Uint8Array").to_vec()
}

/// Asserts that `error` is a real JS `Error` whose `code` is `code`.
pub fn assert_code(error: &JsValue, code: &str) {
    assert!(error.is_instance_of::<js_sys::Error>(), "not an Error: {error:?}");
    assert_eq!(get(error, "name").as_string().as_deref(), Some("DiffcopyError"));
    assert_eq!(get(error, "code").as_string().as_deref(), Some(code), "{error:?}");
    assert!(!get(error, "message").as_string().unwrap_or_default().is_empty());
}
