//! Ctrl-C (SIGINT) in the middle of a sync: exit 130, the target untouched,
//! no staged file left behind on a download, and an upload that resumes.

use std::process::Command;
use std::time::Duration;

use diffcopy_tests::{Client, InProcessServer, Scratch, data, wait_until};

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

#[test]
fn ctrl_c_mid_upload_exits_130_and_the_upload_resumes() {
    let scratch = Scratch::new("interrupt-upload");
    let root = scratch.path().join("root");
    let state = scratch.path().join("state");
    let server = InProcessServer::start(&root, |_| {});
    let local = scratch.path().join("big.bin");
    let content = data(64 << 20, 7);
    std::fs::write(&local, &content).unwrap();
    let url = format!("{}/big.bin", server.url());
    let child = Client::new(&state).args(["-q", "-b", "64K", "-c", "1"]).arg(&local).arg(&url).spawn();
    wait_until(Duration::from_secs(60), "the upload to get going", || {
        server.state.stats().blocks_received >= 50
    });
    sigint(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));
    assert!(!root.join("big.bin").exists(), "the target was not touched");
    let arrived = server.state.stats().blocks_received;

    let summary = Client::new(&state).args(["-q", "-b", "64K"]).arg(&local).arg(&url).ok_json();
    assert!(summary["blocks_sent"].as_u64().unwrap() <= 1024 - arrived + 4, "{summary}");
    assert!(std::fs::read(root.join("big.bin")).unwrap() == content);
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
