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
