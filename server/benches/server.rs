//! Server benchmark (not a test): the signature endpoint for a large file,
//! cold (hashed on all cores) and warm (cache hit), against the core on one
//! thread; and the commit step of an upload that changed 1% of the blocks.
//!
//!     cargo bench -p diffcopy --bench server            # 1 GiB
//!     DIFFCOPY_BENCH_MIB=256 cargo bench -p diffcopy --bench server
//!
//! "Cold" means the signature is not cached; the file's pages may be in the
//! OS page cache (the table says whether dropping it worked).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use diffcopy::{AppState, ServerConfig};
use diffcopy_core::{HashAlgorithm, Signature, SignatureBuilder, hash_block};

const BLOCK: u32 = 1 << 20;

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--exact") {
        return; // `cargo test --benches` probes; nothing to list.
    }
    let mib: u64 = std::env::var("DIFFCOPY_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let size = mib << 20;
    let dir = std::env::temp_dir().join(format!("diffcopy-bench-server-{}", std::process::id()));
    let root = dir.join("root");
    std::fs::create_dir_all(&root).expect("bench dir");
    let file = root.join("big.bin");
    write_file(&file, size);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let state = AppState::new(ServerConfig { root: root.clone(), ..ServerConfig::default() }).expect("state");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let served: Arc<AppState> = state.clone();
    runtime.spawn(async move { diffcopy::run(listener, served, std::future::pending()).await });
    // reqwest is built without a crypto provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();

    let mut rows = Vec::new();
    let bytes = std::fs::read(&file).expect("read");
    let core = time(|| {
        let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, BLOCK).expect("block");
        builder.update(&bytes);
        builder.finish()
    });
    drop(bytes);
    rows.push(("core, 1 thread, file already in memory", core.1, size));

    let dropped = drop_page_cache();
    let sig_url = format!("{url}/api/v1/signatures/big.bin?block_size={BLOCK}&hash=sha1");
    let cold = time(|| runtime.block_on(async { http.get(&sig_url).send().await.ok()?.bytes().await.ok() }));
    let signature = Signature::decode(&cold.0.expect("signature")).expect("decodes");
    assert_eq!(signature, core.0, "server and core agree");
    let label = if dropped {
        format!("signature endpoint, cold, {threads} threads, page cache dropped")
    } else {
        format!("signature endpoint, cold, {threads} threads, page cache warm")
    };
    rows.push((Box::leak(label.into_boxed_str()), cold.1, size));
    let warm = time(|| runtime.block_on(async { http.get(&sig_url).send().await.ok()?.bytes().await.ok() }));
    assert!(warm.0.is_some());
    rows.push(("signature endpoint, warm (cache hit)", warm.1, size));

    // Commit: 1% of the blocks uploaded, the rest copied from the base.
    let blocks = signature.header().block_count();
    let changed: Vec<u64> = (0..blocks).step_by(100).collect();
    let mut new = std::fs::read(&file).expect("read");
    for &i in &changed {
        new[(i * u64::from(BLOCK)) as usize] ^= 0xff;
    }
    let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, BLOCK).expect("block");
    builder.update(&new);
    let new_sig = builder.finish();
    let etag = runtime.block_on(async {
        let r = http.head(format!("{url}/api/v1/files/big.bin")).send().await.expect("head");
        r.headers()["etag"].to_str().expect("etag").to_owned()
    });
    let id = runtime.block_on(async {
        let body =
            serde_json::json!({"path": "big.bin", "size": size, "block_size": BLOCK, "base_etag": etag});
        let r = http.post(format!("{url}/api/v1/uploads")).json(&body).send().await.expect("create");
        let v: serde_json::Value = r.json().await.expect("json");
        v["id"].as_str().expect("id").to_owned()
    });
    let upload = time(|| {
        runtime.block_on(async {
            for &i in &changed {
                let start = (i * u64::from(BLOCK)) as usize;
                let block = new[start..(start + BLOCK as usize).min(new.len())].to_vec();
                let digest = hash_block(HashAlgorithm::Sha1, &block).to_string();
                let url = format!("{url}/api/v1/uploads/{id}/blocks/{i}");
                let r = http.put(url).header("x-block-digest", digest).body(block).send().await.expect("put");
                assert_eq!(r.status(), 204);
            }
        })
    });
    let changed_bytes = changed.len() as u64 * u64::from(BLOCK);
    rows.push(("upload 1% of the blocks (PUT, digest checked)", upload.1, changed_bytes));
    let commit = time(|| {
        runtime.block_on(async {
            let r =
                http.post(format!("{url}/api/v1/uploads/{id}/commit")).body(new_sig.encode()).send().await;
            r.expect("commit").status()
        })
    });
    assert_eq!(commit.0, 200);
    rows.push(("commit (verify, copy_file_range 99%, fsync, rename)", commit.1, size));
    assert!(std::fs::read(&file).expect("read") == new, "committed content");

    println!("\n| step ({mib} MiB file, 1 MiB blocks, SHA-1) | seconds | MB/s |\n|---|---:|---:|");
    for (name, seconds, bytes) in rows {
        println!("| {name} | {seconds:.3} | {:.0} |", bytes as f64 / seconds / 1e6);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed().as_secs_f64())
}

fn write_file(path: &Path, size: u64) {
    let mut out = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path).expect("create"));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < size {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = (size - written).min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n]).expect("write");
        written += n as u64;
    }
    out.flush().expect("flush");
    out.get_ref().sync_all().expect("sync");
}

/// Drops the page cache (root only; returns whether it worked).
fn drop_page_cache() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}
