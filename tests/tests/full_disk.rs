//! A full disk during an upload: a small tmpfs as the target's directory.
//! The upload fails with a clear status and message, and the old target is
//! intact. (Needs root for the mount, as CI and the dev machines run.)

use diffcopy_tests::{Client, InProcessServer, Mount, Scratch, content_received, data};

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

/// The whole root on a small tmpfs, `--commit journal`, and a new version
/// that grows past the room left: the commit fails with 507 while it
/// reserves the target's room or writes its journal, before its commit
/// point, and the old target is intact with no journal left.
#[test]
fn a_full_disk_while_journaling_fails_with_507_and_keeps_the_old_target() {
    let scratch = Scratch::new("full-disk-journal");
    let root = scratch.path().join("root");
    let _mount = Mount::tmpfs(&root, "8m");
    let old = data(3 << 20, 3);
    std::fs::write(root.join("f.bin"), &old).unwrap();
    let mut new = old.clone();
    new[..4096].copy_from_slice(&data(4096, 4));
    new.extend_from_slice(&data(3 << 20, 5));
    let local = scratch.path().join("new.bin");
    std::fs::write(&local, &new).unwrap();
    let server = InProcessServer::start(&root, |c| c.commit = diffcopy::CommitMode::Journal);

    let output = Client::new(scratch.path().join("state"))
        .args(["-q", "-b", "64K"])
        .arg(&local)
        .arg(format!("{}/f.bin", server.url()))
        .run();
    let stderr = &output.stderr;
    assert_eq!(output.code, 1, "{stderr}");
    assert!(stderr.contains("507") && stderr.contains("no_space"), "{stderr}");
    assert!(std::fs::read(root.join("f.bin")).unwrap() == old, "the old target is intact");
    let journals = std::fs::read_dir(root.join(".diffcopy-sessions"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("apply-"))
        .count();
    assert_eq!(journals, 0, "no commit journal is left");
    let stats = server.state.stats();
    assert!(content_received(&stats) > 3 << 20, "all the new data arrived; the commit failed");
    assert_eq!(stats.commits_journal, 0);
}
