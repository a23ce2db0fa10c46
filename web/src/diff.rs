//! Comparing two binary signatures, and reading one's header.

use diffcopy_core::{Delta, Signature, SignatureHeader, diff};
use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::{ErrorCode, WebError};

/// Which blocks of `source` the target lacks, given both binary signatures
/// (`target` null when the target does not exist).
#[wasm_bindgen(js_name = diffSignatures, unchecked_return_type = "SignatureDiff")]
pub fn diff_signatures(
    source: &[u8],
    #[wasm_bindgen(unchecked_optional_param_type = "Uint8Array | null")] target: Option<Box<[u8]>>,
) -> Result<JsValue, JsValue> {
    let source = decode(source, "source")?;
    let target = target.as_deref().map(|t| decode(t, "target")).transpose()?;
    let delta = diff(&source, target.as_ref())
        .map_err(|e| WebError::new(ErrorCode::SignatureMismatch, e.to_string()))?;
    Ok(delta_to_js(&delta))
}

/// The header of a binary signature: algorithm, block size, file size, block count.
#[wasm_bindgen(js_name = signatureInfo, unchecked_return_type = "SignatureInfo")]
pub fn signature_info(signature: &[u8]) -> Result<JsValue, JsValue> {
    let header = SignatureHeader::decode(signature)
        .map_err(|e| WebError::new(ErrorCode::BadSignature, format!("signature: {e}")))?;
    let info = Object::new();
    set(&info, "hash", header.algorithm().name().into());
    set(&info, "blockSize", header.block_size().into());
    set(&info, "fileSize", (header.file_size() as f64).into());
    set(&info, "blockCount", (header.block_count() as f64).into());
    Ok(info.into())
}

/// Decodes a complete binary signature; `which` names it in the error.
pub(crate) fn decode(bytes: &[u8], which: &str) -> Result<Signature, WebError> {
    Signature::decode(bytes)
        .map_err(|e| WebError::new(ErrorCode::BadSignature, format!("{which} signature: {e}")))
}

/// The JS `SignatureDiff` object for `delta`.
pub(crate) fn delta_to_js(delta: &Delta) -> JsValue {
    let out = Object::new();
    let blocks: js_sys::Array = delta.blocks().iter().map(|&b| JsValue::from(b as f64)).collect();
    set(&out, "blocks", blocks.into());
    set(&out, "blocksToSend", (delta.blocks_to_send() as f64).into());
    set(&out, "bytesToSend", (delta.bytes_to_send() as f64).into());
    set(&out, "totalBlocks", (delta.total_blocks() as f64).into());
    set(&out, "totalBytes", (delta.layout().file_size() as f64).into());
    set(&out, "similarity", delta.similarity_percent().into());
    out.into()
}

/// Sets a data property on a plain object we made (which cannot fail).
pub(crate) fn set(object: &Object, name: &str, value: JsValue) {
    let _ = Reflect::set(object, &name.into(), &value);
}
