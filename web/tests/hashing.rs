//! Hashing in the browser gives exactly the core's signature.
//!
//! Run with `wasm-pack test --headless --chrome web --test hashing`.

#![cfg(target_arch = "wasm32")]

mod common;

use common::{assert_code, blob, bytes, get, num, object, to_vec};
use diffcopy_core::{HashAlgorithm, Signature, SignatureBuilder, diff};
use diffcopy_web::{
    SignatureHasher, delta_block_hash, delta_hash_blob, diff_signatures, hash_blob, hash_block,
    hash_strategy, signature_info,
};
use js_sys::{Array, Function, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::AbortController;

wasm_bindgen_test_configure!(run_in_browser);

const B: usize = 4096;
const SIZES: [usize; 6] = [0, 1, B - 1, B, B + 1, 3 * B + 17];

fn core_signature(data: &[u8], algorithm: HashAlgorithm, block_size: usize) -> Vec<u8> {
    let mut builder = SignatureBuilder::new(algorithm, block_size as u32).unwrap();
    builder.update(data);
    builder.finish().encode()
}

async fn hash(data: &[u8], options: &[(&str, JsValue)]) -> Result<Vec<u8>, JsValue> {
    hash_blob(blob(data), Some(object(options))).await.map(|s| to_vec(&s))
}

#[wasm_bindgen_test]
async fn wasm_strategy_matches_the_core_at_edge_sizes_and_slice_sizes() {
    for size in SIZES {
        let data = bytes(size, size as u32);
        for algorithm in HashAlgorithm::ALL {
            let expected = core_signature(&data, algorithm, B);
            for slice in [7, 1000, B, 3 * B + 1, 1 << 20] {
                let got = hash(
                    &data,
                    &[
                        ("hash", algorithm.name().into()),
                        ("blockSize", (B as u32).into()),
                        ("strategy", "wasm".into()),
                        ("sliceSize", (slice as u32).into()),
                        ("readsInFlight", 3.into()),
                    ],
                )
                .await
                .unwrap();
                assert_eq!(got, expected, "{algorithm} size {size} slice {slice}");
            }
        }
    }
}

#[wasm_bindgen_test]
async fn webcrypto_strategy_matches_the_core_at_edge_sizes() {
    for size in SIZES {
        let data = bytes(size, 7 + size as u32);
        for algorithm in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
            let expected = core_signature(&data, algorithm, B);
            // Slices of one block, of whole blocks (3B+1 rounds down to 3B), and the default.
            for (slice, in_flight) in [(B, 1), (3 * B + 1, 5), (0, 2)] {
                let mut options = vec![
                    ("hash", algorithm.name().into()),
                    ("blockSize", (B as u32).into()),
                    ("strategy", "webcrypto".into()),
                    ("readsInFlight", JsValue::from(in_flight)),
                ];
                if slice > 0 {
                    options.push(("sliceSize", (slice as u32).into()));
                }
                assert_eq!(
                    hash(&data, &options).await.unwrap(),
                    expected,
                    "{algorithm} size {size} slice {slice}"
                );
            }
        }
    }
}

#[wasm_bindgen_test]
async fn workers_match_the_core_at_edge_sizes_with_either_engine() {
    let engines = [
        ("webcrypto", HashAlgorithm::Sha1),
        ("webcrypto", HashAlgorithm::Sha256),
        ("wasm", HashAlgorithm::Sha1),
        ("wasm", HashAlgorithm::Blake3),
    ];
    for size in SIZES {
        let data = bytes(size, 17 + size as u32);
        for (strategy, algorithm) in engines {
            let expected = core_signature(&data, algorithm, B);
            // One block per read, and slices of 3 blocks (3B+1 rounds down) many in flight.
            for (slice, in_flight) in [(B, 1), (3 * B + 1, 5)] {
                let got = hash(
                    &data,
                    &[
                        ("hash", algorithm.name().into()),
                        ("blockSize", (B as u32).into()),
                        ("strategy", strategy.into()),
                        ("workers", 2.into()),
                        ("sliceSize", (slice as u32).into()),
                        ("readsInFlight", in_flight.into()),
                    ],
                )
                .await
                .unwrap();
                assert_eq!(got, expected, "{strategy} {algorithm} size {size} slice {slice}");
            }
        }
    }
}

