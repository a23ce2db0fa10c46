//! Ctrl-C (SIGINT) in the middle of a sync: exit 130, the target untouched,
//! no staged file left behind on a download, and an upload that resumes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diffcopy_tests::{InProcessServer, Scratch, data, diffcopy_bin};
use serde_json::Value;

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
    let child = Command::new(diffcopy_bin())
        .args(["-q", "-b", "64K", "-c", "1"])
        .arg(&local)
        .arg(&url)
        .env("DIFFCOPY_STATE_DIR", &state)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.state.stats.snapshot().blocks_received < 50 {
        assert!(Instant::now() < deadline, "the upload never got going");
        std::thread::sleep(Duration::from_millis(2));
    }
    sigint(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));
    assert!(!root.join("big.bin").exists(), "the target was not touched");
    let arrived = server.state.stats.snapshot().blocks_received;

    let rerun = Command::new(diffcopy_bin())
        .args(["-q", "--json", "-b", "64K"])
        .arg(&local)
        .arg(&url)
        .env("DIFFCOPY_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(rerun.status.success());
    let summary: Value = serde_json::from_slice(&rerun.stdout).unwrap();
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
    let child = Command::new(diffcopy_bin())
        .args(["-q", "-b", "64K", "-c", "1"])
        .arg(format!("{}/big.bin", server.url()))
        .arg(&target)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the staged file exists (the transfer has begun).
    let deadline = Instant::now() + Duration::from_secs(60);
    while part_files(&local_dir) == 0 {
        assert!(Instant::now() < deadline, "the download never staged its file");
        std::thread::sleep(Duration::from_millis(2));
    }
    sigint(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(std::fs::read(&target).unwrap() == old, "the target was not touched");
    assert_eq!(part_files(&local_dir), 0, "the staged file was removed");
}
