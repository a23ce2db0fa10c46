//! A bounded load test on 127.0.0.1: many clients at once asking for
//! signatures and making small uploads against a `diffcopy serve` process.
//! Reports requests per second; asserts no errors and that the server's
//! open descriptors and memory do not grow.
//!
//! The suite runs 50 clients for 3 s; a longer stress run:
//!     DIFFCOPY_LOAD_SECS=30 cargo test --release -p diffcopy-tests --test load -- --nocapture

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diffcopy_core::{HashAlgorithm, hash_block};
use diffcopy_tests::{Scratch, ServerProcess, data, sign};
use serde_json::{Value, json};

const CLIENTS: usize = 50;
const BLOCK: usize = 4096;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn small_upload(client: &reqwest::blocking::Client, url: &str, path: &str, content: &[u8]) -> bool {
    let created = client
        .post(format!("{url}/api/v1/uploads"))
        .json(&json!({"path": path, "size": content.len(), "block_size": BLOCK}))
        .send();
    let Ok(created) = created else { return false };
    if created.status() != 201 {
        return false;
    }
    let Ok(body) = created.json::<Value>() else { return false };
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    for (i, block) in content.chunks(BLOCK).enumerate() {
        let digest = hash_block(HashAlgorithm::Sha1, block).to_string();
        let put = client
            .put(format!("{url}/api/v1/uploads/{id}/blocks/{i}"))
            .header("x-block-digest", digest)
            .body(block.to_vec())
            .send();
        if !put.is_ok_and(|r| r.status() == 204) {
            return false;
        }
    }
    let commit = client
        .post(format!("{url}/api/v1/uploads/{id}/commit"))
        .body(sign(content, BLOCK as u32).encode())
        .send();
    commit.is_ok_and(|r| r.status() == 200)
}

#[test]
fn fifty_clients_hold_without_errors_or_leaks() {
    let seconds: u64 = std::env::var("DIFFCOPY_LOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let scratch = Scratch::new("load");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("big.bin"), data(4 << 20, 1)).unwrap();
    let server = ServerProcess::start(&root, &[]);
    let url = server.url();
    let pid = server.child.id();

    // Warm up: one of each request, so caches and pools exist before the baseline.
    let warm = diffcopy_tests::http();
    assert!(
        warm.get(format!("{url}/api/v1/signatures/big.bin?block_size=65536"))
            .send()
            .unwrap()
            .status()
            .is_success()
    );
    assert!(small_upload(&warm, &url, "warm.bin", &data(4 * BLOCK, 2)));
    drop(warm);
    let (rss_before, fds_before) = (rss_kib(pid), open_fds(pid));

    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (url, requests, errors) = (url.clone(), requests.clone(), errors.clone());
            std::thread::spawn(move || {
                let client = diffcopy_tests::http_builder().timeout(Duration::from_secs(30)).build().unwrap();
                let content = data(4 * BLOCK + 7, 100 + n as u64);
                let mut round = 0u64;
                // Bounded in time and in count.
                while Instant::now() < deadline && round < 100_000 {
                    let ok = if round % 2 == 0 {
                        client
                            .get(format!("{url}/api/v1/signatures/big.bin?block_size=65536"))
                            .send()
                            .and_then(|r| r.error_for_status())
                            .and_then(|r| r.bytes())
                            .is_ok()
                    } else {
                        small_upload(&client, &url, &format!("c{n}/f{}.bin", round % 4), &content)
                    };
                    requests.fetch_add(if round % 2 == 0 { 1 } else { 7 }, Ordering::Relaxed);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    round += 1;
                }
            })
        })
        .collect();
    let started = Instant::now();
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Connections close when the clients are dropped; give the server a
    // bounded moment to notice the closed sockets.
    let settle = Instant::now() + Duration::from_secs(10);
    while open_fds(pid) > fds_before + 2 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rss_after, fds_after) = (rss_kib(pid), open_fds(pid));
    let total = requests.load(Ordering::Relaxed);
    println!(
        "| {CLIENTS} clients, {seconds} s | {total} requests | {:.0} req/s | {} errors | RSS {} -> {} MiB | fds {fds_before} -> {fds_after} |",
        total as f64 / elapsed,
        errors.load(Ordering::Relaxed),
        rss_before / 1024,
        rss_after / 1024,
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0);
    assert!(total > 0);
    assert!(fds_after <= fds_before + 2, "descriptors grew: {fds_before} -> {fds_after}");
    assert!(rss_after < rss_before + 64 * 1024, "memory grew: {rss_before} -> {rss_after} KiB");
    let leftovers: Vec<String> = walk_names(&root).into_iter().filter(|n| n.ends_with(".part")).collect();
    assert!(leftovers.is_empty(), "staging files left: {leftovers:?}");
}

fn walk_names(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            out.extend(walk_names(&entry.path()));
        } else {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out
}
