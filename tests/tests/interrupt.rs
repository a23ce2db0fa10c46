//! Ctrl-C (SIGINT) in the middle of a sync: exit 130, the target untouched,
//! no staged file left behind on a download, and an upload that resumes.

use std::process::Command;
use std::time::Duration;

use diffcopy_tests::{Client, InProcessServer, Scratch, content_received, data, wait_until};

fn sigint(child: &std::process::Child) {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

fn part_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .count()
}

/// Interrupts an upload with `protocol` once `going` bytes have arrived;
/// the rerun sends at most what was missing and `slack` (what was in flight).
fn ctrl_c_mid_upload(protocol: &str, going: u64, slack: u64) {
    let scratch = Scratch::new(&format!("interrupt-upload-{protocol}"));
    let root = scratch.path().join("root");
    let state = scratch.path().join("state");
    let server = InProcessServer::start(&root, |_| {});
    let local = scratch.path().join("big.bin");
    let content = data(64 << 20, 7);
    std::fs::write(&local, &content).unwrap();
    let url = format!("{}/big.bin", server.url());
    let args = ["--protocol", protocol, "-q", "-b", "64K", "-c", "1"];
    let child = Client::new(&state).args(args).arg(&local).arg(&url).spawn();
    wait_until(Duration::from_secs(60), "the upload to get going", || {
        content_received(&server.state.stats()) >= going
    });
    sigint(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));
    assert!(!root.join("big.bin").exists(), "the target was not touched");
    let arrived = content_received(&server.state.stats());
    assert!(arrived < content.len() as u64, "interrupted before the end");

    let summary = Client::new(&state).args(&args[..3]).args(["-b", "64K"]).arg(&local).arg(&url).ok_json();
    let resent = summary["bytes_sent"].as_u64().unwrap();
    assert!(resent <= content.len() as u64 - arrived + slack, "{resent} sent after {arrived} had arrived");
    assert!(std::fs::read(root.join("big.bin")).unwrap() == content);
}

#[test]
fn ctrl_c_mid_upload_exits_130_and_the_upload_resumes_v1() {
    ctrl_c_mid_upload("v1", 50 << 16, 4 << 16);
}

#[test]
fn ctrl_c_mid_upload_exits_130_and_the_upload_resumes_v2() {
    ctrl_c_mid_upload("v2", 8 << 20, 4 << 20);
}

#[test]
fn ctrl_c_mid_download_leaves_the_old_target_and_no_staged_file() {
    let scratch = Scratch::new("interrupt-download");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("big.bin"), data(256 << 20, 8)).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let local_dir = scratch.path().join("local");
    std::fs::create_dir_all(&local_dir).unwrap();
    let target = local_dir.join("big.bin");
    let old = data(256 << 20, 9);
    std::fs::write(&target, &old).unwrap();
    let child = Client::new(scratch.path().join("state"))
        .args(["-q", "-b", "64K", "-c", "1"])
        .arg(format!("{}/big.bin", server.url()))
        .arg(&target)
        .spawn();
    // Interrupt once the staged file exists (the transfer has begun).
    wait_until(Duration::from_secs(60), "the download to stage its file", || part_files(&local_dir) > 0);
    sigint(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(std::fs::read(&target).unwrap() == old, "the target was not touched");
    assert_eq!(part_files(&local_dir), 0, "the staged file was removed");
}
