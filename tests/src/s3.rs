//! Real S3-compatible servers for the tests, from the project's venv
//! (scripts/setup installs them), on ports of their own on 127.0.0.1:
//! SeaweedFS's `weed mini` and moto's server ([`S3Server`] either); a way
//! to read what the bucket holds without going through diffcopy; and a
//! round-robin proxy that sends each connection (and so, with
//! `Connection: close`, each request) to the next instance.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use diffcopy::testing::StoreProbe;

use crate::{Scratch, wait_until, workspace};

/// The keys `weed mini` is started with (it takes them from the environment).
pub const ACCESS_KEY: &str = "diffcopy-test-key";
/// The secret of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "diffcopy-test-secret";

/// A `weed mini` process, killed on drop.
#[derive(Debug)]
pub struct Weed {
    child: Child,
    /// `http://127.0.0.1:PORT` of its S3 API.
    pub endpoint: String,
    _dir: Scratch,
}

/// Held while a `weed mini` picks its ports and binds them, so that two
/// tests of one binary never pick the same free port.
static STARTING: Mutex<()> = Mutex::new(());

/// `n` distinct free ports (all bound at once, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("a bound port").port()).collect()
}

/// Starts a store server, its output in `dir`/store.log. With
/// `for_process`, it lives as long as the test process (to keep in a
/// static, which is never dropped): a shell between the two reads its
/// standard input, a pipe from this process, and kills the store with
/// SIGKILL (the one signal `weed mini` stops on) when that reaches its end,
/// as it does when this process ends, however it ends.
fn spawn_store(
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    dir: &Path,
    for_process: bool,
) -> Child {
    let log = std::fs::File::create(dir.join("store.log")).expect("the store's log");
    let mut command = if for_process {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(r#""$@" </dev/null & w=$!; read _ || true; kill -9 "$w"; rm -rf "$STORE_DIR""#)
            .arg("sh")
            .arg(program)
            .env("STORE_DIR", dir)
            .stdin(Stdio::piped());
        sh
    } else {
        let mut store = Command::new(program);
        store.stdin(Stdio::null());
        store
    };
    command
        .args(args)
        .envs(env.iter().copied())
        .stdout(log.try_clone().expect("the store's log"))
        .stderr(log)
        .spawn()
        .expect("spawn the store")
}

/// The `weed` binary from the project's venv.
pub fn weed_bin() -> PathBuf {
    let bin = workspace().join(".venv/bin/weed");
    assert!(bin.exists(), "{} is missing: run scripts/setup", bin.display());
    bin
}

impl Weed {
    /// Starts `weed mini` with every port its own and waits until its S3
    /// API creates buckets; it is killed when this is dropped.
    pub fn start(name: &str) -> Self {
        Self::launch(name, false)
    }

    /// [`start`](Self::start) for a `weed mini` that lives as long as the
    /// test process (to keep in a static, which is never dropped): a shell
    /// between the two reads its standard input, a pipe from this process,
    /// and kills `weed` when that reaches its end, as it does when this
    /// process ends, however it ends.
    pub fn start_for_process(name: &str) -> Self {
        Self::launch(name, true)
    }

    fn launch(name: &str, for_process: bool) -> Self {
        let dir = Scratch::new(&format!("weed-{name}"));
        let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        let ports = free_ports(12);
        let s3 = ports[0];
        let mut args = vec![
            format!("-dir={}", dir.path().display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            format!("-s3.port={s3}"),
        ];
        for (flag, port) in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "admin.port",
            "admin.port.grpc",
        ]
        .iter()
        .zip(&ports[1..])
        {
            args.push(format!("-{}={}", flag, port));
        }
        let env = [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)];
        let mut command_args = vec!["mini".to_owned()];
        command_args.extend(args);
        let child = spawn_store(&weed_bin(), &command_args, &env, dir.path(), for_process);
        let weed = Self { child, endpoint: format!("http://127.0.0.1:{s3}"), _dir: dir };
        wait_until(Duration::from_secs(60), "weed mini answering S3", || {
            TcpStream::connect(("127.0.0.1", s3)).is_ok()
        });
        weed
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's S3 server (`moto_server` from the project's venv), a second S3
/// implementation, on a port of its own; killed on drop. It takes any
/// keys and session token.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    _dir: Scratch,
}

impl Moto {
    /// Starts a moto server and waits until it answers.
    pub fn start(name: &str) -> Self {
        Self::launch(name, false)
    }

    /// [`start`](Self::start) for one that lives as long as the test
    /// process (see [`Weed::start_for_process`]).
    pub fn start_for_process(name: &str) -> Self {
        Self::launch(name, true)
    }

