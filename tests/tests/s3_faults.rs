//! A server over a bucket when the store misbehaves, and where its
//! credentials come from. A fault proxy (`faults.rs`) sits between the
//! server and a real SeaweedFS: it throttles, drops answers after the
//! request took effect, or refuses everything. A stand-in instance
//! metadata service (`imds.rs`) hands out credentials that expire within
//! seconds.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use diffcopy_tests::faults::{FaultProxy, Faults};
use diffcopy_tests::imds::Imds;
use diffcopy_tests::s3::{ACCESS_KEY, S3Kind, S3Server, SECRET_KEY, TestBucket};
use diffcopy_tests::{Client, Scratch, ServerProcess, data, diffcopy_bin, http, wait_until};
use serde_json::Value;

const KEYS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)];

/// A store, a bucket `name` in it, a fault proxy in front, and a server
/// that reaches the store through the proxy.
struct Faulty {
    _store: S3Server,
    bucket: TestBucket,
    proxy: FaultProxy,
    server: ServerProcess,
    dir: Scratch,
}

fn address(endpoint: &str) -> SocketAddr {
    endpoint.trim_start_matches("http://").parse().expect("the store's address")
}

impl Faulty {
    fn start(name: &str, faults: Faults) -> Self {
        let store = S3Server::start(S3Kind::Seaweed, name);
        let bucket = store.bucket(name);
        bucket.create();
        let proxy = FaultProxy::start(address(store.endpoint()));
        proxy.set(faults);
        let url = format!("s3://{name}/files");
        let server =
            ServerProcess::serve(&["--store", url.as_str(), "--s3-endpoint", proxy.url().as_str()], &KEYS);
        Self { _store: store, bucket, proxy, server, dir: Scratch::new(name) }
    }

    fn url(&self) -> String {
        format!("{}/d/f.bin", self.server.url())
    }

    fn client(&self) -> Client {
        Client::new(self.dir.path().join("state"))
    }

    /// Uploads `bytes` and checks, around the server, that they landed.
    fn upload(&self, bytes: &[u8], block: &str) {
        let source = self.dir.path().join("source.bin");
        std::fs::write(&source, bytes).unwrap();
        self.client().args(["-b", block]).arg(&source).arg(self.url()).ok_json();
        assert_eq!(
            self.bucket.file("files", "d/f.bin").as_deref(),
            Some(bytes),
            "the bucket holds what was sent"
        );
    }

    /// Downloads the file over `local` (which may hold an older copy).
    fn download_over(&self, local: &Path, expected: &[u8]) {
        self.client().arg(self.url()).arg(local).ok_json();
        assert_eq!(std::fs::read(local).unwrap(), expected, "the download is the file");
    }

    fn stats(&self) -> Value {
        http().get(format!("{}/api/v1/stats", self.server.url())).send().unwrap().json().unwrap()
    }
}

#[test]
fn every_pattern_lands_byte_for_byte_through_throttles_and_lost_answers() {
    let store = Faulty::start("throttled", Faults { slow_down: 15, drop_answer: 3, down: false });

    // Edge sizes at a 64 KiB block, each a delta against the one before.
    let block = 64 << 10;
    let small = data(block + 1, 1);
    for len in [0, 1, block - 1, block, block + 1] {
        store.upload(&small[..len], "64K");
    }

    // 12 MiB at 1 MiB blocks, so that commits copy 5 MiB parts: new, two
    // edits, growth, an insertion, shrinkage, a whole replacement.
    let mut file = data(12 << 20, 2);
    store.upload(&file, "1M");
    for at in [(1 << 20) + 5, 8 << 20] {
        file[at..at + 4096].fill(0xee);
    }
    store.upload(&file, "1M");
    file.extend_from_slice(&data(3 << 20, 3));
    store.upload(&file, "1M");
    file.splice(4096..4096, data(100, 4));
    store.upload(&file, "1M");
    file.truncate(9 << 20);
    store.upload(&file, "1M");
    let local = store.dir.path().join("copy.bin");
    store.download_over(&local, &file);
    file = data(12 << 20, 5);
    store.upload(&file, "1M");
    // A download as a delta against the older copy.
    store.download_over(&local, &file);

    let (passed, slowed, dropped, _) = store.proxy.counts().get();
    assert!(
        slowed >= 10 && dropped >= 2,
        "the store misbehaved: {slowed} throttled, {dropped} lost of {passed}"
    );
    let retries = store.stats()["store_retries"].as_u64().unwrap();
    assert!(retries >= slowed + dropped / 2, "the server retried them: {retries}");
}

