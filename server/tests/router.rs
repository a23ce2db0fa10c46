//! Every endpoint and its error paths, through the router without a socket.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use diffcopy::{FaultHook, FaultPoint};
use diffcopy_core::{HashAlgorithm, Signature};
use serde_json::json;

mod common;

use common::*;

#[tokio::test]
async fn health_and_unknown_routes() {
    let s = server("health", |_| {});
    let reply = s.get("/api/v1/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ok");
    let reply = s.get("/api/v1/nothing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "no_route");
}

#[tokio::test]
async fn files_with_ranges_and_etags() {
    let s = server("files", |_| {});
    let bytes = data(10_000, 1);
    s.write("dir/f.bin", &bytes);

    let whole = s.get("/api/v1/files/dir/f.bin").await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, bytes);
    assert_eq!(whole.headers[header::ACCEPT_RANGES], "bytes");
    let etag = whole.headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));

    let head = s.send(Method::HEAD, "/api/v1/files/dir/f.bin", &[], Body::empty()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers[header::CONTENT_LENGTH], "10000");
    assert!(head.body.is_empty());

    let part =
        s.send(Method::GET, "/api/v1/files/dir/f.bin", &[("range", "bytes=100-199")], Body::empty()).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, bytes[100..200]);
    assert_eq!(part.headers[header::CONTENT_RANGE], "bytes 100-199/10000");

    let tail = s.send(Method::GET, "/api/v1/files/dir/f.bin", &[("range", "bytes=-10")], Body::empty()).await;
    assert_eq!(tail.body, bytes[9990..]);

    let outside =
        s.send(Method::GET, "/api/v1/files/dir/f.bin", &[("range", "bytes=10000-")], Body::empty()).await;
    assert_eq!(outside.status, StatusCode::RANGE_NOT_SATISFIABLE);

    assert_eq!(s.get("/api/v1/files/dir/missing").await.code(), "not_found");
    let dir = s.get("/api/v1/files/dir").await;
    assert_eq!((dir.status, dir.code().as_str()), (StatusCode::BAD_REQUEST, "not_a_file"));
    let bad = s.get("/api/v1/files/dir/%2e%2e/%2e%2e/etc/passwd").await;
    assert_eq!((bad.status, bad.code().as_str()), (StatusCode::BAD_REQUEST, "bad_path"));
}

#[tokio::test]
async fn signatures_match_the_core_and_are_cached() {
    let s = server("signatures", |_| {});
    let bytes = data(3 * BLOCK as usize + 17, 2);
    s.write("f.bin", &bytes);
    let uri = format!("/api/v1/signatures/f.bin?block_size={BLOCK}&hash=sha1");
    let first = s.get(&uri).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers[header::CONTENT_TYPE], "application/vnd.diffcopy.signature");
    assert_eq!(first.headers[header::CONTENT_LENGTH].to_str().unwrap(), first.body.len().to_string());
    assert_eq!(Signature::decode(&first.body).unwrap(), sign(&bytes, BLOCK));
    assert_eq!(s.stats().signatures_computed, 1);

    let second = s.get(&uri).await;
    assert_eq!(second.body, first.body);
    assert_eq!((s.stats().signatures_computed, s.stats().signature_cache_hits), (1, 1));

    for algorithm in HashAlgorithm::ALL {
        let reply = s.get(&format!("/api/v1/signatures/f.bin?block_size={BLOCK}&hash={algorithm}")).await;
        let sig = Signature::decode(&reply.body).unwrap();
        assert_eq!(sig, Signature::from_reader(algorithm, BLOCK, &bytes[..]).unwrap());
    }

    s.write("empty", b"");
    let empty = Signature::decode(&s.get("/api/v1/signatures/empty").await.body).unwrap();
    assert_eq!((empty.file_size(), empty.digest_count(), empty.block_size()), (0, 0, 1 << 20));

    assert_eq!(s.get("/api/v1/signatures/missing").await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/api/v1/signatures/f.bin?block_size=100").await.code(), "bad_block_size");
    assert_eq!(s.get("/api/v1/signatures/f.bin?block_size=134217728").await.code(), "bad_block_size");
    assert_eq!(s.get("/api/v1/signatures/f.bin?hash=md5").await.code(), "bad_hash");
    assert_eq!(s.get("/api/v1/signatures/f.bin?block_size=-1").await.status, StatusCode::BAD_REQUEST);
}

