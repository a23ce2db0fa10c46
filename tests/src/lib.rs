//! Shared helpers for diffcopy's end-to-end tests (the tests are in `tests/`):
//! scratch directories, servers on 127.0.0.1 (in-process or as a separate
//! `diffcopy` process), the real pdiffcopy from the project's venv, and raw
//! HTTP for requests no well-behaved client would send, file systems
//! mounted for a test (a small tmpfs, an XFS image), certificates for
//! the HTTPS tests ([`tls`]), and a real S3 server with a round-robin
//! proxy in front of several diffcopy instances ([`s3`]).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diffcopy::{AppState, ServerConfig};

pub mod faults;
pub mod imds;
pub mod receiver;
pub mod s3;
pub mod stores;
pub mod tls;
use diffcopy_core::{HashAlgorithm, Signature, SignatureBuilder};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A scratch directory, removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh, empty directory named after the test, its own even when
    /// one test body runs as several tests at once (one per store).
    pub fn new(name: &str) -> Self {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("diffcopy-e2e-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The SHA-1 signature of `bytes` in blocks of `block_size`.
pub fn sign(bytes: &[u8], block_size: u32) -> Signature {
    let mut builder = SignatureBuilder::new(HashAlgorithm::Sha1, block_size).expect("valid block size");
    builder.update(bytes);
    builder.finish()
}

/// A server running in this process on 127.0.0.1, on its own runtime.
#[derive(Debug)]
pub struct InProcessServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its shared state (counters, sessions).
    pub state: std::sync::Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessServer {
    /// Serves `root` on an ephemeral port; `tweak` adjusts the settings.
    pub fn start(root: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig { root: root.to_path_buf(), ..ServerConfig::default() };
        tweak(&mut config);
        let state = AppState::new(config).expect("open root");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener =
            runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            runtime
                .block_on(diffcopy::run(listener, served, async {
                    let _ = stopped.await;
                }))
                .expect("server ran");
        });
        Self { addr, state, stop: Some(stop), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.state.scheme(), self.addr)
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A blocking HTTP client for the tests' own requests.
pub fn http() -> reqwest::blocking::Client {
    http_builder().build().expect("HTTP client")
}

/// The builder behind [`http`]. reqwest is built without a crypto provider
/// of its own (as the diffcopy client is); this installs ring first.
pub fn http_builder() -> reqwest::blocking::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
}

/// The `diffcopy` binary that `cargo test --workspace` built beside this test.
pub fn diffcopy_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = dir.join("diffcopy");
    assert!(bin.exists(), "{} is missing: run the suite with `cargo test --workspace`", bin.display());
    bin
}

/// The file content a server has taken in: API v1 blocks and protocol v2
/// literal data (as stored).
pub fn content_received(stats: &diffcopy::StatsSnapshot) -> u64 {
    stats.bytes_received + stats.literal_bytes_received
}

/// Waits until `condition` holds, checking it every few milliseconds;
/// panics with `what` once `within` has passed.
pub fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A `diffcopy SOURCE TARGET` command: the binary this suite built, with
/// its own resume state dir, stdin closed and no terminal (so no bars).
#[derive(Debug)]
pub struct Client(Command);

/// What a finished client run left: its exit code, stdout and stderr.
#[derive(Debug)]
pub struct ClientRun {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl ClientRun {
    /// The `--json` summary on stdout (`Null` if there is none).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or(serde_json::Value::Null)
    }
}

impl Client {
    /// `diffcopy` keeping its resume state in `state_dir`.
    pub fn new(state_dir: impl AsRef<Path>) -> Self {
        let mut command = Command::new(diffcopy_bin());
        command.env("DIFFCOPY_STATE_DIR", state_dir.as_ref()).stdin(Stdio::null());
        Self(command)
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.0.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.0.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.0.env(key, value);
        self
    }

    /// Runs to the end and collects what it printed.
    pub fn run(mut self) -> ClientRun {
        let output = self.0.output().expect("run diffcopy");
        ClientRun {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs with `--json`, asserts success and returns the summary.
    pub fn ok_json(self) -> serde_json::Value {
        let described = format!("{:?}", self.0);
        let run = self.arg("--json").run();
        assert_eq!(run.code, 0, "{described}: {}", run.stderr);
        run.summary()
    }

    /// Starts it in the background, stderr piped (so a test can read or
    /// drop it), stdout discarded.
    pub fn spawn(mut self) -> Child {
        self.0.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn diffcopy")
    }
}

/// A `diffcopy serve` process, killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http` or `https`, as its start-up line says.
    pub scheme: String,
    /// The process.
    pub child: Child,
}

impl ServerProcess {
    /// Starts `diffcopy serve --listen 127.0.0.1:0 --root ROOT ARGS...` and
    /// waits for the line that names its address.
    pub fn start(root: &Path, args: &[&str]) -> Self {
        Self::start_with_env(root, args, &[])
    }

    /// [`start`](Self::start) with extra environment variables (such as
    /// `DIFFCOPY_FAULT`).
    pub fn start_with_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--root"), root.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        Self::serve(&all, env)
    }

    /// Starts `diffcopy serve --listen 127.0.0.1:0 ARGS...` with `env` and
    /// waits for the line that names its address.
    pub fn serve<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Self {
        Self::serve_with(args, |command| {
            command.envs(env.iter().copied());
        })
    }

