//! How the client writes a local target, on a download (protocols v2 and
//! v1) and a local copy: cloned where the file system can (XFS), in place
//! behind a journal where it cannot (ext4) and most of the file stays, a
//! new file otherwise. A client killed at any step of a commit in place
//! leaves a target that the next run reads as the old version or the new
//! one, never half written, and that run finishes the job.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diffcopy_tests::{Client, InProcessServer, Mount, Scratch, data};
use serde_json::Value;

const BLOCK: usize = 64 << 10;

/// The three ways to a local target.
#[derive(Clone, Copy, Debug)]
enum Way {
    V2,
    V1,
    Local,
}

const WAYS: [Way; 3] = [Way::V2, Way::V1, Way::Local];

/// A source (a file on a server, or beside the target) and a local target.
struct Setup {
    /// Where the source lives (the server's root, or a plain directory).
    source_dir: PathBuf,
    server: InProcessServer,
    target: PathBuf,
    state: PathBuf,
}

impl Setup {
    fn new(scratch: &Scratch, target_dir: &Path) -> Self {
        let source_dir = scratch.path().join("root");
        std::fs::create_dir_all(&source_dir).unwrap();
        std::fs::create_dir_all(target_dir).unwrap();
        let server = InProcessServer::start(&source_dir, |_| {});
        let target = target_dir.join("f.bin");
        Self { source_dir, server, target, state: scratch.path().join("state") }
    }

    /// The client syncing the source (`new`) over the target (`old`, or
    /// absent), the way `way` says.
    fn client(&self, way: Way, old: Option<&[u8]>, new: &[u8]) -> Client {
        std::fs::write(self.source_dir.join("f.bin"), new).unwrap();
        let _ = std::fs::remove_file(&self.target);
        if let Some(old) = old {
            std::fs::write(&self.target, old).unwrap();
        }
        self.rerun(way)
    }

    /// The client for the same sync again, the files as they are.
    fn rerun(&self, way: Way) -> Client {
        let client = Client::new(&self.state).args(["-q", "-b", "64K"]);
        let client = match way {
            Way::V2 => client.args(["--protocol", "v2"]).arg(format!("{}/f.bin", self.server.url())),
            Way::V1 => client.args(["--protocol", "v1"]).arg(format!("{}/f.bin", self.server.url())),
            Way::Local => client.arg(self.source_dir.join("f.bin")),
        };
        client.arg(&self.target)
    }
}

/// Whether the file system under `dir` can clone files.
fn clones(dir: &Path) -> bool {
    let (a, b) = (dir.join("probe-a"), dir.join("probe-b"));
    std::fs::write(&a, b"probe").unwrap();
    let probe = Command::new("cp").arg("--reflink=always").arg(&a).arg(&b).stderr(Stdio::null()).status();
    let ok = probe.unwrap().success();
    let _ = (std::fs::remove_file(&a), std::fs::remove_file(&b));
    ok
}

/// The names in `dir` that the client reserves (staging files, journals).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".diffcopy-"))
        .collect()
}

/// A sync to try: its name, the target before (absent: `None`), the
/// source, and how the target is expected to be written.
type Case<'a> = (&'a str, Option<&'a [u8]>, &'a [u8], &'a str);

fn written_as(summary: &Value) -> &str {
    summary["written_as"].as_str().unwrap_or("nothing")
}