/// Opens an upload of `source` to `path` and returns its id.
async fn open_upload(s: &Server, path: &str, source: &[u8], base_etag: Option<&str>) -> String {
    let mut request = json!({"path": path, "size": source.len(), "block_size": BLOCK, "hash": "sha1"});
    if let Some(etag) = base_etag {
        request["base_etag"] = json!(etag);
    }
    let reply = s.post_json("/api/v1/uploads", request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let body = reply.json();
    assert_eq!(body["block_count"], source.len().div_ceil(BLOCK as usize));
    body["id"].as_str().unwrap().to_owned()
}

fn block(bytes: &[u8], index: usize) -> &[u8] {
    let start = index * BLOCK as usize;
    &bytes[start..bytes.len().min(start + BLOCK as usize)]
}

#[tokio::test]
async fn upload_sends_changed_blocks_and_commits_atomically() {
    let s = server("upload", |_| {});
    let old = data(8 * BLOCK as usize + 100, 3);
    s.write("t/target.bin", &old);
    let mut new = old.clone();
    new[BLOCK as usize * 2 + 5] ^= 0xff; // block 2 changes
    new.extend_from_slice(&data(5000, 4)); // the short last block grows, one more block
    std::fs::set_permissions(
        s.scratch.root().join("t/target.bin"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let etag = s.get("/api/v1/files/t/target.bin").await.headers[header::ETAG].to_str().unwrap().to_owned();
    let id = open_upload(&s, "t/target.bin", &new, Some(&etag)).await;
    assert_eq!(staging_files(&s.scratch.root()).len(), 1);

    let changed = [2usize, 8, 9];
    for &i in &changed {
        let reply = s.put_block(&id, i as u64, block(&new, i), &digest_hex(block(&new, i))).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
    }
    // Idempotent: the same block again is fine.
    let again = s.put_block(&id, 2, block(&new, 2), &digest_hex(block(&new, 2))).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);

    let status = s.get(&format!("/api/v1/uploads/{id}")).await.json();
    assert_eq!(status["received"], json!([[2, 3], [8, 10]]));
    assert_eq!(status["received_blocks"], 3);

    // Readers still see the old file until the commit.
    assert_eq!(s.read("t/target.bin"), old);
    let reply =
        s.send(Method::POST, &format!("/api/v1/uploads/{id}/commit"), &[], sign(&new, BLOCK).encode()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let outcome = reply.json();
    assert_eq!((outcome["blocks_uploaded"].as_u64(), outcome["blocks_reused"].as_u64()), (Some(3), Some(7)));
    assert_eq!(s.read("t/target.bin"), new);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.scratch.root().join("t/target.bin")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the old file's permissions are kept");
    assert_eq!(
        outcome["etag"].as_str().unwrap(),
        s.get("/api/v1/files/t/target.bin").await.headers[header::ETAG].to_str().unwrap()
    );
    assert!(staging_files(&s.scratch.root()).is_empty());
    assert_eq!(s.get(&format!("/api/v1/uploads/{id}")).await.code(), "no_such_upload");
    let stats = s.stats();
    assert_eq!((stats.uploads_committed, stats.blocks_received), (1, 4));
}

/// A block PUT admitted before a commit holds the commit until it is on
/// disk; a PUT that arrives once the commit started is refused with 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_write_in_flight_holds_the_commit_and_later_blocks_are_refused() {
    let (entered, held) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let hook = FaultHook::new(move |point| {
        if point == (FaultPoint::BlockWrite { index: 1 }) {
            let _ = entered.send(());
            let _ = released.lock().unwrap().recv();
        }
    });
    let s = Arc::new(server("race", |c| c.fault_hook = Some(hook)));
    let new = data(2 * BLOCK as usize, 11);
    let (b0, b1) = new.split_at(BLOCK as usize);
    let created = s
        .post_json("/api/v1/uploads", json!({"path": "r.bin", "size": new.len(), "block_size": BLOCK}))
        .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.put_block(&id, 0, b0, &digest_hex(b0)).await.status, StatusCode::NO_CONTENT);

    let in_flight = {
        let (s, id, b1) = (s.clone(), id.clone(), b1.to_vec());
        tokio::spawn(async move { s.put_block(&id, 1, &b1, &digest_hex(&b1)).await })
    };
    tokio::task::spawn_blocking(move || held.recv_timeout(std::time::Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the PUT of block 1 reaches its write");
    let commit = {
        let (s, id, signature) = (s.clone(), id.clone(), sign(&new, BLOCK).encode());
        tokio::spawn(async move {
            s.send(Method::POST, &format!("/api/v1/uploads/{id}/commit"), &[], signature).await
        })
    };
    // Once the commit has started, a block is refused...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let late = s.put_block(&id, 0, b0, &digest_hex(b0)).await;
        if late.status == StatusCode::CONFLICT {
            assert_eq!(late.code(), "commit_in_progress");
            break;
        }
        assert_eq!(late.status, StatusCode::NO_CONTENT);
        assert!(std::time::Instant::now() < deadline, "the commit never started");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // ...and the commit waits for the write it admitted before.
    assert!(!commit.is_finished(), "the commit did not wait for block 1");
    release.send(()).unwrap();
    assert_eq!(in_flight.await.unwrap().status, StatusCode::NO_CONTENT);
    let committed = commit.await.unwrap();
    assert_eq!(committed.status, StatusCode::OK, "{:?}", committed.body);
    assert_eq!(committed.json()["blocks_uploaded"], 2);
    assert_eq!(s.read("r.bin"), new);
}

#[tokio::test]
async fn new_file_in_new_directories_and_shrinking() {
    let s = server("newfile", |_| {});
    let new = data(2 * BLOCK as usize + 1, 5);
    let id = open_upload(&s, "a/b/c/new.bin", &new, None).await;
    for i in 0..3 {
        assert_eq!(s.put_block(&id, i as u64, block(&new, i), &digest_hex(block(&new, i))).await.status, 204);
    }
    let commit =
        s.send(Method::POST, &format!("/api/v1/uploads/{id}/commit"), &[], sign(&new, BLOCK).encode()).await;
    assert_eq!(commit.status, StatusCode::OK, "{:?}", commit.body);
    assert_eq!(s.read("a/b/c/new.bin"), new);

    // Shrink to one and a half blocks: only the new short block is sent.
    let short = new[..BLOCK as usize + BLOCK as usize / 2].to_vec();
    let id = open_upload(&s, "a/b/c/new.bin", &short, None).await;
    assert_eq!(s.put_block(&id, 1, block(&short, 1), &digest_hex(block(&short, 1))).await.status, 204);
    let commit = s
        .send(Method::POST, &format!("/api/v1/uploads/{id}/commit"), &[], sign(&short, BLOCK).encode())
        .await;
    assert_eq!(commit.status, StatusCode::OK, "{:?}", commit.body);
    assert_eq!(s.read("a/b/c/new.bin"), short);

    // An empty file.
    let id = open_upload(&s, "empty.bin", b"", None).await;
    let commit =
        s.send(Method::POST, &format!("/api/v1/uploads/{id}/commit"), &[], sign(b"", BLOCK).encode()).await;
    assert_eq!(commit.status, StatusCode::OK);
    assert_eq!(s.read("empty.bin"), b"");
}

#[tokio::test]
async fn blocks_are_checked_before_they_are_kept() {
    let s = server("blockchecks", |_| {});
    let new = data(2 * BLOCK as usize + 10, 6);
    let id = open_upload(&s, "f.bin", &new, None).await;
    let b0 = block(&new, 0);
    let wrong = s.put_block(&id, 0, b0, &digest_hex(block(&new, 1))).await;
    assert_eq!((wrong.status, wrong.code().as_str()), (StatusCode::BAD_REQUEST, "bad_digest"));
    let short = s.put_block(&id, 0, &b0[..100], &digest_hex(&b0[..100])).await;
    assert_eq!(short.code(), "bad_block_length");
    let last_too_long = s.put_block(&id, 2, &b0[..11], &digest_hex(&b0[..11])).await;
    assert_eq!(last_too_long.code(), "bad_block_length");
    let too_big = s.put_block(&id, 0, &data(BLOCK as usize + 1, 0), "00").await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let past = s.put_block(&id, 3, b"x", &digest_hex(b"x")).await;
    assert_eq!(past.code(), "block_out_of_range");
    let not_hex = s.put_block(&id, 0, b0, "zz").await;
    assert_eq!(not_hex.code(), "bad_digest");
    let none = s.send(Method::PUT, &format!("/api/v1/uploads/{id}/blocks/0"), &[], b0.to_vec()).await;
    assert_eq!(none.code(), "missing_digest");
    let bad_index = s.put_block(&id, 0, b0, "00").await;
    assert_eq!(bad_index.status, StatusCode::BAD_REQUEST);
    let text_index = s.send(Method::PUT, &format!("/api/v1/uploads/{id}/blocks/x"), &[], b0.to_vec()).await;
    assert_eq!(text_index.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.get(&format!("/api/v1/uploads/{id}")).await.json()["received_blocks"], 0);
    assert_eq!(s.put_block("nope", 0, b0, &digest_hex(b0)).await.code(), "no_such_upload");
}

#[tokio::test]
async fn commit_refuses_what_it_cannot_verify() {
    let s = server("commitchecks", |_| {});
    let old = data(4 * BLOCK as usize, 7);
    s.write("f.bin", &old);
    let mut new = old.clone();
    new[0] ^= 1;
    new[3 * BLOCK as usize] ^= 1;
    let id = open_upload(&s, "f.bin", &new, None).await;
    let commit_uri = format!("/api/v1/uploads/{id}/commit");
    // Block 0 uploaded, block 3 neither uploaded nor unchanged.
    assert_eq!(s.put_block(&id, 0, block(&new, 0), &digest_hex(block(&new, 0))).await.status, 204);
    let reply = s.send(Method::POST, &commit_uri, &[], sign(&new, BLOCK).encode()).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "missing_blocks"));
    assert_eq!(reply.json()["missing"], json!([[3, 4]]));
    assert_eq!(s.read("f.bin"), old);

    // A signature that is not the uploaded blocks'.
    let other = sign(&data(4 * BLOCK as usize, 8), BLOCK).encode();
    let reply = s.send(Method::POST, &commit_uri, &[], other).await;
    assert_eq!(reply.code(), "digest_mismatch");
    // A signature of another size, and garbage.
    let reply = s.send(Method::POST, &commit_uri, &[], sign(&new[..100], BLOCK).encode()).await;
    assert_eq!(reply.code(), "signature_mismatch");
    let reply = s.send(Method::POST, &commit_uri, &[], b"DCSG garbage".to_vec()).await;
    assert_eq!(reply.code(), "bad_signature");
    let mut long = sign(&new, BLOCK).encode();
    long.extend_from_slice(&[0; 64]);
    assert_eq!(s.send(Method::POST, &commit_uri, &[], long).await.status, StatusCode::PAYLOAD_TOO_LARGE);

    // The missing block arrives: the commit goes through.
    assert_eq!(s.put_block(&id, 3, block(&new, 3), &digest_hex(block(&new, 3))).await.status, 204);
    let reply = s.send(Method::POST, &commit_uri, &[], sign(&new, BLOCK).encode()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(s.read("f.bin"), new);
}

#[tokio::test]
async fn a_changed_target_fails_the_precondition() {
    let s = server("etag", |_| {});
    let old = data(2 * BLOCK as usize, 9);
    s.write("f.bin", &old);
    let etag = s.get("/api/v1/files/f.bin").await.headers[header::ETAG].to_str().unwrap().to_owned();
    let reply = s
        .post_json(
            "/api/v1/uploads",
            json!({"path": "f.bin", "size": 10, "block_size": BLOCK, "base_etag": "\"stale\""}),
        )
        .await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::PRECONDITION_FAILED, "target_changed"));

    // Every block replaced, base_etag still current: the commit goes through.
    let replaced = data(2 * BLOCK as usize, 13);
    let id = open_upload(&s, "f.bin", &replaced, Some(&etag)).await;
    for i in 0..2 {
        s.put_block(&id, i, block(&replaced, i as usize), &digest_hex(block(&replaced, i as usize))).await;
    }
    let reply = s
        .send(Method::POST, &format!("/api/v1/uploads/{id}/commit"), &[], sign(&replaced, BLOCK).encode())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(s.read("f.bin"), replaced);
    let etag = reply.json()["etag"].as_str().unwrap().to_owned();

    let new = data(2 * BLOCK as usize, 10);
    let id = open_upload(&s, "f.bin", &new, Some(&etag)).await;
    for i in 0..2 {
        s.put_block(&id, i, block(&new, i as usize), &digest_hex(block(&new, i as usize))).await;
    }
    let someone_else = data(100, 11);
    s.write("f.bin", &someone_else);
    let reply =
        s.send(Method::POST, &format!("/api/v1/uploads/{id}/commit"), &[], sign(&new, BLOCK).encode()).await;
    assert_eq!(reply.status, StatusCode::PRECONDITION_FAILED, "{:?}", reply.body);
    assert_eq!(s.read("f.bin"), someone_else);
}

