//! The webhook after each commit (docs/embedding.md), each body on a
//! directory, SeaweedFS and moto: a receiver that is down does not hold an
//! upload back and gets the delivery once it is up; a server killed with
//! SIGKILL between the commit and the delivery delivers after its restart;
//! the signature checks out with Python's own HMAC.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use diffcopy_tests::receiver::{Received, Receiver};
use diffcopy_tests::stores::{Deployment, Store, open};
use diffcopy_tests::{Client, Scratch, data, diffcopy_bin, http, on_every_store, wait_until, workspace};
use serde_json::Value;

const ADMIN: &str = "the-administrators-own-token";
/// Linux's `O_NONBLOCK`: opening a pipe's writing end fails at once while
/// no one reads it.
const O_NONBLOCK: i32 = 0o4000;

/// The server's arguments for the hook alone.
fn hook_args(receiver: &Receiver, keys: &Path) -> Vec<String> {
    std::fs::write(keys.join("hook-secret"), "a hook secret, shared with the receiver\n").unwrap();
    let secret = keys.join("hook-secret").display().to_string();
    ["--hook-url".to_owned(), receiver.url(), "--hook-secret-file".to_owned(), secret].into()
}

/// The server's arguments: the hook, the administrator, scoped tokens.
fn args(receiver: &Receiver, keys: &Path) -> Vec<String> {
    std::fs::write(keys.join("jwt-secret"), "0123456789abcdefghijklmnopqrstuvwxyzABCD\n").unwrap();
    let mut args = hook_args(receiver, keys);
    args.extend(["--token".to_owned(), ADMIN.to_owned(), "--jwt-secret-file".to_owned()]);
    args.push(keys.join("jwt-secret").display().to_string());
    args
}

fn stats(d: &Deployment) -> Value {
    http().get(format!("{}/api/v1/stats", d.url())).bearer_auth(ADMIN).send().unwrap().json().unwrap()
}

