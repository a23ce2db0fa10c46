//! The `diffcopy` command line against a real server on 127.0.0.1: uploads,
//! downloads and local copies at edge sizes, the bytes actually sent, exit
//! codes, and an interrupted upload that resumes.

use std::path::Path;
use std::time::Duration;

use diffcopy_tests::{Client, InProcessServer, Scratch, data, wait_until};
use serde_json::Value;

const B: usize = 4096;

/// Runs `diffcopy --json ARGS` with its state in `state`, asserting success.
fn sync_ok(args: &[&str], state: &Path) -> Value {
    Client::new(state).args(args).ok_json()
}

/// The exit code of `diffcopy ARGS` with its state in `state`.
fn exit_code(args: &[&str], state: &Path) -> i32 {
    Client::new(state).args(args).run().code
}

/// The versions a file goes through: (name, content).
fn versions() -> Vec<(&'static str, Vec<u8>)> {
    let base = data(10 * B + 17, 1);
    let mut changed = base.clone();
    changed[3 * B + 1] ^= 0xff;
    let mut grown = changed.clone();
    grown.extend_from_slice(&data(3 * B, 2));
    vec![
        ("new", base),
        ("changed", changed.clone()),
        ("unchanged", changed.clone()),
        ("shrinking", changed[..4 * B + 3].to_vec()),
        ("growing", grown),
        ("empty", Vec::new()),
        ("one byte", vec![7]),
        ("block-1", data(B - 1, 3)),
        ("block", data(B, 3)),
        ("block+1", data(B + 1, 3)),
    ]
}

/// Bytes that must cross for `new` when the other side has `old`.
fn expected_bytes(old: Option<&[u8]>, new: &[u8]) -> u64 {
    let old_sig = old.map(|o| diffcopy_tests::sign(o, B as u32));
    let delta = diffcopy_core::diff(&diffcopy_tests::sign(new, B as u32), old_sig.as_ref()).unwrap();
    delta.bytes_to_send()
}

/// Every version of a file, uploaded, downloaded and copied in turn, with
/// each protocol: API v1 sends exactly the changed blocks; protocol v2 at
/// most that much literal data, and the server counts what it says.
fn sync_every_version(protocol: &str) {
    let scratch = Scratch::new(&format!("cli-cases-{protocol}"));
    let root = scratch.path().join("root");
    let state = scratch.path().join("state");
    let server = InProcessServer::start(&root, |_| {});
    let local = scratch.path().join("local.bin");
    let down = scratch.path().join("down.bin");
    let copy = scratch.path().join("copy.bin");
    let remote = format!("{}/dir/f.bin", server.url());
    let bs = B.to_string();
    let sync = |from: &str, to: &str| sync_ok(&["--protocol", protocol, "-b", &bs, from, to], &state);
    let mut previous: Option<Vec<u8>> = None;
    for (name, content) in versions() {
        std::fs::write(&local, &content).unwrap();
        let expected = expected_bytes(previous.as_deref(), &content);

        let before = server.state.stats();
        let up = sync(local.to_str().unwrap(), &remote);
        let after = server.state.stats();
        assert_eq!(std::fs::read(root.join("dir/f.bin")).unwrap(), content, "upload {name}");
        assert_eq!(up["protocol"], protocol, "upload {name}: {up}");
        if protocol == "v1" {
            assert_eq!(up["bytes_sent"], expected, "upload {name}: {up}");
            assert_eq!(after.bytes_received - before.bytes_received, expected, "upload {name}: server count");
        } else {
            assert!(
                up["bytes_sent"].as_u64().unwrap() <= expected,
                "upload {name}: {up} (v1 sends {expected})"
            );
            let stored = after.literal_bytes_received - before.literal_bytes_received;
            assert!(
                stored <= up["bytes_sent"].as_u64().unwrap() + 64,
                "upload {name}: server got {stored}: {up}"
            );
        }

        let down_summary = sync(&remote, down.to_str().unwrap());
        assert_eq!(std::fs::read(&down).unwrap(), content, "download {name}");
        if protocol == "v1" {
            assert_eq!(down_summary["bytes_sent"], expected, "download {name}: {down_summary}");
        } else {
            assert!(
                down_summary["bytes_sent"].as_u64().unwrap() <= expected,
                "download {name}: {down_summary}"
            );
        }

        if copy.exists() {
            std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        }
        let existed = copy.exists();
        let copied = sync(local.to_str().unwrap(), copy.to_str().unwrap());
        if existed {
            let mode =
                std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&copy).unwrap().permissions());
            assert_eq!(mode & 0o777, 0o640, "copy {name}: the old file's permissions are kept");
        }
        assert_eq!(std::fs::read(&copy).unwrap(), content, "copy {name}");
        assert_eq!(copied["bytes_sent"], expected, "copy {name}: {copied}");
        previous = Some(content);
    }
}

#[test]
fn uploads_downloads_and_local_copies_send_only_what_differs_v1() {
    sync_every_version("v1");
}

#[test]
fn uploads_downloads_and_local_copies_send_only_what_differs_v2() {
    sync_every_version("v2");
}

