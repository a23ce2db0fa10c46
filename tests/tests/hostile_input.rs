//! Hostile input on a real socket: malformed signatures, bad blocks, bad
//! queries, oversized bodies and slow clients. Each gets a 4xx with a JSON
//! message, and nothing is written; a stalled client neither hangs the
//! server nor holds its connection forever.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use diffcopy_tests::{InProcessServer, Scratch, data, raw_request, sign};
use serde_json::Value;

const BLOCK: u32 = 4096;

fn assert_refused(reply: &diffcopy_tests::RawResponse, what: &str) {
    assert!(
        (400..500).contains(&reply.status),
        "{what}: {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    let json: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|_| panic!("{what}: not JSON: {}", String::from_utf8_lossy(&reply.body)));
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {json}");
}

fn open_upload(server: &InProcessServer, size: usize) -> String {
    let body = format!(r#"{{"path":"target.bin","size":{size},"block_size":{BLOCK}}}"#);
    let reply = raw_request(
        server.addr,
        "POST /api/v1/uploads HTTP/1.1",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let json: Value = serde_json::from_slice(&reply.body).unwrap();
    json["id"].as_str().unwrap().to_owned()
}

#[test]
fn malformed_signatures_blocks_and_queries_are_refused() {
    let scratch = Scratch::new("hostile-input");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let old = data(3 * BLOCK as usize + 5, 1);
    std::fs::write(root.join("target.bin"), &old).unwrap();
    let server = InProcessServer::start(&root, |_| {});
    let new = data(old.len(), 2);
    let id = open_upload(&server, new.len());
    let commit = format!("POST /api/v1/uploads/{id}/commit HTTP/1.1");
    let mut tried = 0;

    // Every truncation of a valid signature, and corrupted headers.
    let good = sign(&new, BLOCK).encode();
    for len in 0..good.len() {
        assert_refused(&raw_request(server.addr, &commit, &[], &good[..len]), &format!("truncated to {len}"));
        tried += 1;
    }
    let corrupt = |at: usize, bytes: &[u8]| {
        let mut s = good.clone();
        s[at..at + bytes.len()].copy_from_slice(bytes);
        s
    };
    for (what, body) in [
        ("wrong magic", corrupt(0, b"XXXX")),
        ("wrong version", corrupt(4, &[9])),
        ("unknown algorithm", corrupt(5, &[77])),
        ("flags", corrupt(6, &[1, 0])),
        ("zero block size", corrupt(8, &[0, 0, 0, 0])),
        ("huge block count", corrupt(20, &u64::MAX.to_le_bytes())),
        ("huge file size", corrupt(12, &u64::MAX.to_le_bytes())),
        ("other block size", corrupt(8, &8192u32.to_le_bytes())),
    ] {
        assert_refused(&raw_request(server.addr, &commit, &[], &body), what);
        tried += 1;
    }

    // Wrong lengths, digests and indexes.
    let block0 = &new[..BLOCK as usize];
    let digest0 = diffcopy_core::hash_block(diffcopy_core::HashAlgorithm::Sha1, block0).to_string();
    let put = |index: &str| format!("PUT /api/v1/uploads/{id}/blocks/{index} HTTP/1.1");
    for (what, line, digest, body) in [
        ("short block", put("0"), digest0.as_str(), &block0[..100]),
        ("wrong digest", put("1"), digest0.as_str(), &new[BLOCK as usize..2 * BLOCK as usize]),
        ("index past the end", put("4"), digest0.as_str(), block0),
        ("huge index", put("18446744073709551615"), digest0.as_str(), block0),
        ("negative index", put("-1"), digest0.as_str(), block0),
        ("digest too short", put("0"), "abcd", block0),
        ("digest not hex", put("0"), "zz", block0),
    ] {
        assert_refused(&raw_request(server.addr, &line, &[("x-block-digest", digest)], body), what);
        tried += 1;
    }
    let oversized = vec![0u8; 2 * BLOCK as usize];
    assert_refused(
        &raw_request(server.addr, &put("0"), &[("x-block-digest", &digest0)], &oversized),
        "oversized",
    );
    tried += 1;

    // Malformed query strings on pdiffcopy's endpoints.
    for line in [
        "GET /info?filename HTTP/1.1",
        "GET /info?filename=/a/%2e%2e/b HTTP/1.1",
        "GET /blocks?filename=/target.bin&offset=1e5&size=10 HTTP/1.1",
        "GET /blocks?filename=/target.bin&offset=0&size=-5 HTTP/1.1",
        "GET /blocks?filename=/target.bin&offset=99999999999999999999&size=1 HTTP/1.1",
        "GET /hashes?filename=/target.bin&block_size=0 HTTP/1.1",
        "GET /hashes?filename=/target.bin&block_size=99999999999 HTTP/1.1",
        "GET /hashes?filename=/target.bin&method=sha3 HTTP/1.1",
        "GET /hashes?filename=/target.bin&concurrency=-1 HTTP/1.1",
        "POST /resize?filename=/target.bin&size=abc HTTP/1.1",
        "POST /resize?filename=/target.bin HTTP/1.1",
        "POST /blocks?filename=/target.bin&offset=x HTTP/1.1",
        "GET /api/v1/signatures/target.bin?block_size=abc HTTP/1.1",
        "GET /api/v1/signatures/target.bin?hash= HTTP/1.1",
    ] {
        assert_refused(&raw_request(server.addr, line, &[], b""), line);
        tried += 1;
    }
    assert!(tried > 100);
    assert_eq!(std::fs::read(root.join("target.bin")).unwrap(), old, "nothing was written");
    let stats = server.state.stats();
    assert_eq!((stats.blocks_received, stats.pdiffcopy_bytes_written, stats.uploads_committed), (0, 0, 0));
}

#[test]
fn slow_clients_time_out_and_do_not_block_others() {
    let scratch = Scratch::new("slow-clients");
    let root = scratch.path().join("root");
    let server = InProcessServer::start(&root, |c| {
        c.header_timeout = Duration::from_millis(500);
        c.body_timeout = Duration::from_millis(500);
    });
    let id = open_upload(&server, BLOCK as usize);

    // Half a request line, then nothing.
    let mut stalled_head = TcpStream::connect(server.addr).unwrap();
    stalled_head.write_all(b"GET /api/v1/hea").unwrap();
    // Headers complete, a body that stops after 10 of 4096 bytes.
    let mut stalled_body = TcpStream::connect(server.addr).unwrap();
    let head = format!(
        "PUT /api/v1/uploads/{id}/blocks/0 HTTP/1.1\r\nHost: x\r\nX-Block-Digest: 00\r\nContent-Length: {BLOCK}\r\n\r\n0123456789"
    );
    stalled_body.write_all(head.as_bytes()).unwrap();

    // Others are served meanwhile.
    let started = Instant::now();
    let reply = raw_request(server.addr, "GET /api/v1/health HTTP/1.1", &[], b"");
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));

    // The stalled body gets 408; the stalled head is closed.
    stalled_body.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = Vec::new();
    let _ = stalled_body.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    stalled_head.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = Vec::new();
    let closed = stalled_head.read_to_end(&mut rest);
    assert!(closed.is_ok(), "the server closed the stalled connection: {closed:?}");
    assert_eq!(server.state.stats().blocks_received, 0);
}
