//! Uploads against a real diffcopy server: protocol v2 (the default) and
//! API v1.
//!
//! The server's URL is compiled in from `DIFFCOPY_SERVER_URL`, e.g.
//! `DIFFCOPY_SERVER_URL=http://127.0.0.1:8080 wasm-pack test --headless --chrome web --test server`.
//! Without it these tests fail: they never pass without a server.

#![cfg(target_arch = "wasm32")]

mod common;

use common::{assert_code, bytes, file, get, num, object};
use diffcopy_web::upload_file;
use gloo_net::http::Request;
use js_sys::{Array, Date, Function};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{AbortController, File};

wasm_bindgen_test_configure!(run_in_browser);

const BLOCK: usize = 64 * 1024;

fn server() -> &'static str {
    match option_env!("DIFFCOPY_SERVER_URL") {
        Some(url) => url,
        None => panic!("set DIFFCOPY_SERVER_URL to a running diffcopy server when building"),
    }
}

/// A path no other test run uses.
fn unique(name: &str) -> String {
    format!("web-tests/{}-{name}", Date::now() as u64)
}

/// The file's bytes as the server has them.
async fn server_file(path: &str) -> Vec<u8> {
    let url = format!("{}/api/v1/files/{path}", server());
    let response = Request::get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.binary().await.unwrap()
}

async fn upload(data: &[u8], path: &str, extra: &[(&str, JsValue)]) -> Result<JsValue, JsValue> {
    upload_this(&file(data, "upload.bin"), path, extra).await
}

/// [`upload`] over API v1.
async fn upload_v1(data: &[u8], path: &str, extra: &[(&str, JsValue)]) -> Result<JsValue, JsValue> {
    let mut options = vec![("protocol", JsValue::from("v1"))];
    options.extend_from_slice(extra);
    upload(data, path, &options).await
}

/// Uploads `file` itself: the same `File` object again is what resumes.
async fn upload_this(file: &File, path: &str, extra: &[(&str, JsValue)]) -> Result<JsValue, JsValue> {
    let mut options = vec![
        ("serverUrl", JsValue::from(server())),
        ("path", path.into()),
        ("blockSize", (BLOCK as u32).into()),
        ("concurrency", 3.into()),
    ];
    options.extend_from_slice(extra);
    upload_file(file.clone().into(), Some(object(&options))).await
}

#[wasm_bindgen_test]
async fn v2_an_insertion_sends_a_piece_and_the_map_says_where() {
    let path = unique("v2-insert.bin");
    let old = bytes(20 * BLOCK + 123, 11);
    let first = upload(&old, &path, &[]).await.unwrap();
    assert_eq!(get(&first, "protocol").as_string().as_deref(), Some("v2"));
    assert_eq!(num(&first, "bytesSent"), old.len() as f64);
    assert_eq!(num(&first, "similarity"), 0.0);

    let mut new = old[..5 * BLOCK + 7].to_vec();
    new.extend_from_slice(&bytes(100, 12));
    new.extend_from_slice(&old[5 * BLOCK + 7..]);
    let phases = Array::new();
    let record = Function::new_with_args("phase", "this.push(phase)").bind0(&phases);
    let second = upload(&new, &path, &[("onProgress", record.into())]).await.unwrap();
    let sent = num(&second, "bytesSent");
    assert!((100.0..=1024.0).contains(&sent), "sent {sent} bytes for a 100-byte insertion");
    assert!(num(&second, "payloadBytes") < 16.0 * 1024.0, "{:?}", get(&second, "payloadBytes"));
    assert!(num(&second, "movedBytes") > (14 * BLOCK) as f64, "the shifted data counts as moved");
    let sent_ranges = Array::from(&get(&second, "sentRanges"));
    let first_sent = Array::from(&sent_ranges.get(0));
    assert!(first_sent.get(0).as_f64().unwrap() <= (5 * BLOCK + 7) as f64);
    assert!(first_sent.get(1).as_f64().unwrap() >= (5 * BLOCK + 107) as f64);
    assert_eq!(server_file(&path).await, new);
    for phase in ["hashing", "searching", "uploading", "committing"] {
        assert!(phases.includes(&phase.into(), 0), "no {phase} progress");
    }
}

#[wasm_bindgen_test]
async fn v2_the_same_file_sends_only_hashes_and_growth_and_shrinking_work() {
    let path = unique("v2-same.bin");
    let data = bytes(7 * BLOCK + 5, 13);
    upload(&data, &path, &[]).await.unwrap();
    let again = upload(&data, &path, &[]).await.unwrap();
    assert_eq!(num(&again, "bytesSent"), 0.0);
    assert_eq!(num(&again, "similarity"), 100.0);
    assert_eq!(get(&again, "commit").as_string().as_deref(), Some("none"));
    let mut longer = data.clone();
    longer.extend_from_slice(&bytes(BLOCK + 1, 14));
    let grown = upload(&longer, &path, &[]).await.unwrap();
    // The new bytes, and the old tail's 5 bytes that now share a block with
    // them (less than the finest piece: they travel too).
    assert_eq!(num(&grown, "bytesSent"), (BLOCK + 1 + 5) as f64);
    assert_eq!(server_file(&path).await, longer);
    let shorter = &data[..BLOCK - 1];
    upload(shorter, &path, &[]).await.unwrap();
    assert_eq!(server_file(&path).await, shorter);
    upload(b"", &path, &[]).await.unwrap();
    assert!(server_file(&path).await.is_empty());
}

