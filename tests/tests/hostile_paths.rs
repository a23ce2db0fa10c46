//! Hostile paths through every endpoint, v1 and pdiffcopy's: each is refused
//! with a JSON 4xx, and a canary outside the root is never created, changed
//! or read.

use std::os::unix::fs::symlink;
use std::path::Path;

use diffcopy_tests::{InProcessServer, Scratch, raw_request};

const SECRET: &[u8] = b"canary-secret-4b1d";

/// Paths as they would appear in a URL path or query value (already
/// percent-encoded where they need to be).
const HOSTILE: &[&str] = &[
    "..",
    "../outside/canary",
    "../../etc/passwd",
    "a/../../outside/canary",
    "a/b/../../../outside/canary",
    "%2e%2e/outside/canary",
    "%2E%2E/outside/canary",
    ".%2e/outside/canary",
    "%2e%2e%2foutside%2fcanary",
    "..%2f..%2fetc%2fpasswd",
    "..%5coutside%5ccanary",
    "a%5c..%5c..%5coutside",
    "a/%00/b",
    "canary%00.txt",
    ".",
    "./canary",
    "a//b",
    "link-out/canary",
    "abs-link",
    "rel-link",
    "dir-link/canary",
    "inner/../../outside/canary",
    ".diffcopy-x.part",
    "%2fetc%2fpasswd",
];

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        out.push((path.display().to_string(), std::fs::read(&path).unwrap_or_default()));
    }
    out.sort();
    out
}

#[test]
fn hostile_paths_are_refused_everywhere() {
    let scratch = Scratch::new("hostile");
    let root = scratch.path().join("root");
    let outside = scratch.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("canary"), SECRET).unwrap();
    std::fs::create_dir_all(root.join("inner")).unwrap();
    symlink("../outside", root.join("link-out")).unwrap();
    symlink(outside.join("canary"), root.join("abs-link")).unwrap();
    symlink("../outside/canary", root.join("rel-link")).unwrap();
    symlink(&outside, root.join("dir-link")).unwrap();
    let before = snapshot(&outside);
    let outside_names_before = snapshot(scratch.path());

    let server = InProcessServer::start(&root, |_| {});
    let mut tried = 0;
    for path in HOSTILE {
        let upload_body =
            serde_json::json!({"path": percent_decode(path), "size": 4, "block_size": 4096}).to_string();
        let requests: Vec<(String, Vec<u8>)> = vec![
            (format!("GET /api/v1/files/{path} HTTP/1.1"), vec![]),
            (format!("HEAD /api/v1/files/{path} HTTP/1.1"), vec![]),
            (format!("GET /api/v1/signatures/{path} HTTP/1.1"), vec![]),
            ("POST /api/v1/uploads HTTP/1.1".to_owned(), upload_body.into_bytes()),
            (format!("GET /info?filename=/{path} HTTP/1.1"), vec![]),
            (format!("GET /hashes?filename=/{path}&block_size=4096 HTTP/1.1"), vec![]),
            (format!("GET /blocks?filename=/{path}&offset=0&size=4096 HTTP/1.1"), vec![]),
            (format!("POST /blocks?filename=/{path}&offset=0 HTTP/1.1"), b"EVIL".to_vec()),
            (format!("POST /resize?filename=/{path}&size=1 HTTP/1.1"), vec![]),
        ];
        for (line, body) in requests {
            let headers: &[(&str, &str)] =
                if line.starts_with("POST /api") { &[("content-type", "application/json")] } else { &[] };
            let reply = raw_request(server.addr, &line, headers, &body);
            tried += 1;
            let refused = (400..500).contains(&reply.status);
            assert!(refused, "{line}: {} {}", reply.status, String::from_utf8_lossy(&reply.body));
            assert!(!reply.body.windows(SECRET.len()).any(|w| w == SECRET), "{line} leaked the canary");
            if !line.starts_with("HEAD") && reply.status != 404 {
                let json: serde_json::Value = serde_json::from_slice(&reply.body)
                    .unwrap_or_else(|_| panic!("{line}: body is not JSON: {:?}", reply.body));
                assert!(json["error"].is_string() && json["message"].is_string(), "{line}: {json}");
            }
        }
    }
    assert!(tried >= 20 * 9);
    assert_eq!(snapshot(&outside), before, "the canary directory changed");
    assert_eq!(snapshot(scratch.path()), outside_names_before, "something appeared beside the root");
    assert_eq!(std::fs::read(outside.join("canary")).unwrap(), SECRET);
}
