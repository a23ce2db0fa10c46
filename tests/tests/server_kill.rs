//! A server killed with SIGKILL in the middle of an upload: the target keeps
//! its old content byte for byte, the upload resumes after a restart, and an
//! expired one leaves no staging file behind.

use std::path::Path;

use diffcopy_core::hash_block;
use diffcopy_tests::{Scratch, ServerProcess, data, sign};
use serde_json::{Value, json};

const BLOCK: usize = 64 << 10;

fn staging_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".diffcopy-") && n.ends_with(".part"))
        .collect()
}

fn put_block(client: &reqwest::blocking::Client, url: &str, id: &str, bytes: &[u8], index: usize) {
    let block = &bytes[index * BLOCK..bytes.len().min((index + 1) * BLOCK)];
    let digest = hash_block(diffcopy_core::HashAlgorithm::Sha1, block).to_string();
    let reply = client
        .put(format!("{url}/api/v1/uploads/{id}/blocks/{index}"))
        .header("x-block-digest", digest)
        .body(block.to_vec())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 204);
}

#[test]
fn sigkill_mid_upload_keeps_the_old_target_and_the_upload_resumes() {
    let scratch = Scratch::new("server-kill");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let old = data(16 * BLOCK + 99, 1);
    std::fs::write(root.join("target.bin"), &old).unwrap();
    let new = data(16 * BLOCK + 99, 2);
    let client = diffcopy_tests::http();

    let mut server = ServerProcess::start(&root, &[]);
    let url = server.url();
    let created: Value = client
        .post(format!("{url}/api/v1/uploads"))
        .json(&json!({"path": "target.bin", "size": new.len(), "block_size": BLOCK, "hash": "sha1"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    for index in 0..9 {
        put_block(&client, &url, &id, &new, index);
    }
    server.kill9();
    assert!(std::fs::read(root.join("target.bin")).unwrap() == old, "the target changed");
    assert_eq!(staging_files(&root).len(), 1);

    // A new server resumes the session: the 9 blocks are there.
    let server = ServerProcess::start(&root, &[]);
    let url = server.url();
    let status: Value = client.get(format!("{url}/api/v1/uploads/{id}")).send().unwrap().json().unwrap();
    assert_eq!(status["received"], json!([[0, 9]]), "{status}");
    for index in 9..17 {
        put_block(&client, &url, &id, &new, index);
    }
    let reply = client
        .post(format!("{url}/api/v1/uploads/{id}/commit"))
        .body(sign(&new, BLOCK as u32).encode())
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200, "{}", reply.text().unwrap());
    assert!(std::fs::read(root.join("target.bin")).unwrap() == new);
    assert!(staging_files(&root).is_empty());
}

#[test]
fn a_restart_after_expiry_removes_the_staging_file() {
    let scratch = Scratch::new("server-kill-expiry");
    let root = scratch.path().join("root");
    let client = diffcopy_tests::http();
    let mut server = ServerProcess::start(&root, &[]);
    let reply = client
        .post(format!("{}/api/v1/uploads", server.url()))
        .json(&json!({"path": "sub/f.bin", "size": 10, "block_size": 4096}))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 201);
    server.kill9();
    assert_eq!(staging_files(&root.join("sub")).len(), 1);
    let _server = ServerProcess::start(&root, &["--upload-ttl", "0"]);
    assert!(staging_files(&root.join("sub")).is_empty());
    assert!(!root.join("sub/f.bin").exists());
}
