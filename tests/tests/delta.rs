//! Protocol v2 end to end: the bytes on the wire (payload and headers, both
//! ways, counted by the server's connections) for each edit pattern on a
//! 64 MiB file, uploads and downloads alike; a file hash mismatch that the
//! client survives by sending the whole file once.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diffcopy::{FaultHook, FaultPoint};
use diffcopy_tests::{Client, InProcessServer, Scratch, data};

const MIB: usize = 1 << 20;
const SIZE: usize = 64 * MIB;

/// One edit pattern: its name, how it makes the new file from the old one,
/// and the most bytes it may cost on the wire.
struct Pattern {
    name: &'static str,
    edit: fn(&[u8]) -> Vec<u8>,
    limit: fn(&[u8], &[u8]) -> u64,
}

fn scattered(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    // 4 KiB overwritten inside 10% of the 1 MiB blocks (6 of 64).
    for (i, block) in (0..64).step_by(10).enumerate() {
        let at = block * MIB + 7919 * (i + 1) % (MIB - 4096);
        new[at..at + 4096].copy_from_slice(&data(4096, 100 + i as u64));
    }
    new
}

fn inserted(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    new.splice(4096..4096, data(100, 7));
    new
}

fn inserted_and_deleted(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    for k in (0..20).rev() {
        let at = k * 3 * MIB + 12_345 + k * 777;
        if k % 2 == 0 {
            new.splice(at..at, data(100, k as u64));
        } else {
            new.drain(at..at + 100);
        }
    }
    new
}

fn moved(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    let region: Vec<u8> = new.drain(10 * MIB + 999..15 * MIB + 999).collect();
    new.extend(region);
    new
}

fn unchanged(old: &[u8]) -> Vec<u8> {
    old.to_vec()
}

fn rewritten(old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    for block in (0..64).step_by(10) {
        new[block * MIB..(block + 1) * MIB].copy_from_slice(&data(MIB, block as u64));
    }
    new
}

fn patterns() -> Vec<Pattern> {
    vec![
        // 1 MiB at 1 GiB, scaled to 64 MiB.
        Pattern { name: "scattered 4 KiB edits", edit: scattered, limit: |_, _| (1 << 20) * 64 / 1024 },
        Pattern { name: "100 bytes inserted", edit: inserted, limit: |_, _| 64 << 10 },
        Pattern { name: "10 insertions, 10 deletions", edit: inserted_and_deleted, limit: |_, _| 128 << 10 },
        Pattern { name: "5 MiB moved to the end", edit: moved, limit: |_, _| 64 << 10 },
        Pattern { name: "unchanged", edit: unchanged, limit: |_, _| 64 << 10 },
        Pattern {
            name: "10% of blocks rewritten",
            edit: rewritten,
            limit: |old, new| {
                let changed = old.chunks(MIB).zip(new.chunks(MIB)).filter(|(a, b)| a != b).count() * MIB;
                changed as u64 * 102 / 100
            },
        },
    ]
}

/// Bytes both ways on the server's connections during `f`.
fn wire(server: &InProcessServer, f: impl FnOnce()) -> u64 {
    let before = server.state.stats();
    f();
    let after = server.state.stats();
    (after.wire_bytes_in - before.wire_bytes_in) + (after.wire_bytes_out - before.wire_bytes_out)
}

fn sync(state: &Path, from: &str, to: &str) -> serde_json::Value {
    Client::new(state).args(["-q", "-b", "1MiB", from, to]).ok_json()
}

#[test]
fn bytes_on_the_wire_per_pattern_both_ways() {
    let scratch = Scratch::new("v2-wire");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let state = scratch.path().join("state");
    let old = data(SIZE, 1);
    let mut table = String::from("| pattern | upload | download | limit |\n|---|---:|---:|---:|\n");
    for (i, pattern) in patterns().iter().enumerate() {
        let new = (pattern.edit)(&old);
        let limit = (pattern.limit)(&old, &new);

        // Upload: the server has the old file, the client the new one.
        let name = format!("up-{i}.bin");
        std::fs::write(root.join(&name), &old).unwrap();
        let local = scratch.path().join(format!("new-{i}.bin"));
        std::fs::write(&local, &new).unwrap();
        let url = format!("{}/{name}", server.url());
        let up = wire(&server, || {
            let summary = sync(&state, local.to_str().unwrap(), &url);
            assert_eq!(summary["protocol"], "v2");
        });
        assert!(std::fs::read(root.join(&name)).unwrap() == new, "{}: upload content", pattern.name);

        // Download: the server has the new file, the client the old one.
        let name = format!("down-{i}.bin");
        std::fs::write(root.join(&name), &new).unwrap();
        let target = scratch.path().join(format!("old-{i}.bin"));
        std::fs::write(&target, &old).unwrap();
        let url = format!("{}/{name}", server.url());
        let down = wire(&server, || {
            sync(&state, &url, target.to_str().unwrap());
        });
        assert!(std::fs::read(&target).unwrap() == new, "{}: download content", pattern.name);

        table.push_str(&format!("| {} | {up} | {down} | {limit} |\n", pattern.name));
        assert!(
            up <= limit,
            "{}: upload took {up} bytes on the wire, more than {limit}\n{table}",
            pattern.name
        );
        assert!(down <= limit, "{}: download took {down} bytes, more than {limit}\n{table}", pattern.name);
    }
    println!("{table}");
}

#[test]
fn a_file_hash_mismatch_fails_the_commit_and_the_client_sends_the_whole_file() {
    let scratch = Scratch::new("v2-mismatch");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let old = data(8 * MIB, 2);
    std::fs::write(root.join("f.bin"), &old).unwrap();
    // Corrupts the first upload's staging file once, just before its check,
    // as a failing disk would.
    let corrupted = Arc::new(AtomicBool::new(false));
    let (flag, root2) = (corrupted.clone(), root.clone());
    let hook = FaultHook::new(move |point| {
        if point == FaultPoint::FileHashCheck && !flag.swap(true, Ordering::SeqCst) {
            let part = std::fs::read_dir(&root2)
                .unwrap()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with(".part"))
                .expect("a staging file");
            let mut bytes = std::fs::read(part.path()).unwrap();
            // Inside the literal data: blocks copied whole at the same offset
            // are trusted to the kernel's copy and not read back.
            bytes[3 * MIB + 50] ^= 0x40;
            std::fs::write(part.path(), bytes).unwrap();
        }
    });
    let server = InProcessServer::start(&root, |c| c.fault_hook = Some(hook));
    let mut new = old.clone();
    new[3 * MIB..3 * MIB + 100].copy_from_slice(&data(100, 9));
    let local = scratch.path().join("new.bin");
    std::fs::write(&local, &new).unwrap();
    let summary =
        sync(&scratch.path().join("state"), local.to_str().unwrap(), &format!("{}/f.bin", server.url()));
    assert!(corrupted.load(Ordering::SeqCst), "the fault was injected");
    assert!(std::fs::read(root.join("f.bin")).unwrap() == new, "the retry committed the right file");
    assert_eq!(summary["bytes_sent"], new.len(), "the retry sent the whole file: {summary}");
    let stats = server.state.stats();
    assert_eq!((stats.delta_uploads_created, stats.delta_uploads_committed), (2, 1));
}
