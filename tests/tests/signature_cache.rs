//! Over a real socket, a signature is hashed once per file version: the
//! second request and the commit's look at the base are cache hits.

use diffcopy_tests::{Client, InProcessServer, Scratch, data};

#[test]
fn signatures_are_hashed_once_per_version_over_http() {
    let scratch = Scratch::new("signature-cache");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let old = data(40 << 16, 1);
    std::fs::write(root.join("f.bin"), &old).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let url = format!("{}/api/v1/signatures/f.bin?block_size=65536", server.url());
    let client = diffcopy_tests::http();
    let first = client.get(&url).send().unwrap().bytes().unwrap();
    let second = client.get(&url).send().unwrap().bytes().unwrap();
    assert_eq!(first, second);
    let stats = server.state.stats();
    assert_eq!((stats.signatures_computed, stats.signature_cache_hits), (1, 1));

    // An upload: the client's signature request and the commit's base check
    // use the cached signature; nothing is hashed again on the server.
    let mut new = old.clone();
    new[5 << 16] ^= 1;
    let local = scratch.path().join("new.bin");
    std::fs::write(&local, &new).unwrap();
    let run = Client::new(scratch.path().join("state"))
        .args(["--protocol", "v1", "-q", "-b", "64K"])
        .arg(&local)
        .arg(format!("{}/f.bin", server.url()))
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(root.join("f.bin")).unwrap(), new);
    let stats = server.state.stats();
    assert_eq!(stats.signatures_computed, 1, "{stats:?}");
    assert_eq!(stats.signature_cache_hits, 3, "{stats:?}");
}

#[test]
fn v2_block_hashes_are_hashed_once_per_version_with_one_seed() {
    let scratch = Scratch::new("signature-cache-v2");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("f.bin"), data(40 << 16, 2)).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let url = format!("{}/api/v2/signatures/f.bin?block_size=65536", server.url());
    let client = diffcopy_tests::http();
    let first = client.get(&url).send().unwrap().bytes().unwrap();
    let second = client.get(&url).send().unwrap().bytes().unwrap();
    assert_eq!(first, second, "the same seed and hashes for the same version");
    let stats = server.state.stats();
    assert_eq!((stats.signatures_computed, stats.signature_cache_hits), (1, 1));
    // A new version gets hashed afresh, with a new seed.
    std::fs::write(root.join("f.bin"), data(40 << 16, 3)).unwrap();
    let third = client.get(&url).send().unwrap().bytes().unwrap();
    assert_ne!(third[16..24], first[16..24], "a new seed");
    assert_eq!(server.state.stats().signatures_computed, 2);
}