/// A token for user `sub` on `users/<sub>/`, by `diffcopy token`.
fn token(keys: &Path, sub: &str) -> String {
    let out = Command::new(diffcopy_bin())
        .arg("token")
        .arg("--jwt-secret-file")
        .arg(keys.join("jwt-secret"))
        .args(["--path", &format!("users/{sub}/"), "--allow", "upload,download", "--sub", sub])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `sha256=<hex>` of `body` with the secret in `file`, by Python's hmac.
fn python_hmac(file: &Path, body: &[u8]) -> String {
    let mut child = Command::new(workspace().join(".venv/bin/python"))
        .args([
            "-c",
            "import hashlib, hmac, sys\n\
             key = open(sys.argv[1], 'rb').read()\n\
             key = key[:-1] if key.endswith(b'\\n') else key\n\
             print('sha256=' + hmac.new(key, sys.stdin.buffer.read(), hashlib.sha256).hexdigest())",
        ])
        .arg(file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Checks one delivery: a signed JSON POST of the commit at `path`.
fn check(received: &Received, keys: &Path, path: &str, size: usize, sub: &str, protocol: &str) -> Value {
    assert!(received.line.starts_with("POST /hook "), "{}", received.line);
    assert_eq!(received.content_type.as_deref(), Some("application/json"));
    let signature = received.signature.as_deref().expect("X-Diffcopy-Signature");
    assert_eq!(signature, python_hmac(&keys.join("hook-secret"), &received.body), "the signature");
    let event: Value = serde_json::from_slice(&received.body).unwrap();
    assert_eq!(event["event"], "commit");
    assert_eq!(event["path"], path);
    assert_eq!(event["size"], size);
    assert_eq!(event["sub"], sub);
    assert_eq!(event["protocol"], protocol);
    assert!(event["etag"].as_str().is_some_and(|e| !e.is_empty()), "{event}");
    assert!(event["commit_mode"].as_str().is_some_and(|m| !m.is_empty()), "{event}");
    assert!(event["bytes_received"].as_u64().is_some(), "{event}");
    assert!(event["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{event}");
    assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "{event}");
    event
}

/// The ETag the server gives `path` now, as its header has it (quoted), as
/// the commit's answer and the webhook have it.
fn etag(d: &Deployment, path: &str) -> String {
    let reply = http().head(format!("{}/api/v1/files/{path}", d.url())).bearer_auth(ADMIN).send().unwrap();
    reply.headers()["etag"].to_str().unwrap().to_owned()
}

on_every_store! {
    /// A tree's small new files go up in one batch, and each still sends
    /// its signed delivery, with the uploader's `sub` and the file's ETag.
    fn each_file_of_a_batch_is_delivered(store: Store) {
        let keys = Scratch::new("hook-keys");
        let receiver = Receiver::start();
        let args = args(&receiver, keys.path());
        let d = Deployment::start(store, "hooks-batch", 1, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let tree = d.work().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        let files = [("one.txt", 3), ("sub/two.bin", 2000), ("zero", 0)];
        for (name, size) in files {
            std::fs::write(tree.join(name), data(size, size as u64)).unwrap();
        }
        // A tree compares against the server's listing: `list` besides `upload`.
        let out = Command::new(diffcopy_bin())
            .arg("token")
            .arg("--jwt-secret-file")
            .arg(keys.path().join("jwt-secret"))
            .args(["--path", "users/alice/", "--allow", "upload,list", "--sub", "alice"])
            .output()
            .unwrap();
        let alice = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let run = Client::new(d.work().join("state"))
            .args(["-r", "--token", &alice])
            .arg(format!("{}/", tree.display()))
            .arg(format!("{}/users/alice/t/", d.url()))
            .run();
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(stats(&d)["delta_uploads_created"], 0, "the files went in a batch");
        wait_until(Duration::from_secs(60), "a delivery per file", || receiver.received().len() >= files.len());
        let mut received = receiver.received();
        received.sort_by_key(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["path"].as_str().unwrap().to_owned());
        assert_eq!(received.len(), files.len(), "each file once");
        let mut expected = files.map(|(name, size)| (format!("users/alice/t/{name}"), size));
        expected.sort();
        for (got, (path, size)) in received.iter().zip(&expected) {
            let event = check(got, keys.path(), path, *size, "alice", "batch");
            assert_eq!(event["etag"].as_str().unwrap(), etag(&d, path), "{path}");
        }
    }

    /// Uploads land while the receiver is down; 5 s later it is up and
    /// gets one signed delivery per commit, with what the commit did.
    fn a_receiver_that_is_down_gets_every_commit_once_it_is_up(store: Store) {
        let keys = Scratch::new("hook-keys");
        let mut receiver = Receiver::down();
        let args = args(&receiver, keys.path());
        let d = Deployment::start(store, "hooks", 1, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let work = d.work();
        let content = data((3 << 20) + 7, 9);
        std::fs::write(work.join("a.bin"), &content).unwrap();
        let alice = token(keys.path(), "alice");
        let url = format!("{}/users/alice/a.bin", d.url());
        // The receiver is down: the upload lands all the same.
        Client::new(work.join("state")).args(["--token", &alice]).arg(work.join("a.bin")).arg(&url).ok_json();
        assert!(d.file("users/alice/a.bin") == Some(content.clone()));
        let mut changed = content.clone();
        changed[5] ^= 1;
        std::fs::write(work.join("a.bin"), &changed).unwrap();
        Client::new(work.join("state")).args(["--token", &alice]).arg(work.join("a.bin")).arg(&url).ok_json();
        let mut commits = vec![("users/alice/a.bin", "v2", etag(&d, "users/alice/a.bin"))];
        if store == Store::Directory {
            let v1 = format!("{}/users/alice/b.bin", d.url());
            Client::new(work.join("state")).args(["--token", &alice, "--protocol", "v1"]).arg(work.join("a.bin")).arg(&v1).ok_json();
            commits.push(("users/alice/b.bin", "v1", etag(&d, "users/alice/b.bin")));
        }
        let queued = commits.len() as u64 + 1;
        assert_eq!(stats(&d)["hooks_queued"], queued, "queued before each commit answered");
        wait_until(Duration::from_secs(30), "a failed delivery attempt", || {
            stats(&d)["hook_attempts_failed"].as_u64().unwrap() >= 1
        });
        assert_eq!(stats(&d)["hooks_delivered"], 0);
        // Down for 5 s, then up.
        std::thread::sleep(Duration::from_secs(5));
        receiver.restart();
        wait_until(Duration::from_secs(60), "every delivery", || receiver.received().len() as u64 >= queued);
        let received = receiver.received();
        assert_eq!(received.len() as u64, queued, "each commit once");
        let events: Vec<Value> = received.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
        // The first upload's, then the delta's, each with its own version.
        let first = received.iter().zip(&events).find(|(_, e)| e["path"] == "users/alice/a.bin" && e["etag"] != commits[0].2.as_str());
        let (first, _) = first.expect("the first upload's delivery");
        check(first, keys.path(), "users/alice/a.bin", content.len(), "alice", "v2");
        for (path, protocol, etag) in &commits {
            let (delivery, event) = received.iter().zip(&events).find(|(_, e)| e["path"] == *path && e["etag"] == etag.as_str())
                .unwrap_or_else(|| panic!("no delivery of {path} at {etag}: {events:?}"));
            check(delivery, keys.path(), path, changed.len(), "alice", protocol);
            assert!(event["bytes_received"].as_u64().unwrap() < changed.len() as u64 || *protocol == "v1", "the delta's bytes: {event}");
        }
        let after = stats(&d);
        assert_eq!(after["hooks_delivered"], queued);
        assert_eq!(after["hooks_abandoned"], 0);
    }

    /// A server killed with SIGKILL after a commit, before its delivery,
    /// delivers it after its restart.
    fn a_delivery_survives_a_kill_between_commit_and_delivery(store: Store) {
        let keys = Scratch::new("hook-keys");
        let mut receiver = Receiver::down();
        let args = args(&receiver, keys.path());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut d = Deployment::start(store, "hook-kill", 1, &args);
        let work = d.work();
        let content = data((1 << 20) + 1, 4);
        std::fs::write(work.join("k.bin"), &content).unwrap();
        let bob = token(keys.path(), "bob");
        Client::new(work.join("state")).args(["--token", &bob]).arg(work.join("k.bin")).arg(format!("{}/users/bob/k.bin", d.url())).ok_json();
        let version = etag(&d, "users/bob/k.bin");
        assert_eq!(stats(&d)["hooks_queued"], 1);
        d.servers[0].kill9();
        receiver.restart();
        assert!(receiver.received().is_empty(), "nothing was delivered before the kill");
        d.restart(&args);
        wait_until(Duration::from_secs(90), "the delivery after the restart", || !receiver.received().is_empty());
        let received = receiver.received();
        assert_eq!(received.len(), 1);
        let event = check(&received[0], keys.path(), "users/bob/k.bin", content.len(), "bob", "v2");
        assert_eq!(event["etag"], version.as_str());
        wait_until(Duration::from_secs(10), "the delivery counted", || stats(&d)["hooks_delivered"] == 1);
    }
}

on_every_store! {
    /// A client that goes away while its commit runs (a closed tab, a
    /// client's timeout) does not take the report with it: the commit runs
    /// to its end and its delivery is queued and sent.
    fn a_commit_whose_client_went_away_is_still_reported(store: Store) {
        let keys = Scratch::new("hook-keys");
        let receiver = Receiver::start();
        let fifo = keys.path().join("pause");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let fault = format!("pause-at:file-hash-check@{}", fifo.display());
        let args = hook_args(&receiver, keys.path());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let d = Deployment::start_with_env(store, "hook-gone", 1, &args, &[("DIFFCOPY_FAULT", fault.as_str())]);
        let url = d.url();
        let bytes = data((1 << 20) + 9, 12);
        let upload = open(&url, "gone.bin", bytes.len());
        upload.hashes(&url, &bytes);
        upload.data(&url, &bytes, 0..bytes.len());
        std::thread::scope(|scope| {
            let impatient = diffcopy_tests::http_builder().timeout(Duration::from_secs(2)).build().unwrap();
            let commit = format!("{url}/api/v2/uploads/{}/commit", upload.id);
            let committing = scope.spawn(move || impatient.post(commit).send().map(|r| r.status().as_u16()));
            // The pipe's writing end opens (without blocking) once the
            // commit waits at its hash check, reading the other end.
            let mut pipe = None;
            wait_until(Duration::from_secs(60), "the commit reaching its hash check", || {
                pipe = std::fs::OpenOptions::new().write(true).custom_flags(O_NONBLOCK).open(&fifo).ok();
                pipe.is_some()
            });
            let answered = committing.join().expect("the client's thread");
            assert!(answered.is_err(), "the client gave up before the commit ended: {answered:?}");
            std::io::Write::write_all(pipe.as_mut().unwrap(), b"g").expect("release the commit");
        });
        wait_until(Duration::from_secs(60), "the delivery", || !receiver.received().is_empty());
        let event: Value = serde_json::from_slice(&receiver.received()[0].body).unwrap();
        assert_eq!(event["path"], "gone.bin");
        assert!(d.file("gone.bin") == Some(bytes), "the commit landed");
    }
}

/// `--hook-url` needs its secret, and a secret long enough.
#[test]
fn a_hook_without_a_usable_secret_stops_the_server_at_start() {
    let dir = Scratch::new("hook-args");
    std::fs::write(dir.path().join("short"), "short\n").unwrap();
    for args in [
        vec!["--hook-url", "http://127.0.0.1:9/hook"],
        vec!["--hook-url", "http://127.0.0.1:9/hook", "--hook-secret-file", "short"],
        vec!["--hook-url", "ftp://127.0.0.1/hook", "--hook-secret-file", "short"],
        vec!["--hook-url", "http://127.0.0.1:9/hook", "--hook-secret-file", "missing"],
    ] {
        let out = Command::new(diffcopy_bin())
            .current_dir(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--root", "root"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
