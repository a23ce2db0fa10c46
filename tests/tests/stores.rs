//! Behaviour both stores share, each test body run over a directory and
//! over a bucket of a real S3 server (SeaweedFS), from one body
//! (`on_every_store!`).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::Command;
use std::time::Duration;

use diffcopy_tests::stores::{Deployment, Store, open};
use diffcopy_tests::{Client, Scratch, data, http, on_every_store, run_pdiffcopy, wait_until};
use serde_json::{Value, json};

/// Linux's `O_NONBLOCK`: opening a pipe's writing end fails at once while
/// no one reads it.
const O_NONBLOCK: i32 = 0o4000;

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

on_every_store! {
    /// A range sent twice, with other bytes the second time: a directory
    /// keeps the bytes written last, a bucket those stored first. Either way
    /// the commit checks the bytes the store holds, even where a block's
    /// hash was taken as it arrived: the honest bytes land, forged ones
    /// are refused with 422, never a mixture.
    fn a_range_sent_twice_with_other_bytes_never_lands_forged(store: Store) {
        let deployment = Deployment::start(store, "twice", 1, &[]);
        let url = deployment.url();
        let bytes = data((3 << 20) + 11, 93);
        let mut forged = bytes.clone();
        forged[(1 << 20) + 5] ^= 1;
        for (n, (first, second)) in [(&bytes, &forged), (&forged, &bytes)].into_iter().enumerate() {
            let path = format!("twice-{n}.bin");
            let upload = open(&url, &path, bytes.len());
            upload.hashes(&url, &bytes);
            upload.data(&url, first, 0..bytes.len());
            upload.data(&url, second, 0..bytes.len());
            let (code, body) = upload.commit(&url);
            match code {
                200 => assert!(deployment.file(&path).as_ref() == Some(&bytes), "the stored file is the hashed one"),
                422 => {
                    assert_eq!(body["error"].as_str(), Some("file_hash_mismatch"), "{body}");
                    assert_eq!(deployment.file(&path), None, "nothing landed");
                }
                _ => panic!("{code}: {body}"),
            }
        }
    }

    /// A read-only server publishes files: every way of downloading works
    /// (protocol v2, whose downloads POST their needs, API v1, pdiffcopy's
    /// endpoints, the real pdiffcopy), and every way of writing is refused.
    fn read_only_serves_every_download_and_refuses_every_write(store: Store) {
        let mut deployment = Deployment::start(store, "read-only", 1, &[]);
        let work = deployment.work();
        let content = data((3 << 20) + 5, 70);
        let source = work.join("source.bin");
        write(&source, &content);
        let state = work.join("state");
        Client::new(&state).arg(&source).arg(format!("{}/dir/f.bin", deployment.url())).ok_json();
        deployment.restart(&["--read-only"]);
        let url = format!("{}/dir/f.bin", deployment.url());
        for protocol in ["v2", "v1", "pdiffcopy"] {
            let local = work.join(format!("{protocol}.bin"));
            Client::new(&state).args(["--protocol", protocol]).arg(&url).arg(&local).ok_json();
            assert!(std::fs::read(&local).unwrap() == content, "{protocol}: a new local copy");
            // A changed, shorter local copy: a delta download.
            let mut old = content.clone();
            old[1 << 20] ^= 1;
            old.truncate(2 << 20);
            write(&local, &old);
            Client::new(&state).args(["--protocol", protocol]).arg(&url).arg(&local).ok_json();
            assert!(std::fs::read(&local).unwrap() == content, "{protocol}: a changed local copy");
        }
        let local = work.join("real-pdiffcopy.bin");
        run_pdiffcopy(&["-b", "1048576", &url, local.to_str().unwrap()]);
        assert!(std::fs::read(&local).unwrap() == content, "the real pdiffcopy's download");

        let mut changed = content.clone();
        changed[10] ^= 1;
        write(&source, &changed);
        let run = Client::new(&state).arg(&source).arg(&url).run();
        assert_eq!(run.code, 4, "an upload is refused: {}", run.stderr);
        let server = deployment.url();
        for (method, path) in [
            ("POST", "/api/v2/uploads"),
            ("POST", "/api/v2/uploads/0123/data"),
            ("DELETE", "/api/v2/uploads/0123"),
            ("POST", "/api/v1/uploads"),
            ("PUT", "/api/v1/uploads/0123/blocks/0"),
            ("POST", "/blocks?filename=/dir/f.bin&offset=0"),
            ("POST", "/resize?filename=/dir/f.bin&size=0"),
        ] {
            let reply = http().request(method.parse().unwrap(), format!("{server}{path}")).body("x").send().unwrap();
            assert_eq!(reply.status(), 403, "{method} {path}");
            let body: Value = reply.json().unwrap();
            assert_eq!(body["error"], "read_only", "{method} {path}");
        }
        assert!(deployment.file("dir/f.bin") == Some(content), "the file is as it was");
    }

    /// Literal data that arrives while a commit runs is refused (409
    /// `not_receiving`); the commit builds from what it had and lands.
    fn data_is_refused_while_a_commit_runs(store: Store) {
        let pipes = Scratch::new(&format!("commit-pause-{store:?}"));
        let fifo = pipes.path().join("pause");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let fault = format!("pause-at:file-hash-check@{}", fifo.display());
        let deployment =
            Deployment::start_with_env(store, "commit-data", 1, &[], &[("DIFFCOPY_FAULT", fault.as_str())]);
        let url = deployment.url();
        let bytes = data((2 << 20) + 3, 81);
        let upload = open(&url, "f.bin", bytes.len());
        upload.hashes(&url, &bytes);
        let half = bytes.len() / 2;
        upload.data(&url, &bytes, 0..half);
        upload.data(&url, &bytes, half..bytes.len());
        let (status, body) = std::thread::scope(|scope| {
            let committing = scope.spawn(|| upload.commit(&url));
            // The pipe's writing end opens (without blocking) once the
            // commit waits at its hash check, reading the other end.
            let mut pipe = None;
            wait_until(Duration::from_secs(60), "the commit reaching its hash check", || {
                assert!(!committing.is_finished(), "the commit ended before its hash check");
                pipe = std::fs::OpenOptions::new().write(true).custom_flags(O_NONBLOCK).open(&fifo).ok();
                pipe.is_some()
            });
            let mut pipe = pipe.expect("the pipe is open");
            let mut other = bytes.clone();
            other[..half].fill(9);
            let (status, refused) = upload.try_data(&url, &other, 0..half);
            assert_eq!((status, refused["error"].as_str()), (409, Some("not_receiving")), "{refused}");
            pipe.write_all(b"g").expect("release the commit");
            drop(pipe);
            committing.join().expect("the commit's thread")
        });
        assert_eq!(status, 200, "{body}");
        assert!(deployment.file("f.bin") == Some(bytes), "what was sent before the commit landed");
    }
}

