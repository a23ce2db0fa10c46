//! One test body, every store: [`Deployment`] is `diffcopy serve` over a
//! directory or over a bucket of a real S3 server (SeaweedFS or moto), and
//! [`on_every_store!`](crate::on_every_store) turns one body into a test
//! of each ([`on_every_bucket!`](crate::on_every_bucket): of each S3
//! server). The bucket tests of one binary share one server of each kind
//! (started on first use, gone when the test process ends), each in a
//! bucket of its own.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use diffcopy_core::delta::{BlockHashesBuilder, Codec, DeltaParams, FRAMES_HEADER, Levels, write_frame};
use serde_json::{Value, json};

use crate::s3::{ACCESS_KEY, RoundRobin, S3Kind, S3Server, SECRET_KEY, TestBucket};
use crate::{Scratch, ServerProcess, http};

/// Where a deployment keeps its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `--root DIR`.
    Directory,
    /// `--store s3://BUCKET/files` on the shared S3 server of this kind.
    Bucket(S3Kind),
}

/// The keys the shared store takes.
pub const KEYS: [(&str, &str); 2] =
    [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)];

/// The S3 server of `kind` the bucket tests of this test binary share.
pub fn shared_s3(kind: S3Kind) -> &'static S3Server {
    static WEED: OnceLock<S3Server> = OnceLock::new();
    static MOTO: OnceLock<S3Server> = OnceLock::new();
    let cell = match kind {
        S3Kind::Seaweed => &WEED,
        S3Kind::Moto => &MOTO,
    };
    cell.get_or_init(|| S3Server::start_for_process(kind, "shared"))
}

/// `diffcopy serve` instances over one store.
#[derive(Debug)]
pub struct Deployment {
    /// The store.
    pub store: Store,
    /// The instances (one over a directory; any number over a bucket).
    pub servers: Vec<ServerProcess>,
    /// The scratch directory: the root of a directory store, and room for
    /// a test's own files (`work()`).
    dir: Scratch,
    bucket: Option<(String, S3Kind, TestBucket)>,
    env: Vec<(String, String)>,
}

impl Deployment {
    /// `instances` servers (1 over a directory) with `args`, over `store`.
    pub fn start(store: Store, name: &str, instances: usize, args: &[&str]) -> Self {
        Self::start_with_env(store, name, instances, args, &[])
    }

    /// [`start`](Self::start) with environment variables for the servers.
    pub fn start_with_env(
        store: Store,
        name: &str,
        instances: usize,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        static BUCKETS: AtomicUsize = AtomicUsize::new(0);
        let dir = Scratch::new(&format!("{name}-{store:?}"));
        std::fs::create_dir_all(dir.path().join("root")).expect("the root");
        std::fs::create_dir_all(dir.path().join("work")).expect("the work dir");
        let bucket = match store {
            Store::Directory => None,
            Store::Bucket(kind) => Some(kind),
        }
        .map(|kind| {
            let bucket_name =
                format!("b{}-{}", BUCKETS.fetch_add(1, Ordering::Relaxed), name.replace('_', "-"));
            let bucket_name: String = bucket_name.chars().take(63).collect();
            let bucket = shared_s3(kind).bucket(&bucket_name);
            bucket.create();
            (bucket_name, kind, bucket)
        });
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut deployment = Self { store, servers: Vec::new(), dir, bucket, env };
        let count = if store == Store::Directory { 1 } else { instances };
        deployment.servers = (0..count).map(|_| deployment.serve(args)).collect();
        deployment
    }

    fn serve(&self, args: &[&str]) -> ServerProcess {
        let mut all: Vec<String> = match &self.bucket {
            None => vec!["--root".into(), self.dir.path().join("root").display().to_string()],
            Some((name, kind, _)) => vec![
                "--store".into(),
                format!("s3://{name}/files"),
                "--s3-endpoint".into(),
                shared_s3(*kind).endpoint().to_owned(),
            ],
        };
        all.extend(args.iter().map(|a| a.to_string()));
        let mut env: Vec<(&str, &str)> = KEYS.to_vec();
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        ServerProcess::serve(&all, &env)
    }

    /// Stops every instance and starts as many again, over the same files,
    /// with `args` instead.
    pub fn restart(&mut self, args: &[&str]) {
        let count = self.servers.len();
        self.servers.clear();
        self.servers = (0..count).map(|_| self.serve(args)).collect();
    }

    /// The first instance's URL.
    pub fn url(&self) -> String {
        self.servers[0].url()
    }

    /// A round-robin proxy over every instance.
    pub fn proxy(&self) -> RoundRobin {
        RoundRobin::start(self.servers.iter().map(|s| s.addr).collect())
    }

