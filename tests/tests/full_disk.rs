//! A full disk during an upload: a small tmpfs as the target's directory.
//! The upload fails with a clear status and message, and the old target is
//! intact. (Needs root for the mount, as CI and the dev machines run.)

use std::path::{Path, PathBuf};
use std::process::Command;

use diffcopy_tests::{Client, InProcessServer, Scratch, data};

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "mounting a tmpfs needs root (CI runs as root)");
        Self(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_upload_cleanly_and_keeps_the_old_target() {
    let scratch = Scratch::new("full-disk");
    let root = scratch.path().join("root");
    let _mount = Mount::tmpfs(&root.join("small"), "6m");
    let old = data(2 << 20, 1);
    std::fs::write(root.join("small/f.bin"), &old).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let local = scratch.path().join("new.bin");
    std::fs::write(&local, data(5 << 20, 2)).unwrap();

    let output = Client::new(scratch.path().join("state"))
        .args(["-q", "-b", "64K"])
        .arg(&local)
        .arg(format!("{}/small/f.bin", server.url()))
        .run();
    let stderr = &output.stderr;
    assert_eq!(output.code, 1, "{stderr}");
    assert!(stderr.contains("507") && stderr.contains("no_space"), "{stderr}");
    assert!(std::fs::read(root.join("small/f.bin")).unwrap() == old, "the old target is intact");

    // The session's staging file goes when the session expires.
    assert_eq!(server.state.expire_uploads(std::time::Duration::ZERO), 1);
    let parts = std::fs::read_dir(root.join("small"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .count();
    assert_eq!(parts, 0);
}