    fn launch(name: &str, for_process: bool) -> Self {
        let bin = workspace().join(".venv/bin/moto_server");
        assert!(bin.exists(), "{} is missing: run scripts/setup", bin.display());
        let dir = Scratch::new(&format!("moto-{name}"));
        let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        let port = free_ports(1)[0];
        let args = ["-H".to_owned(), "127.0.0.1".to_owned(), "-p".to_owned(), port.to_string()];
        let child = spawn_store(&bin, &args, &[], dir.path(), for_process);
        let moto = Self { child, endpoint: format!("http://127.0.0.1:{port}"), _dir: dir };
        wait_until(Duration::from_secs(60), "moto answering", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which S3 implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Kind {
    /// SeaweedFS's `weed mini`.
    Seaweed,
    /// moto's server.
    Moto,
}

/// A running S3 server of either kind; killed on drop.
#[derive(Debug)]
pub enum S3Server {
    /// SeaweedFS.
    Seaweed(Weed),
    /// moto.
    Moto(Moto),
}

impl S3Server {
    /// Starts one of `kind`.
    pub fn start(kind: S3Kind, name: &str) -> Self {
        match kind {
            S3Kind::Seaweed => Self::Seaweed(Weed::start(name)),
            S3Kind::Moto => Self::Moto(Moto::start(name)),
        }
    }

    /// Starts one of `kind` that lives as long as the test process.
    pub fn start_for_process(kind: S3Kind, name: &str) -> Self {
        match kind {
            S3Kind::Seaweed => Self::Seaweed(Weed::start_for_process(name)),
            S3Kind::Moto => Self::Moto(Moto::start_for_process(name)),
        }
    }

    /// `http://127.0.0.1:PORT` of its S3 API.
    pub fn endpoint(&self) -> &str {
        match self {
            Self::Seaweed(weed) => &weed.endpoint,
            Self::Moto(moto) => &moto.endpoint,
        }
    }

    /// A client of bucket `name` with the test keys.
    pub fn bucket(&self, name: &str) -> TestBucket {
        TestBucket::new(self.endpoint(), name, ACCESS_KEY, SECRET_KEY)
    }
}

/// A bucket read and written directly, from blocking test code.
#[derive(Debug)]
pub struct TestBucket {
    runtime: tokio::runtime::Runtime,
    probe: StoreProbe,
}

impl TestBucket {
    /// A client of bucket `name` at `endpoint` with these keys.
    pub fn new(endpoint: &str, name: &str, access_key: &str, secret_key: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let probe = StoreProbe::new(endpoint, name, access_key, secret_key).expect("bucket client");
        Self { runtime, probe }
    }

    /// Creates the bucket, retrying while the store is still starting.
    pub fn create(&self) {
        wait_until(Duration::from_secs(60), "the store to create the bucket", || {
            self.runtime.block_on(self.probe.create()).is_ok()
        });
    }

    /// Object `key`, whole.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.runtime.block_on(self.probe.get(key)).expect("GET")
    }

    /// Every key below `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.runtime.block_on(self.probe.keys(prefix)).expect("LIST")
    }

    /// The bytes of `path`'s current version under `prefix`, read through
    /// its pointer; `None` if it has none.
    pub fn file(&self, prefix: &str, path: &str) -> Option<Vec<u8>> {
        let head = self.get(&format!("{prefix}/heads/{path}"))?;
        let head: serde_json::Value = serde_json::from_slice(&head).expect("pointer JSON");
        let version = head["version"].as_str().expect("pointer's version");
        let bytes = self.get(&format!("{prefix}/versions/{version}")).expect("the version a pointer names");
        assert_eq!(Some(bytes.len() as u64), head["size"].as_u64(), "the pointer's size");
        Some(bytes)
    }
}

/// Rewrites a request head to end its connection after the answer.
pub(crate) fn close_after(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// A request's head, up to its blank line (at most 64 KiB), read a byte at
/// a time so that nothing of the body is taken; `None` if the connection
/// ends first.
pub(crate) fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) if head.len() < 64 << 10 => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// A TCP proxy on 127.0.0.1 that hands each connection to the next live
/// backend in turn and makes it carry one request, so a client's
/// requests alternate between the backends.
#[derive(Debug)]
pub struct RoundRobin {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections handed to each backend.
    pub served: Arc<Vec<AtomicUsize>>,
    stop: Arc<AtomicBool>,
}

impl RoundRobin {
    /// Starts the proxy in front of `backends`.
    pub fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let served: Arc<Vec<AtomicUsize>> = Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let (served2, stop2) = (served.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut next = 0usize;
            for client in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                // The next backend that accepts a connection.
                let backend = (0..backends.len()).find_map(|i| {
                    let n = (next + i) % backends.len();
                    TcpStream::connect_timeout(&backends[n], Duration::from_secs(2)).ok().map(|s| (n, s))
                });
                let Some((n, backend)) = backend else { continue };
                next = n + 1;
                served2[n].fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || relay(client, backend));
            }
        });
        Self { addr, served, stop }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections each backend has had.
    pub fn counts(&self) -> Vec<usize> {
        self.served.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(mut client: TcpStream, mut backend: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = backend.set_read_timeout(Some(Duration::from_secs(120)));
    let Some(head) = read_head(&mut client) else { return };
    if backend.write_all(&close_after(&head)).is_err() {
        return;
    }
    let (mut client2, mut backend2) = match (client.try_clone(), backend.try_clone()) {
        (Ok(c), Ok(b)) => (c, b),
        _ => return,
    };
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client2, &mut backend2);
        let _ = backend2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut backend, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.join();
}
