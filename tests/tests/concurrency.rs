//! Many writers and readers on one path at once: what is on disk is always
//! exactly one complete version, and readers see the old or the new file
//! whole, never a mixture.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diffcopy_tests::{Client, InProcessServer, Scratch, data};

const BLOCK: usize = 64 << 10;

#[test]
fn eight_clients_upload_to_one_path_and_one_complete_version_wins() {
    let scratch = Scratch::new("eight-writers");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let base = data(32 * BLOCK, 100);
    std::fs::write(root.join("shared.bin"), &base).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let url = format!("{}/shared.bin", server.url());

    let contents: Vec<Vec<u8>> = (0..8u64)
        .map(|i| {
            let mut c = base.clone();
            for b in 0..32 {
                if (b + i as usize) % 3 == 0 {
                    c[b * BLOCK + i as usize] ^= 0x55;
                }
            }
            c
        })
        .collect();
    let children: Vec<_> = contents
        .iter()
        .enumerate()
        .map(|(i, content)| {
            let path = scratch.path().join(format!("source-{i}"));
            std::fs::write(&path, content).unwrap();
            Client::new(scratch.path().join(format!("state-{i}")))
                .args(["-q", "-b", "64K"])
                .arg(&path)
                .arg(&url)
                .spawn()
        })
        .collect();
    let mut winners = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        match output.status.code() {
            Some(0) => winners.push(i),
            Some(6) => {} // conflict: the target changed under it (409/412)
            other => panic!("client {i} ended with {other:?}: {}", String::from_utf8_lossy(&output.stderr)),
        }
    }
    assert!(!winners.is_empty(), "at least the first commit succeeds");
    let on_disk = std::fs::read(root.join("shared.bin")).unwrap();
    let matches: Vec<usize> = (0..8).filter(|&i| contents[i] == on_disk).collect();
    assert_eq!(matches.len(), 1, "exactly one complete version is on disk");
    assert!(winners.contains(&matches[0]), "and it is one that reported success");
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.len() <= 8 - winners.len(), "only the losers' sessions may still hold staging files");
}

#[test]
fn readers_during_commits_see_one_whole_version() {
    let scratch = Scratch::new("readers");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let versions: Vec<Vec<u8>> = (0..6).map(|i| data(16 * BLOCK, 200 + i)).collect();
    std::fs::write(root.join("f.bin"), &versions[0]).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let url = format!("{}/api/v1/files/f.bin", server.url());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (url, done, versions) = (url.clone(), done.clone(), versions.clone());
            std::thread::spawn(move || {
                let client = diffcopy_tests::http();
                let mut reads = 0;
                // Bounded: until the writer is done, and at most 2000 reads.
                while !done.load(Ordering::Relaxed) && reads < 2000 {
                    let body = client.get(&url).send().unwrap().bytes().unwrap();
                    assert!(versions.iter().any(|v| v[..] == body[..]), "a read saw a mixture");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for (i, version) in versions.iter().enumerate().skip(1) {
        let path = scratch.path().join(format!("v{i}"));
        std::fs::write(&path, version).unwrap();
        let run = Client::new(scratch.path().join("state"))
            .args(["-q", "-b", "64K"])
            .arg(&path)
            .arg(format!("{}/f.bin", server.url()))
            .run();
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    done.store(true, Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    assert_eq!(std::fs::read(root.join("f.bin")).unwrap(), versions[5]);
}
