//! The incremental signature hasher class and one-shot block hashing.

use diffcopy_core::{SignatureBuilder, hash_block as core_hash_block};
use js_sys::Uint8Array;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::error::{ErrorCode, WebError};
use crate::options::parse_hash;

/// Hashes a file's bytes, fed in chunks of any size, into its binary signature.
///
/// ```js
/// const hasher = new SignatureHasher("sha1", 1 << 20);
/// hasher.update(chunk1); hasher.update(chunk2);
/// const signature = hasher.finish(); // Uint8Array, the binary signature
/// ```
#[wasm_bindgen]
pub struct SignatureHasher {
    /// `None` once `finish()` has taken it.
    builder: Option<SignatureBuilder>,
}

#[wasm_bindgen]
impl SignatureHasher {
    /// A hasher for blocks of `blockSize` bytes with `hash` ("sha1", "sha256" or "blake3").
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "HashName")] hash: &str,
        #[wasm_bindgen(js_name = blockSize)] block_size: u32,
    ) -> Result<SignatureHasher, JsValue> {
        let algorithm = parse_hash(hash)?;
        let builder = SignatureBuilder::new(algorithm, block_size)
            .map_err(|e| WebError::new(ErrorCode::InvalidOption, e.to_string()))?;
        Ok(Self { builder: Some(builder) })
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
        self.builder_mut()?.update(bytes);
        Ok(())
    }

    /// Ends the file and returns its binary signature. The hasher cannot be
    /// used afterwards.
    pub fn finish(&mut self) -> Result<Uint8Array, JsValue> {
        let builder = self.builder.take().ok_or_else(finished)?;
        Ok(Uint8Array::from(builder.finish().encode().as_slice()))
    }

    /// How many bytes were fed so far.
    #[wasm_bindgen(getter, js_name = bytesHashed)]
    pub fn bytes_hashed(&self) -> f64 {
        self.builder.as_ref().map_or(0.0, |b| b.bytes_hashed() as f64)
    }

    /// How many blocks are complete and have their digest.
    #[wasm_bindgen(getter, js_name = completedBlocks)]
    pub fn completed_blocks(&self) -> f64 {
        self.builder.as_ref().map_or(0.0, |b| b.completed_blocks() as f64)
    }

    /// The digest of complete block `index`, or `undefined`.
    #[wasm_bindgen(js_name = blockDigest)]
    pub fn block_digest(&self, index: f64) -> Option<Uint8Array> {
        let builder = self.builder.as_ref()?;
        if index < 0.0 || index.fract() != 0.0 {
            return None;
        }
        builder.block_digest(index as u64).map(Uint8Array::from)
    }
}

impl SignatureHasher {
    fn builder_mut(&mut self) -> Result<&mut SignatureBuilder, WebError> {
        self.builder.as_mut().ok_or_else(finished)
    }
}

fn finished() -> WebError {
    WebError::new(ErrorCode::HasherFinished, "the hasher was finished already")
}

/// The digest of one block (or any bytes) with `hash`.
#[wasm_bindgen(js_name = hashBlock)]
pub fn hash_block(
    #[wasm_bindgen(unchecked_param_type = "HashName")] hash: &str,
    bytes: &[u8],
) -> Result<Uint8Array, JsValue> {
    let algorithm = parse_hash(hash)?;
    Ok(Uint8Array::from(core_hash_block(algorithm, bytes).as_bytes()))
}