#[test]
fn a_target_is_written_in_place_where_most_of_it_stays_and_anew_where_it_does_not() {
    let scratch = Scratch::new("local-ways");
    let dir = scratch.path().join("target");
    let setup = Setup::new(&scratch, &dir);
    let can_clone = clones(&dir);
    let old = data(64 * BLOCK, 1);
    let mut edited = old.clone();
    edited[20 * BLOCK + 5] ^= 1;
    edited[40 * BLOCK..40 * BLOCK + 100].copy_from_slice(&data(100, 2));
    let mut grown = edited.clone();
    grown.extend_from_slice(&data(BLOCK + 1, 3));
    let shrunk = edited[..edited.len() - (BLOCK - 1)].to_vec();
    let other = data(64 * BLOCK, 4);
    let most_stays = if can_clone { "clone" } else { "in_place" };
    let most_changes = if can_clone { "clone" } else { "new_file" };
    for way in WAYS {
        let cases: [Case; 5] = [
            ("edited", Some(&old), &edited, most_stays),
            ("grown", Some(&old), &grown, most_stays),
            ("shrunk", Some(&old), &shrunk, most_stays),
            ("other", Some(&old), &other, most_changes),
            ("absent", None, &edited, "new_file"),
        ];
        for (name, before, after, expected) in cases {
            let summary = setup.client(way, before, after).ok_json();
            let got = std::fs::read(&setup.target).unwrap();
            assert!(got == after, "{way:?} {name}: the target is not the source");
            assert_eq!(written_as(&summary), expected, "{way:?} {name}: {summary}");
            let disk = summary["disk_bytes_written"].as_u64().expect("disk_bytes_written");
            if expected != "new_file" {
                // What changed is a few blocks; a new file would be 4 MiB.
                assert!(disk < (1 << 20), "{way:?} {name}: {disk} bytes written to the disk");
            }
            assert_eq!(leftovers(&dir), Vec::<String>::new(), "{way:?} {name}");
        }
        // Edge sizes, each edited in its middle byte or grown from nothing.
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1] {
            let old = data(len, 5);
            let mut new = old.clone();
            if let Some(byte) = new.get_mut(len / 2) {
                *byte ^= 0xff;
            } else {
                new = vec![7];
            }
            let summary = setup.client(way, Some(&old), &new).ok_json();
            assert!(std::fs::read(&setup.target).unwrap() == new, "{way:?} {len} bytes");
            assert_ne!(written_as(&summary), "nothing", "{way:?} {len} bytes: {summary}");
            assert_eq!(leftovers(&dir), Vec::<String>::new(), "{way:?} {len} bytes");
        }
    }
}

/// The steps of a commit in place, in order, and whether the new version
/// is decided once the process dies there.
const STEPS: [(&str, bool); 6] = [
    ("journal-written", false),
    ("journal-fsynced", false),
    ("journal-committed", true),
    ("journal-applied", true),
    ("journal-target-fsynced", true),
    ("journal-removed", true),
];

#[test]
fn a_client_killed_at_any_step_of_a_commit_in_place_leaves_old_or_new() {
    let scratch = Scratch::new("local-crash");
    let dir = scratch.path().join("target");
    let setup = Setup::new(&scratch, &dir);
    assert!(!clones(&dir), "this test needs a file system that cannot clone, as ext4");
    let old = data(64 * BLOCK, 6);
    let mut new = old.clone();
    // Three changes, apart: the journal has three ranges, and dying after
    // the first is applied leaves the file on disk half new.
    for at in [3, 30, 60] {
        new[at * BLOCK..at * BLOCK + 10].copy_from_slice(&data(10, at as u64));
    }
    let copy = scratch.path().join("copy.bin");
    for way in WAYS {
        for (step, decided) in STEPS {
            let run =
                setup.client(way, Some(&old), &new).env("DIFFCOPY_FAULT", format!("exit-at:{step}")).run();
            assert_eq!(run.code, 86, "{way:?} {step}: the client did not stop there: {}", run.stderr);
            // Reading the target (a local copy of it) first finishes or
            // discards the interrupted commit.
            let _ = std::fs::remove_file(&copy);
            Client::new(&setup.state).args(["-q"]).arg(&setup.target).arg(&copy).ok_json();
            let seen = std::fs::read(&copy).unwrap();
            let expected = if decided { &new } else { &old };
            assert!(seen == *expected, "{way:?} {step}: read as neither the decided version");
            assert!(std::fs::read(&setup.target).unwrap() == *expected, "{way:?} {step}");
            assert_eq!(leftovers(&dir), Vec::<String>::new(), "{way:?} {step}: left behind");
            // And the sync, run again, ends with the new version.
            let summary = setup.rerun(way).ok_json();
            assert!(std::fs::read(&setup.target).unwrap() == new, "{way:?} {step}: rerun");
            if !decided {
                assert_eq!(written_as(&summary), "in_place", "{way:?} {step}: rerun: {summary}");
            }
        }
    }
}

