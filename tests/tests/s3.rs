//! Servers over an S3-compatible bucket (`diffcopy serve --store s3://...`),
//! against two real ones on 127.0.0.1, each test body on both
//! (`on_every_bucket!`): SeaweedFS's `weed mini` and moto's server. Two
//! instances share a bucket; the tests read the bucket directly to check
//! what landed.

use std::process::Command;
use std::time::Duration;

use diffcopy_tests::s3::{ACCESS_KEY, RoundRobin, S3Kind, S3Server, SECRET_KEY, TestBucket};
use diffcopy_tests::stores::{RawUpload, open};
use diffcopy_tests::{Client, Scratch, ServerProcess, data, diffcopy_bin, http, on_every_bucket, wait_until};
use serde_json::{Value, json};

const KEYS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)];

/// A store, one bucket in it, and `n` instances over it.
struct Cluster {
    store: S3Server,
    bucket: TestBucket,
    servers: Vec<ServerProcess>,
}

impl Cluster {
    fn start(kind: S3Kind, name: &str, n: usize, extra: &[&str]) -> Self {
        let store = S3Server::start(kind, name);
        let bucket = store.bucket(name);
        bucket.create();
        let url = format!("s3://{name}/files");
        let servers = (0..n)
            .map(|_| {
                let mut args = vec!["--store", url.as_str(), "--s3-endpoint", store.endpoint()];
                args.extend_from_slice(extra);
                ServerProcess::serve(&args, &KEYS)
            })
            .collect();
        Self { store, bucket, servers }
    }

    fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.bucket.file("files", path)
    }

    fn stats(&self, i: usize) -> Value {
        http().get(format!("{}/api/v1/stats", self.servers[i].url())).send().unwrap().json().unwrap()
    }
}

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