#[tokio::test]
async fn abort_removes_the_staging_file_and_limits_hold() {
    let s = server("abort", |c| {
        c.max_uploads = 2;
        c.max_file_size = 1 << 20;
    });
    let id = open_upload(&s, "f.bin", &data(100, 1), None).await;
    assert_eq!(staging_files(&s.scratch.root()).len(), 1);
    let reply = s.send(Method::DELETE, &format!("/api/v1/uploads/{id}"), &[], Body::empty()).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(staging_files(&s.scratch.root()).is_empty());
    assert!(!s.scratch.root().join("f.bin").exists());
    let reply = s.send(Method::DELETE, &format!("/api/v1/uploads/{id}"), &[], Body::empty()).await;
    assert_eq!(reply.code(), "no_such_upload");

    let big =
        s.post_json("/api/v1/uploads", json!({"path": "big", "size": 2 << 20, "block_size": BLOCK})).await;
    assert_eq!((big.status, big.code().as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"));
    let small_block =
        s.post_json("/api/v1/uploads", json!({"path": "x", "size": 1, "block_size": 512})).await;
    assert_eq!(small_block.code(), "bad_block_size");
    let bad_path =
        s.post_json("/api/v1/uploads", json!({"path": "../x", "size": 1, "block_size": BLOCK})).await;
    assert_eq!(bad_path.code(), "bad_path");
    let reserved =
        s.post_json("/api/v1/uploads", json!({"path": ".diffcopy-x", "size": 1, "block_size": BLOCK})).await;
    assert_eq!(reserved.code(), "bad_path");
    let not_json =
        s.send(Method::POST, "/api/v1/uploads", &[("content-type", "application/json")], "{").await;
    assert_eq!(not_json.status.as_u16() / 100, 4);

    open_upload(&s, "a", b"1", None).await;
    open_upload(&s, "b", b"2", None).await;
    let third = s.post_json("/api/v1/uploads", json!({"path": "c", "size": 1, "block_size": BLOCK})).await;
    assert_eq!((third.status, third.code().as_str()), (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"));
}

#[tokio::test]
async fn block_counts_are_bounded() {
    let s = server("blockcount", |_| {});
    let too_many = (1u64 << 24) * u64::from(BLOCK) + 1;
    let reply =
        s.post_json("/api/v1/uploads", json!({"path": "huge", "size": too_many, "block_size": BLOCK})).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::BAD_REQUEST, "too_many_blocks"));
    let ok = s
        .post_json("/api/v1/uploads", json!({"path": "huge", "size": too_many, "block_size": 2 * BLOCK}))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    // A sparse file as large: its signature in 4 KiB blocks is refused before any hashing.
    let file = std::fs::File::create(s.scratch.root().join("sparse")).unwrap();
    file.set_len(too_many).unwrap();
    let reply = s.get(&format!("/api/v1/signatures/sparse?block_size={BLOCK}")).await;
    assert_eq!(reply.code(), "too_many_blocks");
    assert_eq!(s.stats().signatures_computed, 0);
}

#[tokio::test]
async fn idle_uploads_expire_with_their_staging_files() {
    let s = server("expire", |_| {});
    open_upload(&s, "f.bin", &data(100, 1), None).await;
    assert_eq!(s.state.expire_uploads(std::time::Duration::from_secs(3600)), 0);
    assert_eq!(s.state.expire_uploads(std::time::Duration::ZERO), 1);
    assert_eq!(s.state.open_uploads(), 0);
    assert!(staging_files(&s.scratch.root()).is_empty());
}

#[tokio::test]
async fn token_and_read_only() {
    let s = server("auth", |c| c.token = Some("s3cret".into()));
    assert_eq!(s.get("/api/v1/health").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/info?filename=/x").await.status, StatusCode::UNAUTHORIZED);
    let wrong =
        s.send(Method::GET, "/api/v1/health", &[("authorization", "Bearer nope")], Body::empty()).await;
    assert_eq!(wrong.code(), "unauthorized");
    let ok =
        s.send(Method::GET, "/api/v1/health", &[("authorization", "Bearer s3cret")], Body::empty()).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(s.get("/").await.status, StatusCode::OK, "the page itself is public");

    let ro = server("readonly", |c| c.read_only = true);
    ro.write("f.bin", b"keep");
    let reply = ro.post_json("/api/v1/uploads", json!({"path": "n", "size": 1, "block_size": BLOCK})).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::FORBIDDEN, "read_only"));
    let reply = ro.send(Method::POST, "/blocks?filename=/f.bin&offset=0", &[], "XXXX").await;
    assert_eq!(reply.code(), "read_only");
    assert_eq!(
        ro.send(Method::POST, "/resize?filename=/f.bin&size=0", &[], Body::empty()).await.code(),
        "read_only"
    );
    assert_eq!(ro.read("f.bin"), b"keep");
    assert_eq!(ro.get("/api/v1/files/f.bin").await.body, &b"keep"[..]);
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let s = server("cors", |c| c.cors_origins = vec!["http://page.example".into()]);
    let preflight = s
        .send(
            Method::OPTIONS,
            "/api/v1/uploads",
            &[("origin", "http://page.example"), ("access-control-request-method", "PUT")],
            Body::empty(),
        )
        .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers["access-control-allow-origin"], "http://page.example");
    assert!(preflight.headers["access-control-allow-headers"].to_str().unwrap().contains("x-block-digest"));
    let get =
        s.send(Method::GET, "/api/v1/health", &[("origin", "http://page.example")], Body::empty()).await;
    assert_eq!(get.headers["access-control-allow-origin"], "http://page.example");
    assert!(get.headers["access-control-expose-headers"].to_str().unwrap().contains("etag"));
    let other =
        s.send(Method::GET, "/api/v1/health", &[("origin", "http://evil.example")], Body::empty()).await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn pdiffcopy_endpoints() {
    let s = server("compat", |_| {});
    let bytes = data(2 * BLOCK as usize + 7, 12);
    s.write("dir/f.bin", &bytes);
    let info = s.get("/info?filename=/dir/f.bin").await;
    assert_eq!(info.json(), json!({"size": bytes.len()}));
    let missing = s.get("/info?filename=/dir/none").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.is_empty(), "pdiffcopy expects an empty 404");

    let hashes =
        s.get(&format!("/hashes?filename=/dir/f.bin&method=sha1&block_size={BLOCK}&concurrency=999")).await;
    assert_eq!(hashes.status, StatusCode::OK);
    assert!(hashes.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(hashes.body.to_vec()).unwrap();
    assert_eq!(text, sign(&bytes, BLOCK).to_text());

    let got = s.get(&format!("/blocks?filename=/dir/f.bin&offset={}&size={BLOCK}", 2 * BLOCK)).await;
    assert_eq!(got.body, bytes[2 * BLOCK as usize..]);
    let past = s.get("/blocks?filename=/dir/f.bin&offset=999999&size=10").await;
    assert_eq!((past.status, past.body.len()), (StatusCode::OK, 0));

    let reply = s.send(Method::POST, "/resize?filename=/new/deep/g.bin&size=10", &[], Body::empty()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = s.send(Method::POST, "/blocks?filename=/new/deep/g.bin&offset=4", &[], "abc").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(s.read("new/deep/g.bin"), b"\0\0\0\0abc\0\0\0");
    assert_eq!(s.stats().pdiffcopy_bytes_written, 3);
    s.send(Method::POST, "/resize?filename=/new/deep/g.bin&size=5", &[], Body::empty()).await;
    assert_eq!(s.read("new/deep/g.bin"), b"\0\0\0\0a");

    for bad in [
        "/hashes?filename=/dir/f.bin&method=md5",
        "/hashes?filename=/dir/f.bin&block_size=abc",
        "/blocks?filename=/dir/f.bin",
        "/blocks?filename=/dir/f.bin&offset=-1&size=1",
        "/blocks?filename=/dir/f.bin&offset=0&size=999999999999",
        "/info",
        "/info?filename=/../etc/passwd",
        "/info?filename=/a%00b",
        "/hashes?filename=/dir",
    ] {
        let reply = s.get(bad).await;
        assert!(reply.status.is_client_error(), "{bad}: {}", reply.status);
        assert!(!reply.body.is_empty(), "{bad}: {} with an empty body", reply.status);
        assert!(!reply.json()["message"].as_str().unwrap().is_empty(), "{bad}");
    }
    let reply = s.send(Method::POST, "/blocks?filename=/dir/none&offset=0", &[], "x").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply =
        s.send(Method::POST, "/resize?filename=/huge&size=99999999999999999", &[], Body::empty()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}
