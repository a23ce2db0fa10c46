//! Commits in every mode (`diffcopy serve --commit journal|replace|reflink`,
//! and `auto`): a hard exit right after each step of a commit leaves the
//! target exactly old or exactly new, the journal gone after a restart and
//! the next upload working; the server's readers wait while a journal is
//! applied; a clone on XFS costs what changed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use diffcopy::{CommitMode, FaultHook, FaultPoint};
use diffcopy_tests::{Client, ClientRun, InProcessServer, Mount, Scratch, ServerProcess, data, wait_until};

const BLOCK: usize = 64 << 10;

/// How the new version differs from the old one.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Three edits far apart, and growth by more than five blocks.
    Grow,
    /// Two edits, and a third of the file cut off.
    Shrink,
}

/// The old version and the new one.
fn versions(shape: Shape) -> (Vec<u8>, Vec<u8>) {
    let old = data(64 * BLOCK + 100, 1);
    let mut new = old.clone();
    let edits: &[usize] = match shape {
        Shape::Grow => &[3, 20, 40],
        Shape::Shrink => &[3, 20],
    };
    for &block in edits {
        new[block * BLOCK + 10..block * BLOCK + 1010].copy_from_slice(&data(1000, block as u64));
    }
    match shape {
        Shape::Grow => new.extend_from_slice(&data(5 * BLOCK + 7, 9)),
        Shape::Shrink => new.truncate(40 * BLOCK + 7),
    }
    (old, new)
}

fn upload(protocol: &str, source: &Path, url: &str, state: &Path) -> ClientRun {
    Client::new(state).args(["--protocol", protocol, "-q", "-b", "64K"]).arg(source).arg(url).run()
}

/// The commit journals left in `root`'s session directory.
fn journals(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join(".diffcopy-sessions")) else { return Vec::new() };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("apply-"))
        .collect()
}

/// Reads the target through the server until the server is gone (or a
/// bound of reads and time is reached); every whole answer must be one
/// version. Returns how many whole answers there were.
fn read_until_gone(url: String, old: Arc<Vec<u8>>, new: Arc<Vec<u8>>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let http = diffcopy_tests::http();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut whole = 0;
        for _ in 0..10_000 {
            if Instant::now() > deadline {
                break;
            }
            let Ok(reply) = http.get(&url).send() else { break };
            if reply.status() != 200 {
                continue;
            }
            let Ok(body) = reply.bytes() else { break };
            assert!(
                body[..] == old[..] || body[..] == new[..],
                "a read through the server returned a mixture"
            );
            whole += 1;
        }
        whole
    })
}

/// One crash: the server runs `--commit MODE` and exits hard right after
/// `point`; the target must then be the new version if `point` is past the
/// commit's point of no return, else the old one.
fn crash_at(dir: &Path, mode: &str, point: &str, shape: Shape, protocol: &str) {
    let expect_new =
        ["journal-committed", "journal-applied", "journal-target", "journal-removed", "-renamed"]
            .iter()
            .any(|p| point.contains(p));
    let case = format!("{mode} at {point} ({shape:?}, {protocol})");
    let root = dir.join(point.replace('#', "-"));
    std::fs::create_dir_all(&root).unwrap();
    let (old, new) = versions(shape);
    std::fs::write(root.join("f.bin"), &old).unwrap();
    let source = dir.join(format!("{}.new", point.replace('#', "-")));
    std::fs::write(&source, &new).unwrap();
    let state = dir.join(format!("{}.state", point.replace('#', "-")));

    let fault = format!("exit-at:{point}");
    let mut server = ServerProcess::start_with_env(&root, &["--commit", mode], &[("DIFFCOPY_FAULT", &fault)]);
    let url = format!("{}/f.bin", server.url());
    let (old, new) = (Arc::new(old), Arc::new(new));
    let reader = read_until_gone(format!("{}/api/v1/files/f.bin", server.url()), old.clone(), new.clone());
    let run = upload(protocol, &source, &url, &state);
    assert_ne!(run.code, 0, "{case}: the upload succeeded, so the server never stopped at the point");
    wait_until(Duration::from_secs(30), &format!("{case}: the server to exit"), || {
        server.child.try_wait().unwrap().is_some()
    });
    assert_eq!(server.child.wait().unwrap().code(), Some(86), "{case}: the server did not exit at the point");
    reader.join().expect("the reader saw only whole versions");

    // A journal past its commit point is finished by the restart; a
    // replace or a clone is whole by its rename.
    let server = ServerProcess::start(&root, &["--commit", mode]);
    assert_eq!(journals(&root), Vec::<String>::new(), "{case}: a journal is left after the restart");
    let expected = if expect_new { &new } else { &old };
    assert!(
        std::fs::read(root.join("f.bin")).unwrap() == **expected,
        "{case}: after the restart the target is not the {} version",
        if expect_new { "new" } else { "old" }
    );
    let url = format!("{}/f.bin", server.url());
    let rerun = upload(protocol, &source, &url, &state);
    assert_eq!(rerun.code, 0, "{case}: the next upload failed: {}", rerun.stderr);
    assert!(std::fs::read(root.join("f.bin")).unwrap() == *new, "{case}: the next upload did not land");
}