    /// A directory for the test's own files (not served).
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// What the store holds at `path`, read around the server.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        match &self.bucket {
            None => std::fs::read(self.dir.path().join("root").join(path)).ok(),
            Some((_, _, bucket)) => bucket.file("files", path),
        }
    }

    /// `GET /api/v1/stats` of instance `i`.
    pub fn stats(&self, i: usize) -> Value {
        http().get(format!("{}/api/v1/stats", self.servers[i].url())).send().unwrap().json().unwrap()
    }
}

/// Writes one test per store from one body: `fn name(store: Store) { .. }`
/// becomes the module `name` with the tests `directory`, `seaweedfs` and
/// `moto`.
#[macro_export]
macro_rules! on_every_store {
    ($(#[doc = $doc:literal])* fn $name:ident($store:ident: Store) $body:block $($rest:tt)*) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($store: $crate::stores::Store) $body

            #[test]
            fn directory() {
                body($crate::stores::Store::Directory)
            }

            #[test]
            fn seaweedfs() {
                body($crate::stores::Store::Bucket($crate::s3::S3Kind::Seaweed))
            }

            #[test]
            fn moto() {
                body($crate::stores::Store::Bucket($crate::s3::S3Kind::Moto))
            }
        }
        $crate::on_every_store! { $($rest)* }
    };
    () => {};
}

/// Writes one test per S3 server from one body: `fn name(kind: S3Kind)
/// { .. }` becomes the module `name` with the tests `seaweedfs` and `moto`.
#[macro_export]
macro_rules! on_every_bucket {
    ($(#[doc = $doc:literal])* fn $name:ident($kind:ident: S3Kind) $body:block $($rest:tt)*) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($kind: $crate::s3::S3Kind) $body

            #[test]
            fn seaweedfs() {
                body($crate::s3::S3Kind::Seaweed)
            }

            #[test]
            fn moto() {
                body($crate::s3::S3Kind::Moto)
            }
        }
        $crate::on_every_bucket! { $($rest)* }
    };
    () => {};
}

/// Protocol v2 by hand, for races and crashes a CLI run cannot pin down.
#[derive(Debug)]
pub struct RawUpload {
    /// The session id.
    pub id: String,
    /// The new file's size, seed and levels.
    pub params: DeltaParams,
}

/// Opens a whole upload (no search: every byte comes as data) of a
/// `size`-byte file at `path`.
pub fn open(server: &str, path: &str, size: usize) -> RawUpload {
    let reply = http()
        .post(format!("{server}/api/v2/uploads"))
        .json(&json!({ "path": path, "size": size, "whole": true }))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 201);
    let created: Value = reply.json().unwrap();
    let seed = u64::from_str_radix(created["seed"].as_str().unwrap(), 16).unwrap();
    let sizes: Vec<u32> =
        created["levels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let levels = Levels::new(&sizes).unwrap();
    RawUpload {
        id: created["id"].as_str().unwrap().to_owned(),
        params: DeltaParams { file_size: size as u64, seed, levels },
    }
}

impl RawUpload {
    /// Sends the block hashes of `bytes` (the one round of a whole upload).
    pub fn hashes(&self, server: &str, bytes: &[u8]) {
        let mut builder = BlockHashesBuilder::new(self.params);
        for block in bytes.chunks(self.params.levels.block_size() as usize) {
            builder.push_block(block);
        }
        let reply = http()
            .post(format!("{server}/api/v2/uploads/{}/hashes", self.id))
            .body(builder.finish().unwrap().encode())
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200, "{:?}", reply.text());
    }

    /// Sends `range` of `bytes` as one raw frame: (status, body).
    pub fn try_data(&self, server: &str, bytes: &[u8], range: std::ops::Range<usize>) -> (u16, Value) {
        let mut body = FRAMES_HEADER.to_vec();
        write_frame(&mut body, range.start as u64, range.len() as u32, Codec::Raw, &bytes[range]);
        let reply =
            http().post(format!("{server}/api/v2/uploads/{}/data", self.id)).body(body).send().unwrap();
        (reply.status().as_u16(), reply.json().unwrap_or(Value::Null))
    }

    /// [`try_data`](Self::try_data), which must be taken (204).
    pub fn data(&self, server: &str, bytes: &[u8], range: std::ops::Range<usize>) {
        let (status, body) = self.try_data(server, bytes, range);
        assert_eq!(status, 204, "{body}");
    }

    /// Commits: (status, body).
    pub fn commit(&self, server: &str) -> (u16, Value) {
        let reply = http().post(format!("{server}/api/v2/uploads/{}/commit", self.id)).send().unwrap();
        (reply.status().as_u16(), reply.json().unwrap_or(Value::Null))
    }
}