on_every_bucket! {
    fn two_instances_serve_one_bucket_request_by_request(kind: S3Kind) {
        let cluster = Cluster::start(kind, "alternate", 2, &[]);
        let proxy = RoundRobin::start(cluster.servers.iter().map(|s| s.addr).collect());
        let dir = Scratch::new("s3-alternate");
        let source = dir.path().join("source.bin");
        let url = format!("{}/d/f.bin", proxy.url());
        let upload = |bytes: &[u8], block: &str| {
            write(&source, bytes);
            Client::new(dir.path().join("state")).args(["-b", block]).arg(&source).arg(&url).ok_json();
            assert_eq!(cluster.file("d/f.bin").as_deref(), Some(bytes), "the bucket holds what was sent");
        };

        // Edge sizes at a 64 KiB block, growing and shrinking, each upload a
        // delta against the one before.
        let block = 64 << 10;
        let big = data(3 * block + 17, 1);
        for len in [0, 1, block - 1, block, block + 1, 3 * block + 17, 2 * block] {
            upload(&big[..len], "64K");
        }

        // 24 MiB at 1 MiB blocks: new, scattered edits, an insertion, shrinking.
        let mut file = data(24 << 20, 2);
        upload(&file, "1M");
        let copied_before: u64 = (0..2).map(|i| cluster.stats(i)["store_bytes_copied"].as_u64().unwrap()).sum();
        // Two 4 KiB edits 14 MiB apart: each is uploaded in a 5 MiB part,
        // the stretches between and after are copied.
        for at in [(1 << 20) + 5, 15 << 20] {
            file[at..at + 4096].fill(0xee);
        }
        upload(&file, "1M");
        let copied: u64 = (0..2).map(|i| cluster.stats(i)["store_bytes_copied"].as_u64().unwrap()).sum();
        assert!(
            copied - copied_before >= 10 << 20,
            "unchanged ranges were copied inside the store: {copied_before} -> {copied}"
        );
        file.splice(4096..4096, data(100, 3));
        upload(&file, "1M");
        file.truncate(11 << 20);
        upload(&file, "1M");

        // Downloads, whole and as a delta, and a range.
        let copy = dir.path().join("copy.bin");
        Client::new(dir.path().join("state")).arg(&url).arg(&copy).ok_json();
        assert_eq!(std::fs::read(&copy).unwrap(), file);
        let mut old = file.clone();
        old[3 << 20..(3 << 20) + 10].fill(1);
        write(&copy, &old);
        Client::new(dir.path().join("state")).arg(&url).arg(&copy).ok_json();
        assert_eq!(std::fs::read(&copy).unwrap(), file);
        let ranged = http()
            .get(format!("{}/api/v1/files/d/f.bin", proxy.url()))
            .header("range", "bytes=10-19")
            .send()
            .unwrap();
        assert_eq!(ranged.status(), 206);
        assert_eq!(ranged.bytes().unwrap().as_ref(), &file[10..20]);

        let counts = proxy.counts();
        assert!(counts.iter().all(|&n| n >= 20), "both instances served requests: {counts:?}");
        // Nothing of the sessions is left behind.
        assert_eq!(cluster.bucket.keys("files/sessions/"), Vec::<String>::new());
        drop(cluster.store);
    }

    fn eight_uploaders_from_one_base_one_wins(kind: S3Kind) {
        let cluster = Cluster::start(kind, "race", 2, &[]);
        let urls: Vec<String> = cluster.servers.iter().map(ServerProcess::url).collect();
        let base = data(6 << 20, 10);
        let first = open(&urls[0], "race.bin", base.len());
        first.hashes(&urls[0], &base);
        first.data(&urls[1], &base, 0..base.len());
        assert_eq!(first.commit(&urls[0]).0, 200);

        // Eight uploads open on the same base, through both instances...
        let contents: Vec<Vec<u8>> = (0..8).map(|i| data((5 << 20) + i * 4099, 20 + i as u64)).collect();
        let uploads: Vec<(RawUpload, &str)> = contents
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let server = urls[i % 2].as_str();
                let upload = open(server, "race.bin", bytes.len());
                upload.hashes(server, bytes);
                upload.data(urls[(i + 1) % 2].as_str(), bytes, 0..bytes.len());
                (upload, server)
            })
            .collect();
        // ...then all commit at once.
        let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let running: Vec<_> =
                uploads.iter().map(|(u, server)| scope.spawn(move || u.commit(server))).collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let winners: Vec<usize> = (0..8).filter(|&i| outcomes[i].0 == 200).collect();
        assert_eq!(winners.len(), 1, "exactly one commit wins: {outcomes:?}");
        for (i, (status, body)) in outcomes.iter().enumerate() {
            if *status != 200 {
                assert_eq!((*status, body["error"].as_str()), (412, Some("target_changed")), "loser {i}");
            }
        }
        assert_eq!(
            cluster.file("race.bin").as_ref(),
            Some(&contents[winners[0]]),
            "the object is the winner's, whole"
        );
        // The losers' versions are gone; the winner's and the superseded base stay.
        let versions =
            cluster.bucket.keys("files/versions/").into_iter().filter(|k| !k.ends_with(".hashes")).count();
        assert_eq!(versions, 2);
    }

    fn an_instance_killed_mid_upload_loses_nothing(kind: S3Kind) {
        let mut cluster = Cluster::start(kind, "takeover", 2, &[]);
        let (a, b) = (cluster.servers[0].url(), cluster.servers[1].url());
        let bytes = data((12 << 20) + 3, 30);
        let upload = open(&a, "big/file.bin", bytes.len());
        upload.hashes(&a, &bytes);
        let half = bytes.len() / 2;
        upload.data(&a, &bytes, 0..half);
        cluster.servers[0].kill9();

        // The other instance knows the session from the store alone.
        let status: Value =
            http().get(format!("{b}/api/v2/uploads/{}", upload.id)).send().unwrap().json().unwrap();
        assert_eq!(status["phase"], "receiving");
        assert_eq!(status["missing"], json!([[half, bytes.len()]]));
        let (code, early) = upload.commit(&b);
        assert_eq!((code, early["error"].as_str()), (409, Some("missing_data")));
        upload.data(&b, &bytes, half..bytes.len());
        let (code, done) = upload.commit(&b);
        assert_eq!(code, 200, "{done}");
        assert_eq!(cluster.file("big/file.bin"), Some(bytes));
    }

    fn a_search_started_on_one_instance_continues_on_the_other(kind: S3Kind) {
        let cluster = Cluster::start(kind, "rounds", 2, &["--upload-ttl", "3"]);
        let proxy = RoundRobin::start(cluster.servers.iter().map(|s| s.addr).collect());
        let dir = Scratch::new("s3-rounds");
        let source = dir.path().join("f");
        let url = format!("{}/f", proxy.url());
        let mut bytes = data(8 << 20, 40);
        write(&source, &bytes);
        Client::new(dir.path().join("state")).arg(&source).arg(&url).ok_json();
        // Edits inside blocks: the search goes down to finer levels, round by
        // round, each round on the other instance (which replays the earlier
        // rounds from the store).
        for at in [100_000, 3_000_000, 7_000_000] {
            bytes[at..at + 10].fill(7);
        }
        write(&source, &bytes);
        let summary = Client::new(dir.path().join("state")).arg(&source).arg(&url).ok_json();
        assert!(summary["bytes_sent"].as_u64().unwrap() < 64 << 10, "{summary}");
        assert_eq!(cluster.file("f"), Some(bytes));
        let rolled: u64 = (0..2).map(|i| cluster.stats(i)["search_bytes_hashed"].as_u64().unwrap()).sum();
        assert!(rolled > 0);

        // The superseded version is swept after the grace period (3 s here),
        // and so is an abandoned upload.
        let abandoned = open(&cluster.servers[0].url(), "gone", 10);
        assert!(!cluster.bucket.keys(&format!("files/sessions/{}/", abandoned.id)).is_empty());
        wait_until(Duration::from_secs(30), "the old version and the idle upload swept", || {
            let versions = cluster.bucket.keys("files/versions/");
            versions.len() == 2
                && cluster.bucket.keys("files/sessions/").is_empty()
                && cluster.bucket.keys("files/superseded/").is_empty()
        });
        assert_eq!(cluster.file("f").map(|f| f.len()), Some(8 << 20), "the current version stays");
    }

    fn bad_credentials_a_missing_bucket_and_no_store_stop_the_server_at_start(kind: S3Kind) {
        let store = S3Server::start(kind, "refusals");
        store.bucket("present").create();
        let start = |store: &str, endpoint: &str, keys: [(&str, &str); 2]| {
            let output = Command::new(diffcopy_bin())
                .args(["serve", "--listen", "127.0.0.1:0", "--store", store, "--s3-endpoint", endpoint])
                .envs(keys)
                .output()
                .unwrap();
            (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
        };
        // moto checks no signature (any keys are good keys there), so
        // wrong keys are refused by SeaweedFS only.
        if kind == S3Kind::Seaweed {
            let (code, err) = start(
                "s3://present",
                store.endpoint(),
                [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", "wrong")],
            );
            assert_eq!(code, Some(1));
            assert!(err.contains("refused the credentials"), "{err}");
        }
        let (code, err) = start("s3://absent", store.endpoint(), KEYS);
        assert_eq!(code, Some(1));
        assert!(err.contains("does not exist"), "{err}");
        let closed = format!(
            "http://127.0.0.1:{}",
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
        );
        let (code, err) = start("s3://present", &closed, KEYS);
        assert_eq!(code, Some(1));
        assert!(err.contains("cannot reach"), "{err}");
        let (code, err) = start("s3://Not_A_Bucket", store.endpoint(), KEYS);
        assert_eq!(code, Some(2), "{err}");
    }

    fn downloads_work_over_every_protocol_and_other_uploads_answer_501(kind: S3Kind) {
        let cluster = Cluster::start(kind, "unsupported", 1, &[]);
        let url = cluster.servers[0].url();
        let health: Value = http().get(format!("{url}/api/v1/health")).send().unwrap().json().unwrap();
        assert_eq!(health["protocols"], json!(["v2"]));
        let dir = Scratch::new("s3-protocols");
        let mut content = data((5 << 20) + 7, 60);
        let source = dir.path().join("source.bin");
        for step in ["new", "changed", "shrinking"] {
            match step {
                "changed" => content[(2 << 20) + 3] ^= 1,
                "shrinking" => content.truncate((3 << 20) + 1),
                _ => {}
            }
            write(&source, &content);
            Client::new(dir.path().join("state")).arg(&source).arg(format!("{url}/dir/f.bin")).ok_json();
            for protocol in ["v2", "v1", "pdiffcopy"] {
                let local = dir.path().join(format!("{protocol}.bin"));
                Client::new(dir.path().join("state"))
                    .args(["--protocol", protocol])
                    .arg(format!("{url}/dir/f.bin"))
                    .arg(&local)
                    .ok_json();
                assert!(std::fs::read(&local).unwrap() == content, "{step}: the {protocol} download differs");
            }
            // Block hashes at a block size the upload did not use: computed from the version.
            let local = dir.path().join("v2-64k.bin");
            Client::new(dir.path().join("state"))
                .args(["-b", "64K"])
                .arg(format!("{url}/dir/f.bin"))
                .arg(&local)
                .ok_json();
            assert!(std::fs::read(&local).unwrap() == content, "{step}: the 64 KiB-block download differs");
            let local = dir.path().join("real-pdiffcopy.bin");
            diffcopy_tests::run_pdiffcopy(&[
                "-b",
                "1048576",
                &format!("{url}/dir/f.bin"),
                local.to_str().unwrap(),
            ]);
            assert!(std::fs::read(&local).unwrap() == content, "{step}: pdiffcopy's download differs");
        }
        let missing = http().get(format!("{url}/info?filename=/nothing")).send().unwrap();
        assert_eq!((missing.status().as_u16(), missing.bytes().unwrap().len()), (404, 0));
        for (method, path) in [
            ("POST", "/api/v1/uploads"),
            ("PUT", "/api/v1/uploads/x/blocks/0"),
            ("POST", "/blocks?filename=/x&offset=0"),
            ("POST", "/resize?filename=/x&size=0"),
        ] {
            let reply = http().request(method.parse().unwrap(), format!("{url}{path}")).send().unwrap();
            assert_eq!(reply.status(), 501, "{method} {path}");
            let body: Value = reply.json().unwrap();
            assert_eq!(body["error"], "not_supported_by_store");
        }
        let missing = http().get(format!("{url}/api/v1/files/nothing")).send().unwrap();
        assert_eq!(missing.status(), 404);
        let bad = http()
            .post(format!("{url}/api/v2/uploads"))
            .json(&json!({ "path": "../x", "size": 1 }))
            .send()
            .unwrap();
        assert_eq!(bad.status(), 400);
    }

    fn data_that_is_not_the_hashed_file_is_refused_at_commit(kind: S3Kind) {
        let cluster = Cluster::start(kind, "mismatch", 2, &[]);
        let (a, b) = (cluster.servers[0].url(), cluster.servers[1].url());
        let bytes = data((7 << 20) + 11, 50);
        let mut forged = bytes.clone();
        forged[(3 << 20) + 1] ^= 1;
        // Hashed on arrival at one instance, committed by the other, and the
        // other way round: both notice.
        for (via, commit_at) in [(&a, &b), (&a, &a)] {
            let upload = open(via, "forged.bin", bytes.len());
            upload.hashes(via, &bytes);
            upload.data(via, &forged, 0..forged.len());
            let (code, body) = upload.commit(commit_at);
            assert_eq!((code, body["error"].as_str()), (422, Some("file_hash_mismatch")), "{body}");
        }
        assert_eq!(cluster.file("forged.bin"), None, "nothing was committed");
        assert_eq!(cluster.bucket.keys("files/versions/"), Vec::<String>::new());
    }

    fn a_range_sent_twice_with_other_bytes_never_lands_whichever_instance_hashed_it(kind: S3Kind) {
        let cluster = Cluster::start(kind, "twice", 2, &[]);
        let (a, b) = (cluster.servers[0].url(), cluster.servers[1].url());
        let bytes = data((3 << 20) + 11, 90);
        let mut forged = bytes.clone();
        forged[(1 << 20) + 5] ^= 1;
        // Every block arrives whole in one request, so each instance that
        // stores a range holds its hashes for the commit.
        for (n, (first, second)) in [(&bytes, &forged), (&forged, &bytes)].into_iter().enumerate() {
            for (first_at, second_at, commit_at) in [(&a, &b, &a), (&a, &b, &b), (&a, &a, &a)] {
                let path = format!("twice-{n}.bin");
                let upload = open(first_at, &path, bytes.len());
                upload.hashes(first_at, &bytes);
                upload.data(first_at, first, 0..bytes.len());
                upload.data(second_at, second, 0..bytes.len());
                let (code, body) = upload.commit(commit_at);
                // The first bytes stored are the upload's: the honest ones
                // land, the forged ones are refused; never a mixture.
                if *first == bytes {
                    assert_eq!(code, 200, "{body}");
                    assert!(cluster.file(&path).as_ref() == Some(&bytes), "the stored file is the hashed one");
                } else {
                    assert_eq!((code, body["error"].as_str()), (422, Some("file_hash_mismatch")), "{body}");
                    assert_ne!(cluster.file(&path).as_ref(), Some(&forged), "forged bytes never land");
                }
            }
        }
    }

    fn a_store_that_fails_is_a_retryable_503_not_a_race(kind: S3Kind) {
        let cluster = Cluster::start(kind, "failing", 1, &[]);
        let url = cluster.servers[0].url();
        let bytes = data((1 << 20) + 7, 91);
        let upload = open(&url, "f.bin", bytes.len());
        upload.hashes(&url, &bytes);
        upload.data(&url, &bytes, 0..bytes.len());
        let Cluster { store, bucket, servers } = cluster;
        drop(store);
        let (code, body) = upload.commit(&url);
        assert_eq!((code, body["error"].as_str()), (503, Some("store_unavailable")), "{body}");
        let status = http().get(format!("{url}/api/v2/uploads/{}", upload.id)).send().unwrap();
        assert_eq!(status.status(), 503);
        drop((bucket, servers));
    }
}

/// Resident set size of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn what_instances_remember_of_sessions_goes_once_idle() {
    // A grace of 40 s: instances forget sessions idle for 10 s.
    // What the server holds, not what the store does: SeaweedFS alone.
    let cluster = Cluster::start(S3Kind::Seaweed, "forget", 2, &["--upload-ttl", "40"]);
    let proxy = RoundRobin::start(cluster.servers.iter().map(|s| s.addr).collect());
    let url = proxy.url();
    let bytes = data(70_000, 92);
    let started = std::time::Instant::now();
    for i in 0..300 {
        assert!(started.elapsed() < Duration::from_secs(240), "300 sessions took too long");
        // Open, hashes, data, commit: each request at the other instance.
        let upload = open(&url, &format!("many/{i}"), bytes.len());
        upload.hashes(&url, &bytes);
        upload.data(&url, &bytes, 0..bytes.len());
        let (code, body) = upload.commit(&url);
        assert_eq!(code, 200, "{body}");
    }
    let held = |i: usize| {
        let stats = cluster.stats(i);
        stats["cached_sessions"].as_u64().unwrap() + stats["cached_block_hashes"].as_u64().unwrap()
    };
    let peak: Vec<u64> = cluster.servers.iter().map(|s| rss_kib(s.child.id())).collect();
    assert!(held(0) + held(1) > 0, "the instances that did not commit a session still hold it");
    wait_until(Duration::from_secs(60), "both instances forgetting every idle session", || {
        held(0) == 0 && held(1) == 0
    });
    for (i, server) in cluster.servers.iter().enumerate() {
        let now = rss_kib(server.child.id());
        assert!(now <= peak[i] + 2048, "instance {i}: {} KiB at the end, {} KiB before", now, peak[i]);
    }
}