#[wasm_bindgen_test]
async fn workers_assemble_blocks_larger_than_one_read() {
    // A worker reads 64 KiB at a time into its block buffer: blocks of 256 KiB
    // take several reads, and the last block of each slice and of the file is short.
    let block = 256 * 1024;
    for size in [block - 1, block, block + 1, 3 * block + 100, 7 * block + 65_537] {
        let data = bytes(size, 31 + size as u32);
        for strategy in ["webcrypto", "wasm"] {
            let options = [
                ("blockSize", (block as u32).into()),
                ("strategy", strategy.into()),
                ("workers", 3.into()),
                ("sliceSize", (2 * block as u32).into()),
            ];
            let got = hash(&data, &options).await.unwrap();
            assert_eq!(got, core_signature(&data, HashAlgorithm::Sha1, block), "{strategy} size {size}");
        }
    }
}

#[wasm_bindgen_test]
async fn hashing_falls_back_to_this_thread_where_workers_cannot_start() {
    let global = js_sys::global();
    let worker = Reflect::get(&global, &"Worker".into()).unwrap();
    let refuse = Function::new_no_args("throw new Error('workers are forbidden here')");
    Reflect::set(&global, &"Worker".into(), &refuse).unwrap();
    // 8 MiB and more: workers by default, so this falls back.
    let data = bytes((8 << 20) + 3, 23);
    let by_default = hash(&data, &[("blockSize", (B as u32).into())]).await;
    let asked_for = hash(&data[..B], &[("workers", 3.into())]).await;
    Reflect::set(&global, &"Worker".into(), &worker).unwrap();
    assert_eq!(by_default.unwrap(), core_signature(&data, HashAlgorithm::Sha1, B));
    assert_code(&asked_for.unwrap_err(), "workers_unavailable");
}

#[wasm_bindgen_test]
async fn abort_stops_hashing_in_workers() {
    let data = bytes(64 * B, 29);
    let controller = AbortController::new().unwrap();
    let abort = Function::new_with_args("done", "if (done > 0) this.abort()").bind0(&controller);
    let options = [
        ("blockSize", (B as u32).into()),
        ("workers", 2.into()),
        ("sliceSize", (B as u32).into()),
        ("readsInFlight", 2.into()),
        ("onProgress", abort.into()),
        ("signal", controller.signal().into()),
    ];
    assert_code(&hash(&data, &options).await.unwrap_err(), "aborted");
    let err = hash(&data, &[("workers", 17.into())]).await.unwrap_err();
    assert_code(&err, "invalid_option");
}

#[wasm_bindgen_test]
async fn auto_uses_webcrypto_for_sha_here_and_wasm_for_blake3() {
    // The test page is served from 127.0.0.1, a secure context.
    assert_eq!(hash_strategy(None).unwrap().as_string().as_deref(), Some("webcrypto"));
    let blake3 = object(&[("hash", "blake3".into())]);
    assert_eq!(hash_strategy(Some(blake3)).unwrap().as_string().as_deref(), Some("wasm"));
    let small = object(&[("blockSize", 4096.into())]);
    assert_eq!(hash_strategy(Some(small)).unwrap().as_string().as_deref(), Some("wasm"));
    // Default options: sha1, 1 MiB blocks, over 2.5 blocks.
    let data = bytes(5 << 19, 3);
    let got = to_vec(&hash_blob(blob(&data), None).await.unwrap());
    assert_eq!(got, core_signature(&data, HashAlgorithm::Sha1, 1 << 20));
}