#[test]
fn a_journal_whose_staged_bytes_are_gone_is_refused_and_the_target_left_alone() {
    let scratch = Scratch::new("local-lost");
    let dir = scratch.path().join("target");
    let setup = Setup::new(&scratch, &dir);
    let old = data(64 * BLOCK, 7);
    let mut new = old.clone();
    new[10 * BLOCK] ^= 1;
    let run =
        setup.client(Way::V2, Some(&old), &new).env("DIFFCOPY_FAULT", "exit-at:journal-committed").run();
    assert_eq!(run.code, 86, "{}", run.stderr);
    for name in leftovers(&dir).iter().filter(|n| n.ends_with(".part")) {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    let run = setup.rerun(Way::V2).run();
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("unfinished commit") && run.stderr.contains("gone"), "{}", run.stderr);
    assert!(std::fs::read(&setup.target).unwrap() == old, "the target was written");
}

#[test]
fn a_download_onto_xfs_clones_the_target_and_writes_what_changed() {
    let scratch = Scratch::new("local-xfs");
    let mount_dir = scratch.path().join("xfs");
    let _mount = Mount::xfs(&mount_dir).unwrap_or_else(|why| {
        panic!(
            "no XFS image to clone files on ({why}); scripts/setup installs xfsprogs, and mounting needs root"
        )
    });
    let setup = Setup::new(&scratch, &mount_dir);
    let old = data(256 * BLOCK, 8);
    // 4 KiB inserted near the start: everything after it moves by one file
    // system block, which a clone serves.
    let mut new = old[..1000].to_vec();
    new.extend_from_slice(&data(4096, 9));
    new.extend_from_slice(&old[1000..]);
    for way in [Way::V2, Way::Local] {
        let summary = setup.client(way, Some(&old), &new).ok_json();
        assert!(std::fs::read(&setup.target).unwrap() == new, "{way:?}");
        assert_eq!(written_as(&summary), "clone", "{way:?}: {summary}");
        let disk = summary["disk_bytes_written"].as_u64().expect("disk_bytes_written");
        // v2 finds the shifted data in the clone. A local copy compares
        // fixed blocks, which all differ after the insertion: they come from
        // the source, here on another file system, so they are written.
        let most = if matches!(way, Way::V2) { new.len() / 100 } else { new.len() + (1 << 20) };
        assert!(disk <= most as u64, "{way:?}: {disk} bytes written for a 4 KiB insertion");
    }
}

#[test]
fn a_symlink_or_a_hard_linked_target_gets_a_new_file_and_the_other_names_keep_the_old() {
    let scratch = Scratch::new("local-links");
    let dir = scratch.path().join("target");
    let setup = Setup::new(&scratch, &dir);
    assert!(!clones(&dir), "this test needs a file system that cannot clone, as ext4");
    let old = data(64 * BLOCK, 10);
    let mut new = old.clone();
    new[7 * BLOCK] ^= 1;
    let elsewhere = scratch.path().join("elsewhere.bin");
    for way in WAYS {
        // A symlink: replaced by the new version; what it pointed to stays.
        std::fs::write(&elsewhere, &old).unwrap();
        std::fs::write(setup.source_dir.join("f.bin"), &new).unwrap();
        let _ = std::fs::remove_file(&setup.target);
        std::os::unix::fs::symlink(&elsewhere, &setup.target).unwrap();
        let summary = setup.rerun(way).ok_json();
        assert_eq!(written_as(&summary), "new_file", "{way:?} symlink: {summary}");
        assert!(std::fs::read(&setup.target).unwrap() == new, "{way:?} symlink");
        assert!(std::fs::symlink_metadata(&setup.target).unwrap().is_file(), "{way:?}: still a link");
        assert!(std::fs::read(&elsewhere).unwrap() == old, "{way:?}: written through the link");
        // A second hard link keeps the old version under its name.
        let other = dir.join("other-name.bin");
        let _ = std::fs::remove_file(&other);
        std::fs::write(&setup.target, &old).unwrap();
        std::fs::hard_link(&setup.target, &other).unwrap();
        let summary = setup.rerun(way).ok_json();
        assert_eq!(written_as(&summary), "new_file", "{way:?} hard link: {summary}");
        assert!(std::fs::read(&setup.target).unwrap() == new, "{way:?} hard link");
        assert!(std::fs::read(&other).unwrap() == old, "{way:?}: changed under the other name");
        std::fs::remove_file(&other).unwrap();
    }
}