on_every_store! {
    /// The read side answers alike over both stores, at edge sizes: files
    /// whole, by range and by HEAD; API v1's signature and pdiffcopy's
    /// `/info`, `/hashes` and `/blocks` equal to digests computed here;
    /// protocol v2's signature under the file's ETag; and the same errors
    /// for a missing file, a range outside, a block too large and a
    /// download request without or with a stale `If-Match`.
    fn the_read_side_answers_alike(store: Store) {
        use diffcopy_core::{HashAlgorithm, SignatureHeader, hash_block};
        const BLOCK: usize = 4096;
        let deployment = Deployment::start(store, "reads", 1, &[]);
        let (work, server) = (deployment.work(), deployment.url());
        let state = work.join("state");
        let error_of = |reply: reqwest::blocking::Response| -> (u16, String) {
            let status = reply.status().as_u16();
            let body: Value = reply.json().unwrap_or(Value::Null);
            (status, body["error"].as_str().unwrap_or("").to_owned())
        };
        for size in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, (1 << 20) + 1] {
            let content = data(size, size as u64 + 7);
            let source = work.join(format!("{size}.src"));
            write(&source, &content);
            let path = format!("r/{size}.bin");
            Client::new(&state).arg(&source).arg(format!("{server}/{path}")).ok_json();
            let what = format!("{store:?}, {size} bytes");

            let reply = http().get(format!("{server}/api/v1/files/{path}")).send().unwrap();
            assert_eq!(reply.status(), 200, "{what}");
            let etag = reply.headers()["etag"].to_str().unwrap().to_owned();
            assert_eq!(reply.headers()["accept-ranges"], "bytes", "{what}");
            assert!(reply.bytes().unwrap() == content, "{what}: the file");
            let head = http().head(format!("{server}/api/v1/files/{path}")).send().unwrap();
            assert_eq!(head.status(), 200, "{what}");
            assert_eq!(head.headers()["content-length"], size.to_string().as_str(), "{what}: HEAD");
            assert_eq!(head.headers()["etag"], etag.as_str(), "{what}: HEAD");
            if size >= 3 {
                let part = http().get(format!("{server}/api/v1/files/{path}")).header("Range", "bytes=1-2").send().unwrap();
                assert_eq!(part.status(), 206, "{what}");
                assert_eq!(part.headers()["content-range"], format!("bytes 1-2/{size}").as_str(), "{what}");
                assert!(part.bytes().unwrap()[..] == content[1..3], "{what}: a range");
            }
            let outside = http().get(format!("{server}/api/v1/files/{path}")).header("Range", format!("bytes={size}-")).send().unwrap();
            assert_eq!(error_of(outside), (416, "bad_range".to_owned()), "{what}");

            let header = SignatureHeader::new(HashAlgorithm::Sha1, BLOCK as u32, size as u64).unwrap();
            let digests: Vec<_> = content.chunks(BLOCK).map(|b| hash_block(HashAlgorithm::Sha1, b)).collect();
            let mut signature = header.encode().to_vec();
            for digest in &digests {
                signature.extend_from_slice(digest.as_bytes());
            }
            let reply = http().get(format!("{server}/api/v1/signatures/{path}?block_size={BLOCK}&hash=sha1")).send().unwrap();
            assert_eq!(reply.status(), 200, "{what}");
            assert_eq!(reply.headers()["etag"], etag.as_str(), "{what}: the signature's ETag");
            assert!(reply.bytes().unwrap()[..] == signature[..], "{what}: API v1's signature");

            let info: Value = http().get(format!("{server}/info?filename=/{path}")).send().unwrap().json().unwrap();
            assert_eq!(info, json!({ "size": size }), "{what}");
            let lines = http().get(format!("{server}/hashes?filename=/{path}&block_size={BLOCK}")).send().unwrap().text().unwrap();
            let expected: String = digests
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let hex: String = d.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
                    format!("{}\t{hex}\n", i * BLOCK)
                })
                .collect();
            assert_eq!(lines, expected, "{what}: pdiffcopy's /hashes");
            let block = http().get(format!("{server}/blocks?filename=/{path}&offset={}&size=2", BLOCK - 1)).send().unwrap();
            assert_eq!(block.status(), 200, "{what}");
            let (from, to) = ((BLOCK - 1).min(size), (BLOCK + 1).min(size));
            assert!(block.bytes().unwrap()[..] == content[from..to], "{what}: pdiffcopy's /blocks");

            let reply = http().get(format!("{server}/api/v2/signatures/{path}")).send().unwrap();
            assert_eq!(reply.status(), 200, "{what}");
            assert_eq!(reply.headers()["etag"], etag.as_str(), "{what}: protocol v2's signature");
            let hashes = diffcopy_core::delta::BlockHashes::decode(&reply.bytes().unwrap()).expect("block hashes");
            assert_eq!(hashes.params().file_size, size as u64, "{what}");
            let need = diffcopy_core::delta::Need { level: 0, refine: Vec::new(), literal: Vec::new() }.encode();
            let no_if_match = http().post(format!("{server}/api/v2/data/{path}")).body(need.clone()).send().unwrap();
            assert_eq!(error_of(no_if_match), (400, "missing_if_match".to_owned()), "{what}");
            let stale = http().post(format!("{server}/api/v2/data/{path}")).header("If-Match", "\"0\"").body(need).send().unwrap();
            assert_eq!(error_of(stale), (412, "target_changed".to_owned()), "{what}");
        }
        for route in ["/api/v1/files/r/none", "/api/v1/signatures/r/none", "/api/v2/signatures/r/none", "/hashes?filename=/r/none", "/blocks?filename=/r/none&offset=0"] {
            let reply = http().get(format!("{server}{route}")).send().unwrap();
            assert_eq!(error_of(reply), (404, "not_found".to_owned()), "{store:?}: {route}");
        }
        let info = http().get(format!("{server}/info?filename=/r/none")).send().unwrap();
        assert_eq!(info.status(), 404, "{store:?}: pdiffcopy's /info");
        assert!(info.bytes().unwrap().is_empty(), "{store:?}: pdiffcopy's /info answers 404 with an empty body");
        let huge = http().get(format!("{server}/blocks?filename=/r/1.bin&offset=0&size={}", (64 << 20) + 1)).send().unwrap();
        assert_eq!(error_of(huge), (413, "block_too_large".to_owned()), "{store:?}");
    }
}

