//! kill -9 at more points of an upload: the client while it hashes, and the
//! server when the last block has arrived (the commit is under way or about
//! to start). Afterwards the target is the old or the new content, whole,
//! and a rerun completes.

use std::path::Path;
use std::time::Duration;

use diffcopy_tests::{Client, InProcessServer, Scratch, ServerProcess, data, wait_until};
use serde_json::Value;

const BLOCK: usize = 64 << 10;

fn client(protocol: &str, source: &Path, url: &str, state: &Path) -> Client {
    Client::new(state).args(["--protocol", protocol, "-q", "-b", "64K", "-c", "1"]).arg(source).arg(url)
}

fn rerun(protocol: &str, source: &Path, url: &str, state: &Path) {
    let run = client(protocol, source, url, state).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// The client is killed once the server saw its first request of an
/// upload (v1: the signature; v2: the session), while it still hashes.
fn client_killed_while_hashing(protocol: &str) {
    let scratch = Scratch::new(&format!("kill-hashing-{protocol}"));
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let old = data(1024 * BLOCK, 1);
    std::fs::write(root.join("f.bin"), &old).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let mut new = old.clone();
    new[500 * BLOCK] ^= 1;
    let source = scratch.path().join("new.bin");
    std::fs::write(&source, &new).unwrap();
    let url = format!("{}/f.bin", server.url());
    let state = scratch.path().join("state");

    let mut child = client(protocol, &source, &url, &state).spawn();
    // The server starts hashing when the client asks for its signature (v1)
    // or opens the session (v2); the client hashes meanwhile.
    wait_until(Duration::from_secs(30), "the client's first request", || {
        let stats = server.state.stats();
        stats.signatures_computed + stats.delta_uploads_created > 0
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(std::fs::read(root.join("f.bin")).unwrap() == old);
    rerun(protocol, &source, &url, &state);
    assert!(std::fs::read(root.join("f.bin")).unwrap() == new);
}

#[test]
fn client_killed_while_hashing_leaves_the_target_alone_v1() {
    client_killed_while_hashing("v1");
}

#[test]
fn client_killed_while_hashing_leaves_the_target_alone_v2() {
    client_killed_while_hashing("v2");
}

/// The server is killed once the whole new content has arrived (the commit
/// is under way or about to start).
fn server_killed_at_commit(protocol: &str) {
    let scratch = Scratch::new(&format!("kill-commit-{protocol}"));
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let old = data(2048 * BLOCK, 2);
    std::fs::write(root.join("f.bin"), &old).unwrap();
    let new = data(2048 * BLOCK, 3);
    let source = scratch.path().join("new.bin");
    std::fs::write(&source, &new).unwrap();
    let state = scratch.path().join("state");

    let mut server = ServerProcess::start(&root, &[]);
    let url = format!("{}/f.bin", server.url());
    let mut child = client(protocol, &source, &url, &state).spawn();
    let http = diffcopy_tests::http();
    wait_until(Duration::from_secs(60), "the upload to send its last bytes", || {
        let stats: Value = http.get(format!("{}/api/v1/stats", server.url())).send().unwrap().json().unwrap();
        assert!(child.try_wait().unwrap().is_none(), "the client ended before its last bytes: {stats}");
        let arrived =
            stats["bytes_received"].as_u64().unwrap() + stats["literal_bytes_received"].as_u64().unwrap();
        arrived == new.len() as u64
    });
    server.kill9();
    let _ = child.wait();
    let on_disk = std::fs::read(root.join("f.bin")).unwrap();
    assert!(on_disk == old || on_disk == new, "the target is a mixture");

    let _server = ServerProcess::start(&root, &[]);
    let url = format!("{}/f.bin", _server.url());
    rerun(protocol, &source, &url, &state);
    assert!(std::fs::read(root.join("f.bin")).unwrap() == new);
}

#[test]
fn server_killed_at_commit_leaves_old_or_new_and_the_rerun_completes_v1() {
    server_killed_at_commit("v1");
}

#[test]
fn server_killed_at_commit_leaves_old_or_new_and_the_rerun_completes_v2() {
    server_killed_at_commit("v2");
}
