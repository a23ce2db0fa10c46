//! kill -9 at more points of an upload: the client while it hashes, and the
//! server when the last block has arrived (the commit is under way or about
//! to start). Afterwards the target is the old or the new content, whole,
//! and a rerun completes.

use std::path::Path;
use std::time::Duration;

use diffcopy_tests::{Client, InProcessServer, Scratch, ServerProcess, data, wait_until};
use serde_json::Value;

const BLOCK: usize = 64 << 10;

fn client(source: &Path, url: &str, state: &Path) -> Client {
    Client::new(state).args(["-q", "-b", "64K", "-c", "1"]).arg(source).arg(url)
}

fn rerun(source: &Path, url: &str, state: &Path) {
    let run = client(source, url, state).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn client_killed_while_hashing_leaves_the_target_alone() {
    let scratch = Scratch::new("kill-hashing");
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

    let mut child = client(&source, &url, &state).spawn();
    // The server starts hashing when the client asks for its signature; the
    // client hashes meanwhile and has not opened an upload yet.
    wait_until(Duration::from_secs(30), "the client to ask for the signature", || {
        server.state.stats().signatures_computed > 0
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(std::fs::read(root.join("f.bin")).unwrap() == old);
    rerun(&source, &url, &state);
    assert!(std::fs::read(root.join("f.bin")).unwrap() == new);
}

#[test]
fn server_killed_at_commit_leaves_old_or_new_and_the_rerun_completes() {
    let scratch = Scratch::new("kill-commit");
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
    let mut child = client(&source, &url, &state).spawn();
    let http = reqwest::blocking::Client::new();
    wait_until(Duration::from_secs(60), "the upload to send its last block", || {
        let stats: Value = http.get(format!("{}/api/v1/stats", server.url())).send().unwrap().json().unwrap();
        assert!(child.try_wait().unwrap().is_none(), "the client ended before its last block: {stats}");
        stats["blocks_received"].as_u64() == Some(2048)
    });
    server.kill9();
    let _ = child.wait();
    let on_disk = std::fs::read(root.join("f.bin")).unwrap();
    assert!(on_disk == old || on_disk == new, "the target is a mixture");

    let _server = ServerProcess::start(&root, &[]);
    let url = format!("{}/f.bin", _server.url());
    rerun(&source, &url, &state);
    assert!(std::fs::read(root.join("f.bin")).unwrap() == new);
}