on_every_store! {
    /// A download's literal data comes in the codec the client names
    /// (`?codecs=`): zstd by default, LZ4 for the page, raw when it reads
    /// neither; an unknown codec is refused.
    fn downloads_come_in_the_codec_the_client_reads(store: Store) {
        use diffcopy_core::delta::{BlockHashes, Codec, Need, parse_frames};
        let deployment = Deployment::start(store, "codecs", 1, &[]);
        let (work, server) = (deployment.work(), deployment.url());
        let text = b"a line of a log that compresses well, again and again\n".repeat(6000);
        let source = work.join("text.src");
        write(&source, &text);
        Client::new(work.join("state")).arg(&source).arg(format!("{server}/c/text.log")).ok_json();
        let reply = http().get(format!("{server}/api/v2/signatures/c/text.log")).send().unwrap();
        let etag = reply.headers()["etag"].to_str().unwrap().to_owned();
        let size = BlockHashes::decode(&reply.bytes().unwrap()).unwrap().params().file_size;
        assert_eq!(size, text.len() as u64);
        let need = Need { level: 0, refine: Vec::new(), literal: vec![0..size] }.encode();
        let fetch = |query: &str| {
            http()
                .post(format!("{server}/api/v2/data/c/text.log{query}"))
                .header("If-Match", &etag)
                .body(need.clone())
                .send()
                .unwrap()
        };
        for (query, codec) in [("", Codec::Zstd), ("?codecs=lz4", Codec::Lz4), ("?codecs=lz4,zstd", Codec::Zstd), ("?codecs=", Codec::Raw)] {
            let reply = fetch(query);
            assert_eq!(reply.status(), 200, "{store:?} {query}");
            let body = reply.bytes().unwrap();
            let frames = parse_frames(&body, size).unwrap();
            assert_eq!(frames.iter().map(|f| u64::from(f.len)).sum::<u64>(), size, "{store:?} {query}");
            for frame in &frames {
                assert_eq!(frame.codec, codec, "{store:?} {query}");
                if codec == Codec::Raw {
                    assert!(frame.stored == &text[frame.range().start as usize..frame.range().end as usize]);
                } else {
                    assert!(frame.stored.len() < frame.len as usize / 4, "{store:?} {query}: compressed");
                }
            }
        }
        let reply = fetch("?codecs=brotli");
        assert_eq!(reply.status(), 400, "{store:?}");
        let body: Value = reply.json().unwrap();
        assert_eq!(body["error"], "bad_query", "{store:?}");
    }
}

/// `--max-uploads` counts the sessions of both protocols, whichever opens
/// first (the directory store; a bucket has no API v1 uploads and keeps no
/// sessions in memory to count).
#[test]
fn max_uploads_counts_both_protocols() {
    for first_v1 in [true, false] {
        let deployment = Deployment::start(Store::Directory, "max-uploads", 1, &["--max-uploads", "2"]);
        let url = deployment.url();
        let v1 = |n: u32| {
            http()
                .post(format!("{url}/api/v1/uploads"))
                .json(&json!({ "path": format!("v1-{n}"), "size": 10, "block_size": 65536, "hash": "sha1" }))
                .send()
                .unwrap()
        };
        let v2 = |n: u32| {
            http()
                .post(format!("{url}/api/v2/uploads"))
                .json(&json!({ "path": format!("v2-{n}"), "size": 10 }))
                .send()
                .unwrap()
        };
        let (a, b) = if first_v1 { (v1(0), v2(0)) } else { (v2(0), v1(0)) };
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
        for reply in [v1(1), v2(1)] {
            assert_eq!(reply.status(), 429);
            let body: Value = reply.json().unwrap();
            assert_eq!(body["error"], "too_many_uploads");
        }
    }
}