const JOURNAL_STEPS: [&str; 7] = [
    "journal-written",
    "journal-fsynced",
    "journal-committed",
    "journal-applied#1",
    "journal-applied#2",
    "journal-target-fsynced",
    "journal-removed",
];

#[test]
fn a_crash_after_any_journal_step_leaves_old_or_new() {
    let scratch = Scratch::new("crash-journal");
    for point in JOURNAL_STEPS {
        crash_at(scratch.path(), "journal", point, Shape::Grow, "v2");
    }
}

#[test]
fn a_crash_while_a_shrinking_journal_applies_leaves_old_or_new_v1() {
    let scratch = Scratch::new("crash-journal-shrink");
    for point in ["journal-fsynced", "journal-applied#1", "journal-target-fsynced"] {
        crash_at(scratch.path(), "journal", point, Shape::Shrink, "v1");
    }
}

#[test]
fn a_crash_after_any_replace_step_leaves_old_or_new() {
    let scratch = Scratch::new("crash-replace");
    for point in ["replace-copied", "replace-fsynced", "replace-renamed"] {
        crash_at(scratch.path(), "replace", point, Shape::Grow, "v2");
    }
}

/// An XFS image mounted in `scratch`. A machine that cannot mount one fails
/// the test, loudly: passing it would say clones were tested.
fn xfs(scratch: &Scratch) -> Option<Mount> {
    match Mount::xfs(&scratch.path().join("xfs")) {
        Ok(mount) => Some(mount),
        Err(why) => panic!(
            "no XFS image to clone files on ({why}); scripts/setup installs xfsprogs, and mounting needs root"
        ),
    }
}

#[test]
fn a_crash_after_any_reflink_step_leaves_old_or_new() {
    let scratch = Scratch::new("crash-reflink");
    let Some(_mount) = xfs(&scratch) else { return };
    let dir = scratch.path().join("xfs");
    for point in ["reflink-cloned", "reflink-written", "reflink-fsynced", "reflink-renamed"] {
        crash_at(&dir, "reflink", point, Shape::Grow, "v2");
    }
}

/// Writes `root/big.bin` (64 MiB) and a new version of it in `scratch`
/// with 4 KiB edits in 10% of its 1 MiB blocks; returns the new version.
fn scattered(root: &Path, scratch: &Path) -> Vec<u8> {
    let old = data(64 << 20, 5);
    let mut new = old.clone();
    for block in (0..64).step_by(10) {
        new[block << 20..(block << 20) + 4096].copy_from_slice(&data(4096, block as u64));
    }
    std::fs::write(root.join("big.bin"), &old).unwrap();
    std::fs::write(scratch.join("big.new"), &new).unwrap();
    new
}