#[test]
fn one_changed_block_of_64_sends_that_block_only() {
    let scratch = Scratch::new("cli-one-block");
    let root = scratch.path().join("root");
    let state = scratch.path().join("state");
    let server = InProcessServer::start(&root, |_| {});
    let local = scratch.path().join("local.bin");
    let block = 64 << 10;
    let mut content = data(64 * block, 4);
    std::fs::write(&local, &content).unwrap();
    let remote = format!("{}/f.bin", server.url());
    sync_ok(&["--protocol", "v1", "-b", "64K", local.to_str().unwrap(), &remote], &state);
    content[40 * block + 123] ^= 1;
    std::fs::write(&local, &content).unwrap();
    let before = server.state.stats();
    let summary = sync_ok(&["--protocol", "v1", "-b", "64K", local.to_str().unwrap(), &remote], &state);
    let after = server.state.stats();
    assert_eq!((summary["blocks_sent"].as_u64(), summary["total_blocks"].as_u64()), (Some(1), Some(64)));
    assert_eq!(after.bytes_received - before.bytes_received, block as u64);
    assert_eq!(after.blocks_received - before.blocks_received, 1);
    assert_eq!(std::fs::read(root.join("f.bin")).unwrap(), content);

    let dry = sync_ok(&["--protocol", "v1", "-n", "-b", "64K", local.to_str().unwrap(), &remote], &state);
    assert_eq!((dry["dry_run"].as_bool(), dry["blocks_sent"].as_u64()), (Some(true), Some(0)));
}

#[test]
fn exit_codes_say_what_went_wrong() {
    let scratch = Scratch::new("cli-exit");
    let root = scratch.path().join("root");
    let server = InProcessServer::start(&root, |c| c.token = Some("t0ken".into()));
    let local = scratch.path().join("local.bin");
    std::fs::write(&local, b"data").unwrap();
    let remote = format!("{}/f.bin", server.url());
    let state = scratch.path().join("state");
    assert_eq!(exit_code(&["/nonexistent/file", &remote, "--token", "t0ken"], &state), 5);
    assert_eq!(exit_code(&[local.to_str().unwrap(), &remote], &state), 4, "no token");
    assert_eq!(exit_code(&[local.to_str().unwrap(), &remote, "--token", "t0ken"], &state), 0);
    assert_eq!(exit_code(&[local.to_str().unwrap(), "http://127.0.0.1:1/f.bin"], &state), 3);
    assert_eq!(exit_code(&["-b", "100", "a", "b"], &state), 2);
    assert_eq!(exit_code(&[&format!("{}/missing", server.url()), "x", "--token", "t0ken"], &state), 5);
}

#[test]
fn a_killed_upload_resumes_and_sends_less() {
    let scratch = Scratch::new("cli-resume");
    let root = scratch.path().join("root");
    let state = scratch.path().join("state");
    let server = InProcessServer::start(&root, |_| {});
    let local = scratch.path().join("big.bin");
    let content = data(64 << 20, 5);
    std::fs::write(&local, &content).unwrap();
    let remote = format!("{}/big.bin", server.url());
    let mut child = Client::new(&state)
        .args(["--protocol", "v1", "-q", "-b", "64K", "-c", "1", local.to_str().unwrap(), &remote])
        .spawn();
    wait_until(Duration::from_secs(60), "the upload to get going", || {
        assert!(child.try_wait().unwrap().is_none(), "the client ended before it could be killed");
        server.state.stats().blocks_received >= 50
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_before = server.state.stats().blocks_received;
    assert!(sent_before < 1024, "killed before the end");
    assert!(!root.join("big.bin").exists(), "no half-written target");

    let summary = sync_ok(&["--protocol", "v1", "-b", "64K", local.to_str().unwrap(), &remote], &state);
    assert!(std::fs::read(root.join("big.bin")).unwrap() == content);
    let resent = summary["blocks_sent"].as_u64().unwrap();
    assert!(resent < 1024, "the second run sent {resent} of 1024 blocks");
    assert!(resent <= 1024 - sent_before + 4, "{resent} sent after {sent_before} had arrived");
}

#[test]
fn inplace_uploads_write_only_the_changed_blocks() {
    let scratch = Scratch::new("cli-inplace");
    let root = scratch.path().join("root");
    let state = scratch.path().join("state");
    let server = InProcessServer::start(&root, |_| {});
    let local = scratch.path().join("local.bin");
    let block = 64 << 10;
    let mut content = data(16 * block + 3, 6);
    std::fs::write(&local, &content).unwrap();
    let remote = format!("{}/f.bin", server.url());
    let new = sync_ok(&["--inplace", "-b", "64K", local.to_str().unwrap(), &remote], &state);
    assert_eq!(new["bytes_sent"], content.len());
    content[9 * block] ^= 1;
    std::fs::write(&local, &content).unwrap();
    let before = server.state.stats().pdiffcopy_bytes_written;
    let changed = sync_ok(&["--inplace", "-b", "64K", local.to_str().unwrap(), &remote], &state);
    assert_eq!(changed["blocks_sent"], 1);
    assert_eq!(server.state.stats().pdiffcopy_bytes_written - before, block as u64);
    assert_eq!(std::fs::read(root.join("f.bin")).unwrap(), content);
    assert_eq!(exit_code(&["--inplace", local.to_str().unwrap(), "/tmp/x"], &state), 2, "uploads only");
}