#[wasm_bindgen_test]
async fn sha1_of_abc_is_the_published_vector() {
    let expected = "a9993e364706816aba3e25717850c26c9cd0d89d";
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(&hash_block("sha1", b"abc").unwrap().to_vec()), expected);
    for strategy in ["wasm", "webcrypto"] {
        let signature = hash(b"abc", &[("strategy", strategy.into())]).await.unwrap();
        assert_eq!(signature.len(), 28 + 20);
        assert_eq!(hex(&signature[28..]), expected, "{strategy}");
    }
    let mut hasher = SignatureHasher::new("sha1", 4096).unwrap();
    hasher.update(b"ab").unwrap();
    hasher.update(b"c").unwrap();
    assert_eq!(hasher.bytes_hashed(), 3.0);
    assert_eq!(hex(&hasher.finish().unwrap().to_vec()[28..]), expected);
}

#[wasm_bindgen_test]
fn signature_hasher_matches_the_core_and_reports_blocks() {
    let data = bytes(3 * B + 17, 11);
    for algorithm in HashAlgorithm::ALL {
        let mut hasher = SignatureHasher::new(algorithm.name(), B as u32).unwrap();
        for chunk in data.chunks(333) {
            hasher.update(chunk).unwrap();
        }
        assert_eq!(hasher.completed_blocks(), 3.0);
        let first = hasher.block_digest(0.0).unwrap().to_vec();
        assert_eq!(first, diffcopy_core::hash_block(algorithm, &data[..B]).as_bytes());
        assert!(hasher.block_digest(3.0).is_none());
        assert_eq!(hasher.finish().unwrap().to_vec(), core_signature(&data, algorithm, B));
        let again = hasher.finish().unwrap_err();
        assert_code(&again, "hasher_finished");
    }
}

#[wasm_bindgen_test]
fn diff_signatures_matches_the_core_diff() {
    let old = bytes(10 * B + 5, 1);
    let mut new = old.clone();
    new[2 * B + 3] ^= 0xff;
    new.extend_from_slice(&bytes(B, 2));
    let (s, t) = (core_signature(&new, HashAlgorithm::Sha1, B), core_signature(&old, HashAlgorithm::Sha1, B));
    let expected = diff(&Signature::decode(&s).unwrap(), Some(&Signature::decode(&t).unwrap())).unwrap();
    let got = diff_signatures(&s, Some(t.into_boxed_slice())).unwrap();
    let blocks: Vec<u64> =
        Array::from(&get(&got, "blocks")).iter().map(|b| b.as_f64().unwrap() as u64).collect();
    assert_eq!(blocks, expected.blocks());
    assert_eq!(num(&got, "bytesToSend"), expected.bytes_to_send() as f64);
    assert_eq!(num(&got, "totalBlocks"), 12.0);
    assert_eq!(num(&got, "similarity"), expected.similarity_percent());
    let new_file = diff_signatures(&s, None).unwrap();
    assert_eq!(num(&new_file, "blocksToSend"), 12.0);
    assert_eq!(num(&new_file, "similarity"), 0.0);
    let info = signature_info(&s).unwrap();
    assert_eq!(get(&info, "hash").as_string().as_deref(), Some("sha1"));
    assert_eq!(num(&info, "fileSize"), new.len() as f64);
    assert_eq!(num(&info, "blockSize"), B as f64);
}