#[test]
fn a_store_that_stays_down_fails_the_upload_cleanly_and_the_cli_lands_it_once_back() {
    let store = Faulty::start("down", Faults::default());
    let old = data(3 << 20, 1);
    store.upload(&old, "1M");
    let mut new = old.clone();
    new[1 << 20..(1 << 20) + 10].fill(7);
    let source = store.dir.path().join("source.bin");
    std::fs::write(&source, &new).unwrap();

    // Down for good: the upload fails with the store's error, and the
    // current version is untouched.
    store.proxy.set(Faults { down: true, ..Faults::default() });
    let run = store.client().args(["--retry-for", "3", "-b", "1M"]).arg(&source).arg(store.url()).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("store_unavailable"), "{}", run.stderr);
    assert_eq!(store.bucket.file("files", "d/f.bin"), Some(old.clone()), "the old version is intact");

    // Down, then back: the CLI waits as the 503s say and tries again,
    // resuming, until the upload lands.
    let refused = store.proxy.counts().get().3;
    let mut child =
        store.client().args(["--retry-for", "120", "-b", "1M"]).arg(&source).arg(store.url()).spawn();
    wait_until(Duration::from_secs(60), "the client to meet the store down", || {
        store.proxy.counts().get().3 >= refused + 6
    });
    store.proxy.set(Faults::default());
    let status = child.wait().unwrap();
    assert!(status.success(), "the upload landed once the store was back");
    assert_eq!(store.bucket.file("files", "d/f.bin"), Some(new), "the new version is there");
}

#[test]
fn credentials_from_instance_metadata_are_refreshed_under_a_running_server() {
    // moto, which takes any key with any session token (SeaweedFS checks
    // a session token against its own STS).
    let moto = S3Server::start(S3Kind::Moto, "imds");
    let bucket = moto.bucket("imds");
    bucket.create();
    // The proxy notes which key signed each request.
    let proxy = FaultProxy::start(address(moto.endpoint()));
    let roles =
        [("role-key-a", "role-secret-a"), ("role-key-b", "role-secret-b"), ("role-key-c", "role-secret-c")];
    // Valid for 123 s: the signer renews credentials two minutes before
    // they expire, so these last about 3 s each.
    let imds = Imds::start(&roles, Duration::from_secs(123));
    let home = Scratch::new("imds-home");
    let server =
        ServerProcess::serve_with(&["--store", "s3://imds/files", "--s3-endpoint", &proxy.url()], |c| {
            c.env_clear().env("HOME", home.path()).env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url());
        });
    let dir = Scratch::new("imds-client");
    let source = dir.path().join("f.bin");
    let mut uploads = 0;
    while imds.issued() < 3 && uploads < 500 {
        let bytes = data(100_000, uploads);
        std::fs::write(&source, &bytes).unwrap();
        Client::new(dir.path().join("state")).arg(&source).arg(format!("{}/f.bin", server.url())).ok_json();
        assert_eq!(bucket.file("files", "f.bin"), Some(bytes), "upload {uploads} landed");
        uploads += 1;
    }
    assert!(imds.issued() >= 3, "credentials renewed twice in {uploads} uploads");
    let used = proxy.access_keys();
    assert!(roles.iter().all(|(key, _)| used.contains(*key)), "every renewed key signed requests: {used:?}");
    assert!(!used.contains(ACCESS_KEY), "no key but the role's: {used:?}");
}

#[test]
fn with_no_credentials_anywhere_the_server_names_every_source_it_tried() {
    let home = Scratch::new("no-credentials");
    let closed = "http://127.0.0.1:9";
    let output = Command::new(diffcopy_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "s3://nowhere/files", "--s3-endpoint", closed])
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", closed)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for source in [
        "no S3 credentials",
        "AWS_ACCESS_KEY_ID",
        "~/.aws/credentials",
        "SSO",
        "web identity",
        "credential_process",
        "container credentials",
        "IMDSv2 at http://127.0.0.1:9",
    ] {
        assert!(stderr.contains(source), "{source:?} in {stderr}");
    }
}