    /// [`serve`](Self::serve) with the command set up by `setup` (its
    /// environment, say) before it starts.
    pub fn serve_with<S: AsRef<OsStr>>(args: &[S], setup: impl FnOnce(&mut Command)) -> Self {
        let mut command = Command::new(diffcopy_bin());
        command.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        setup(&mut command);
        let mut child = command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn diffcopy serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut said = String::new();
        let (scheme, addr) = loop {
            let Some(line) = lines.next() else { panic!("server exited before listening:\n{said}") };
            let line = line.expect("read stderr");
            said.push_str(&line);
            said.push('\n');
            let Some((_, url)) = line.split_once(" at ") else { continue };
            if let Some((scheme, rest)) = url.split_once("://") {
                break (
                    scheme.to_owned(),
                    rest.trim_end_matches('/').parse().expect("address in the start-up line"),
                );
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { addr, scheme, child }
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The real pdiffcopy 1.0.1 from the project's venv (scripts/setup makes it).
pub fn pdiffcopy() -> PathBuf {
    let bin = workspace().join(".venv/bin/pdiffcopy");
    assert!(bin.exists(), "{} is missing: run scripts/setup", bin.display());
    bin
}

/// Runs pdiffcopy with `args` and asserts that it succeeded.
pub fn run_pdiffcopy(args: &[&str]) {
    let output = Command::new(pdiffcopy())
        .args(args)
        .env("PDIFFCOPY_BENCHMARK", "allowed")
        .stdin(Stdio::null())
        .output()
        .expect("run pdiffcopy");
    assert!(
        output.status.success(),
        "pdiffcopy {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The head, as text.
    pub head: String,
    /// The body (de-chunked when chunked).
    pub body: Vec<u8>,
}

/// Sends `request_line` (e.g. `GET /x HTTP/1.1`) exactly as given, with
/// `headers` and `body`, on a fresh connection, and reads the whole answer.
/// For paths that a normal client would normalise or refuse to send.
pub fn raw_request(
    addr: SocketAddr,
    request_line: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut head =
        format!("{request_line}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    RawResponse { status, head, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}

/// A file system mounted for a test, unmounted on drop. (Mounting needs
/// root, as CI and the dev machines run.)
#[derive(Debug)]
pub struct Mount {
    dir: PathBuf,
    image: Option<PathBuf>,
}

impl Mount {
    /// A tmpfs of `size` (such as `6m`) at `dir`.
    pub fn tmpfs(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "mounting a tmpfs needs root (CI runs as root)");
        Self { dir: dir.to_path_buf(), image: None }
    }

    /// A fresh 320 MiB XFS image (which can clone files) mounted at `dir`
    /// through a loop device; `Err` says why not where `mkfs.xfs` or loop
    /// devices are missing.
    pub fn xfs(dir: &Path) -> Result<Self, String> {
        let image = dir.with_extension("xfs.img");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(320 << 20))
            .map_err(|e| format!("image: {e}"))?;
        let run = |program: &str, args: &[&OsStr]| -> Result<(), String> {
            let out = Command::new(program)
                .args(args)
                .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
                .output()
                .map_err(|e| format!("{program}: {e}"))?;
            out.status
                .success()
                .then_some(())
                .ok_or_else(|| format!("{program}: {}", String::from_utf8_lossy(&out.stderr)))
        };
        run("mkfs.xfs", &[OsStr::new("-q"), image.as_os_str()])?;
        run("mount", &[OsStr::new("-o"), OsStr::new("loop"), image.as_os_str(), dir.as_os_str()])?;
        Ok(Self { dir: dir.to_path_buf(), image: Some(image) })
    }

    /// Bytes the file system has in use.
    pub fn used_bytes(&self) -> u64 {
        let out = Command::new("df").args(["--output=used", "-B1"]).arg(&self.dir).output().expect("df");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df's used bytes")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        if let Some(image) = &self.image {
            let _ = std::fs::remove_file(image);
        }
    }
}

/// Appends `bytes` as one length-prefixed part (a 4-byte little-endian
/// length, then the bytes): the framing of a batch's manifest and of a
/// multi request, written here apart from the server's own.
pub fn push_part(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).expect("a part under 4 GiB").to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The body of a `POST /api/v2/multi` of `requests` (method and URI), each
/// without headers or a body.
pub fn multi_request(requests: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (method, uri) in requests {
        push_part(
            &mut out,
            serde_json::json!({"method": method, "uri": uri, "headers": {}}).to_string().as_bytes(),
        );
        push_part(&mut out, b"");
    }
    out
}

/// The answers in a multi answer's whole body, each its status and body;
/// panics unless the parts fill the body exactly.
pub fn multi_answers(all: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let next = |at: &mut usize| {
        let len = u32::from_le_bytes(all[*at..*at + 4].try_into().expect("a part's length")) as usize;
        *at += 4 + len;
        all[*at - len..*at].to_vec()
    };
    let (mut at, mut out) = (0, Vec::new());
    while at < all.len() {
        let head: serde_json::Value = serde_json::from_slice(&next(&mut at)).expect("an answer's head");
        out.push((head["status"].as_u64().expect("a status"), next(&mut at)));
    }
    assert_eq!(at, all.len(), "the answers fill the body");
    out
}