#[wasm_bindgen_test]
async fn errors_are_js_errors_with_codes() {
    let err = hash(b"x", &[("hash", "md5".into())]).await.unwrap_err();
    assert_code(&err, "unknown_hash");
    let err = hash(b"x", &[("blockSize", 0.into())]).await.unwrap_err();
    assert_code(&err, "invalid_option");
    let err = hash(b"x", &[("strategy", "webcrypto".into()), ("hash", "blake3".into())]).await.unwrap_err();
    assert_code(&err, "invalid_option");
    let err = hash(b"x", &[("onProgress", "not a function".into())]).await.unwrap_err();
    assert_code(&err, "invalid_option");
    assert_code(&diff_signatures(b"DCSG nonsense", None).unwrap_err(), "bad_signature");
    let other = core_signature(b"abc", HashAlgorithm::Sha256, B);
    let sha1 = core_signature(b"abc", HashAlgorithm::Sha1, B);
    assert_code(&diff_signatures(&sha1, Some(other.into_boxed_slice())).unwrap_err(), "signature_mismatch");
    assert_code(&SignatureHasher::new("sha1", 0).err().unwrap(), "invalid_option");

    let controller = AbortController::new().unwrap();
    controller.abort();
    let err = hash(&bytes(3 * B, 1), &[("signal", controller.signal().into())]).await.unwrap_err();
    assert_code(&err, "aborted");
}

#[wasm_bindgen_test]
async fn progress_reaches_the_total_and_abort_stops_hashing() {
    let data = bytes(8 * B, 5);
    let calls = Array::new();
    let record = Function::new_with_args("done, total", "this.push([done, total])").bind0(&calls);
    let options =
        [("blockSize", (B as u32).into()), ("strategy", "wasm".into()), ("sliceSize", (B as u32).into())];
    let mut with_progress = options.to_vec();
    with_progress.push(("onProgress", record.into()));
    hash(&data, &with_progress).await.unwrap();
    let last = Array::from(&calls.get(calls.length() - 1));
    assert_eq!(last.get(0).as_f64(), Some(data.len() as f64));
    assert_eq!(last.get(1).as_f64(), Some(data.len() as f64));

    // Abort from the progress callback once bytes were hashed (throttling may
    // make that the last call).
    let controller = AbortController::new().unwrap();
    let abort = Function::new_with_args("done", "if (done > 0) this.abort()").bind0(&controller);
    let mut aborting = options.to_vec();
    aborting.push(("onProgress", abort.into()));
    aborting.push(("signal", controller.signal().into()));
    assert_code(&hash(&data, &aborting).await.unwrap_err(), "aborted");
}

/// Protocol v2's block hashes as the core computes them.
fn core_delta_hashes(data: &[u8], block: u32, seed: u64) -> Vec<u8> {
    let levels = diffcopy_core::delta::Levels::for_block(block).unwrap();
    let params = diffcopy_core::delta::DeltaParams { file_size: data.len() as u64, seed, levels };
    let mut builder = diffcopy_core::delta::BlockHashesBuilder::new(params);
    for chunk in data.chunks(block as usize) {
        builder.push_block(chunk);
    }
    builder.finish().unwrap().encode()
}

#[wasm_bindgen_test]
async fn delta_hashes_in_workers_and_on_this_thread_match_the_core_at_edge_sizes() {
    let seed = 0x0123_4567_89ab_cdef;
    for size in SIZES {
        let data = bytes(size, 41 + size as u32);
        let expected = core_delta_hashes(&data, B as u32, seed);
        for (workers, slice, in_flight) in [(0, B, 1), (2, B, 1), (2, 3 * B + 1, 5)] {
            let options = object(&[
                ("seed", "0123456789abcdef".into()),
                ("blockSize", (B as u32).into()),
                ("workers", workers.into()),
                ("sliceSize", (slice as u32).into()),
                ("readsInFlight", in_flight.into()),
            ]);
            let got = to_vec(&delta_hash_blob(blob(&data), Some(options)).await.unwrap());
            assert_eq!(got, expected, "size {size}, {workers} workers, slice {slice}");
        }
    }
    // One block as a worker hashes it.
    let block = bytes(B + 3, 7);
    let one = delta_block_hash(seed, &block);
    let hash = diffcopy_core::delta::BlockHash::of(seed, &block);
    assert_eq!(one[..4], hash.weak.to_le_bytes());
    assert_eq!(one[4..], hash.hash.to_le_bytes());
}