/// Uploads [`scattered`]'s new version with `mode`; returns the server's
/// counters after.
fn scattered_upload(root: &Path, scratch: &Path, new: &[u8], mode: CommitMode) -> diffcopy::StatsSnapshot {
    let source = scratch.join("big.new");
    let server = InProcessServer::start(root, |c| c.commit = mode);
    let run = upload("v2", &source, &format!("{}/big.bin", server.url()), &scratch.join("state"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read(root.join("big.bin")).unwrap() == new);
    server.state.stats()
}

#[test]
fn auto_clones_on_xfs_and_the_clone_costs_what_changed() {
    let scratch = Scratch::new("auto-xfs");
    let Some(mount) = xfs(&scratch) else { return };
    let root = scratch.path().join("xfs");
    let new = scattered(&root, scratch.path());
    let before = mount.used_bytes();
    let stats = scattered_upload(&root, scratch.path(), &new, CommitMode::Auto);
    assert_eq!((stats.commits_reflink, stats.commits_journal, stats.commits_replace), (1, 0, 0));
    // Only the changed bytes (and the file system's metadata) take new
    // room: the old version, 64 MiB, was written before `before`.
    let grown = mount.used_bytes().saturating_sub(before);
    assert!(grown < 8 << 20, "a clone of 64 MiB with 28 KiB changed took {grown} more bytes");
    assert!(stats.commit_bytes_written < 1 << 20, "{}", stats.commit_bytes_written);
}

/// Data that moves by a whole number of blocks is cloned, not copied, even
/// where its runs start in the middle of a block: a 4 KiB insertion near the
/// start of 64 MiB commits on XFS writing less than 1% of the file, by the
/// kernel's count (`commit_disk_bytes_written`); a shift by 100 bytes, which
/// no clone can serve, writes the file anew.
#[test]
fn a_block_aligned_shift_is_cloned_on_xfs() {
    let scratch = Scratch::new("shift-xfs");
    let Some(_mount) = xfs(&scratch) else { return };
    let root = scratch.path().join("xfs");
    let old = data(64 << 20, 8);
    for (name, inserted, most) in [("block", 4096, (64 << 20) / 100), ("bytes", 100, u64::MAX)] {
        let mut new = old[..1000].to_vec();
        new.extend_from_slice(&data(inserted, 9));
        new.extend_from_slice(&old[1000..]);
        let file = format!("{name}.bin");
        std::fs::write(root.join(&file), &old).unwrap();
        let source = scratch.path().join(format!("{name}.new"));
        std::fs::write(&source, &new).unwrap();
        let server = InProcessServer::start(&root, |c| c.commit = CommitMode::Auto);
        let state = scratch.path().join(format!("state-{name}"));
        let run = upload("v2", &source, &format!("{}/{file}", server.url()), &state);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(std::fs::read(root.join(&file)).unwrap() == new, "{name}: the new version");
        let stats = server.state.stats();
        assert_eq!(stats.commits_reflink, 1, "{name}");
        let written = stats.commit_disk_bytes_written;
        assert!(
            written <= most,
            "{name}: a shift of {inserted} bytes wrote {written} bytes, more than {most}"
        );
        if name == "bytes" {
            assert!(written >= 60 << 20, "a shift that no clone can serve is written anew: {written}");
        }
    }
}

#[test]
fn auto_journals_on_ext4_and_replaces_when_most_bytes_change() {
    let scratch = Scratch::new("auto-ext4");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let new = scattered(&root, scratch.path());
    let stats = scattered_upload(&root, scratch.path(), &new, CommitMode::Auto);
    assert_eq!((stats.commits_reflink, stats.commits_journal, stats.commits_replace), (0, 1, 0));
    assert!(stats.commit_bytes_written < 1 << 20, "{}", stats.commit_bytes_written);

    // An insertion at the front shifts everything: in place would rewrite
    // the whole file, so a new file (which copies nothing moved) is cheaper.
    let old = data(4 << 20, 6);
    let mut new = data(1000, 7);
    new.extend_from_slice(&old);
    std::fs::write(root.join("shifted.bin"), &old).unwrap();
    let source = scratch.path().join("shifted.new");
    std::fs::write(&source, &new).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let run = upload("v2", &source, &format!("{}/shifted.bin", server.url()), &scratch.path().join("state2"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read(root.join("shifted.bin")).unwrap() == new);
    let stats = server.state.stats();
    assert_eq!((stats.commits_journal, stats.commits_replace), (0, 1));
}

/// A hook that stops the first commit right after its first journal range
/// is applied, until `release` is sent.
fn pause_after_first_range() -> (FaultHook, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (reached, reached_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let (reached, release_rx) = (Mutex::new(reached), Mutex::new(release_rx));
    let paused = AtomicBool::new(false);
    let hook = FaultHook::new(move |point| {
        if point == FaultPoint::Commit("journal-applied") && !paused.swap(true, Ordering::SeqCst) {
            let _ = reached.lock().unwrap().send(());
            let _ = release_rx.lock().unwrap().recv();
        }
    });
    (hook, reached_rx, release)
}

#[test]
fn readers_through_the_server_wait_while_a_journal_is_applied() {
    let scratch = Scratch::new("journal-readers");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let (old, new) = versions(Shape::Grow);
    std::fs::write(root.join("f.bin"), &old).unwrap();
    let source: PathBuf = scratch.path().join("new.bin");
    std::fs::write(&source, &new).unwrap();
    let (hook, reached, release) = pause_after_first_range();
    let server = InProcessServer::start(&root, |c| {
        c.commit = CommitMode::Journal;
        c.fault_hook = Some(hook);
    });
    let base = server.url();
    let state = scratch.path().join("state");
    let client = {
        let (source, url) = (source.clone(), format!("{base}/f.bin"));
        std::thread::spawn(move || upload("v2", &source, &url, &state))
    };
    reached.recv_timeout(Duration::from_secs(60)).expect("the commit to apply its first range");
    let on_disk = std::fs::read(root.join("f.bin")).unwrap();
    assert!(on_disk != old && on_disk != new, "half applied, the file on disk is a mixture");

    let (done, results) = mpsc::channel();
    for path in
        ["/api/v1/files/f.bin".to_owned(), format!("/blocks?filename=f.bin&offset=0&size={}", new.len())]
    {
        let (done, url) = (done.clone(), format!("{base}{path}"));
        std::thread::spawn(move || {
            let body = diffcopy_tests::http().get(&url).send().and_then(|r| r.error_for_status()?.bytes());
            let _ = done.send((url, body.map(|b| b.to_vec())));
        });
    }
    // Readers that returned now would have read the mixture (the commit is
    // released before any assertion, so a failure cannot hang the test).
    let early = results.recv_timeout(Duration::from_millis(500));
    release.send(()).unwrap();
    assert!(early.is_err(), "a read through the server returned while the journal was half applied");
    for _ in 0..2 {
        let (url, body) = results.recv_timeout(Duration::from_secs(60)).expect("the reads to finish");
        assert!(body.expect("a read") == new, "{url} did not read the new version");
    }
    let run = client.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.state.stats().commits_journal, 1);
}