#[wasm_bindgen_test]
async fn v2_an_aborted_upload_resumes_with_the_missing_data() {
    let path = unique("v2-resume.bin");
    let data = bytes(40 * BLOCK, 15);
    let picked = file(&data, "v2-resume.bin");
    let controller = AbortController::new().unwrap();
    let abort = Function::new_with_args("phase, done", "if (phase === 'uploading' && done > 0) this.abort()")
        .bind0(&controller);
    let options =
        [("onProgress", abort.into()), ("signal", controller.signal().into()), ("concurrency", 1.into())];
    let err = upload_this(&picked, &path, &options).await.unwrap_err();
    assert_code(&err, "aborted");

    let resumed = upload_this(&picked, &path, &[]).await.unwrap();
    let (sent, earlier) = (num(&resumed, "bytesSent"), num(&resumed, "bytesResumed"));
    assert!(earlier > 0.0, "nothing resumed");
    assert_eq!(sent + earlier, data.len() as f64);
    assert_eq!(server_file(&path).await, data);
}

#[wasm_bindgen_test]
async fn v1_a_new_file_then_two_changed_blocks() {
    let path = unique("two-blocks.bin");
    let mut data = bytes(20 * BLOCK + 123, 1);
    let first = upload_v1(&data, &path, &[]).await.unwrap();
    assert_eq!(num(&first, "blocksSent"), 21.0);
    assert_eq!(num(&first, "bytesSent"), data.len() as f64);
    assert_eq!(num(&first, "similarity"), 0.0);
    assert_eq!(server_file(&path).await, data);

    data[3 * BLOCK + 5] ^= 1;
    data[20 * BLOCK + 100] ^= 1;
    let phases = Array::new();
    let record = Function::new_with_args("phase", "this.push(phase)").bind0(&phases);
    let second = upload_v1(&data, &path, &[("onProgress", record.into())]).await.unwrap();
    assert_eq!(num(&second, "blocksSent"), 2.0);
    assert_eq!(num(&second, "bytesSent"), (BLOCK + 123) as f64);
    assert_eq!(num(&second, "totalBlocks"), 21.0);
    let similarity = num(&second, "similarity");
    assert!(similarity > 90.0 && similarity < 100.0, "{similarity}");
    assert_eq!(server_file(&path).await, data);
    for phase in ["comparing", "hashing", "uploading", "committing"] {
        assert!(phases.includes(&phase.into(), 0), "no {phase} progress");
    }
}

#[wasm_bindgen_test]
async fn v1_the_same_file_again_sends_nothing_and_shrinking_works() {
    let path = unique("same.bin");
    let data = bytes(5 * BLOCK, 2);
    upload_v1(&data, &path, &[]).await.unwrap();
    let again = upload_v1(&data, &path, &[]).await.unwrap();
    assert_eq!(num(&again, "blocksSent"), 0.0);
    assert_eq!(num(&again, "similarity"), 100.0);
    let shorter = &data[..2 * BLOCK + 10];
    let shrunk = upload_v1(shorter, &path, &[]).await.unwrap();
    assert_eq!(num(&shrunk, "bytesSent"), 10.0);
    assert_eq!(server_file(&path).await, shorter);
}

#[wasm_bindgen_test]
async fn v1_an_aborted_upload_resumes_with_the_missing_blocks() {
    let path = unique("resume.bin");
    let data = bytes(40 * BLOCK, 3);
    let picked = file(&data, "resume.bin");
    let controller = AbortController::new().unwrap();
    // Abort once some block has been uploaded.
    let abort = Function::new_with_args("phase, done", "if (phase === 'uploading' && done > 0) this.abort()")
        .bind0(&controller);
    let err = upload_this(
        &picked,
        &path,
        &[
            ("protocol", "v1".into()),
            ("onProgress", abort.into()),
            ("signal", controller.signal().into()),
            ("concurrency", 1.into()),
        ],
    )
    .await
    .unwrap_err();
    assert_code(&err, "aborted");

    let resumed = upload_this(&picked, &path, &[("protocol", "v1".into())]).await.unwrap();
    let (sent, earlier) = (num(&resumed, "blocksSent"), num(&resumed, "blocksResumed"));
    assert!(earlier >= 1.0, "nothing resumed");
    assert_eq!(sent + earlier, 40.0);
    assert_eq!(server_file(&path).await, data);
}

#[wasm_bindgen_test]
async fn server_errors_keep_the_server_code_and_status() {
    let err = upload(b"x", "../outside.bin", &[]).await.unwrap_err();
    assert_code(&err, "bad_path");
    assert_eq!(get(&err, "status").as_f64(), Some(400.0));
    let err = upload_v1(b"x", &unique("bad-block-size.bin"), &[("blockSize", 100.into())]).await.unwrap_err();
    assert!(get(&err, "status").as_f64().is_some_and(|s| s == 400.0), "{err:?}");
    let err = upload(b"x", &unique("bad-block-size.bin"), &[("blockSize", 100.into())]).await.unwrap_err();
    assert_code(&err, "bad_block_size");
    assert_eq!(get(&err, "status").as_f64(), Some(400.0));
}

#[wasm_bindgen_test]
async fn an_unreachable_server_is_a_network_error() {
    let options = object(&[("serverUrl", "http://127.0.0.1:9".into()), ("path", "x.bin".into())]);
    let err = upload_file(file(b"x", "x.bin").into(), Some(options)).await.unwrap_err();
    assert_code(&err, "network_error");
}
