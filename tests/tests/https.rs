//! HTTPS end to end, with certificates each test makes (rcgen): the CLI
//! uploads and downloads over TLS and HTTP/2, refuses certificates that are
//! expired, another host's or from an unknown CA (exit 7, never a fallback
//! to plain HTTP), the server refuses to start with a bad pair and reloads
//! its pair on SIGHUP without dropping connections.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diffcopy::TlsFiles;
use diffcopy_tests::tls::{Issue, TestCa, builder_trusting, client_trusting};
use diffcopy_tests::{Client, InProcessServer, Scratch, ServerProcess, data, diffcopy_bin, wait_until};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// An HTTPS server on `root` with a good certificate from `ca`.
fn https_server(root: &Path, files: TlsFiles) -> InProcessServer {
    InProcessServer::start(root, |config| config.tls = Some(files))
}

#[test]
fn cli_uploads_and_downloads_over_https_and_http2() {
    let scratch = Scratch::new("https-sync");
    let ca = TestCa::new(scratch.path(), "sync");
    let files = ca.issue(scratch.path(), "server", Issue::Good);
    let server = https_server(&scratch.path().join("root"), files);
    assert!(server.url().starts_with("https://127.0.0.1:"), "{}", server.url());
    let state = scratch.path().join("state");
    let cacert = ca.pem.to_str().unwrap();
    let source = scratch.path().join("source.bin");
    let down = scratch.path().join("down.bin");
    // Edge sizes, then a changed version that travels as a delta.
    let block = 64 * 1024;
    let mut changed = data(3 * block + 5, 1);
    for (size, seed) in [(0, 1), (1, 1), (block - 1, 1), (block, 1), (block + 1, 1), (3 * block + 5, 1)] {
        std::fs::write(&source, data(size, seed)).unwrap();
        let url = format!("{}/file.bin", server.url());
        for protocol in ["v2", "v1"] {
            let args = ["--protocol", protocol, "--cacert", cacert, source.to_str().unwrap(), &url];
            Client::new(&state).args(args).ok_json();
            assert_eq!(std::fs::read(scratch.path().join("root/file.bin")).unwrap(), data(size, seed));
            let args = ["--protocol", protocol, "--cacert", cacert, &url, down.to_str().unwrap()];
            Client::new(&state).args(args).ok_json();
            assert_eq!(std::fs::read(&down).unwrap(), data(size, seed), "download of {size} bytes");
        }
    }
    changed[block + 7] ^= 0xff;
    std::fs::write(&source, &changed).unwrap();
    let url = format!("{}/file.bin", server.url());
    let summary = Client::new(&state).args(["--cacert", cacert, source.to_str().unwrap(), &url]).ok_json();
    assert_eq!(std::fs::read(scratch.path().join("root/file.bin")).unwrap(), changed);
    assert!(summary["bytes_sent"].as_u64().unwrap() < block as u64, "{summary}");
    let stats = server.state.stats();
    assert!(stats.http2_connections > 0, "{stats:?}");
    assert_eq!(stats.http1_connections, 0, "the CLI spoke HTTP/1.1 over TLS: {stats:?}");
    assert_eq!(stats.tls_connections, stats.http2_connections, "{stats:?}");
}

#[test]
fn http2_is_negotiated_and_plain_http_stays_http1() {
    let scratch = Scratch::new("https-alpn");
    let ca = TestCa::new(scratch.path(), "alpn");
    let files = ca.issue(scratch.path(), "server", Issue::Good);
    let server = https_server(&scratch.path().join("root"), files);
    let response = client_trusting(&ca).get(format!("{}/api/v1/health", server.url())).send().unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert!(response.status().is_success());
    // A client that offers only HTTP/1.1 by ALPN gets HTTP/1.1 over TLS.
    let http1 = builder_trusting(&ca).http1_only().build().unwrap();
    let response = http1.get(format!("{}/api/v1/health", server.url())).send().unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let stats = server.state.stats();
    assert_eq!((stats.http2_connections, stats.http1_connections, stats.tls_connections), (1, 1, 2));

    let plain = InProcessServer::start(&scratch.path().join("plain"), |_| {});
    let response = diffcopy_tests::http().get(format!("{}/api/v1/health", plain.url())).send().unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(plain.state.stats().tls_connections, 0);
}

/// Uploads to `url` as a user would (no `--cacert` unless given) and
/// returns the run; the certificate must be refused with exit 7.
fn refused(state: &Path, source: &Path, url: &str, cacert: Option<&Path>, says: &str) {
    let mut client = Client::new(state);
    if let Some(ca) = cacert {
        client = client.arg("--cacert").arg(ca);
    }
    let run = client.arg(source).arg(url).run();
    assert_eq!(run.code, 7, "{url}: {}", run.stderr);
    assert!(run.stderr.contains("TLS with"), "{}", run.stderr);
    assert!(run.stderr.to_lowercase().contains(says), "expected {says:?} in: {}", run.stderr);
}

#[test]
fn the_cli_refuses_an_unknown_ca_and_another_hosts_certificate() {
    let scratch = Scratch::new("https-refused");
    let ca = TestCa::new(scratch.path(), "refused");
    let state = scratch.path().join("state");
    let source = scratch.path().join("source.bin");
    std::fs::write(&source, data(1000, 3)).unwrap();

    let good = https_server(&scratch.path().join("good"), ca.issue(scratch.path(), "good", Issue::Good));
    let url = format!("{}/f.bin", good.url());
    refused(&state, &source, &url, None, "unknown");
    let other_ca = TestCa::new(scratch.path(), "other");
    refused(&state, &source, &url, Some(&other_ca.pem), "unknown");

    let wrong =
        https_server(&scratch.path().join("wrong"), ca.issue(scratch.path(), "wrong", Issue::WrongHost));
    refused(&state, &source, &format!("{}/f.bin", wrong.url()), Some(&ca.pem), "not valid for");

    // No request reached either server's API, and nothing was written.
    for server in [&good, &wrong] {
        assert_eq!(server.state.stats().uploads_created + server.state.stats().delta_uploads_created, 0);
    }
    assert!(!scratch.path().join("good/f.bin").exists());

    // An https:// URL to a plain HTTP server is a TLS failure, not a fallback.
    let plain = InProcessServer::start(&scratch.path().join("plain"), |_| {});
    let url = format!("https://{}/f.bin", plain.addr);
    let run = Client::new(&state).arg(&source).arg(&url).run();
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(!scratch.path().join("plain/f.bin").exists());

    let run = Client::new(&state).arg("--cacert").arg(&source).arg(&source).arg(&url).run();
    assert_eq!(run.code, 2, "a --cacert without certificates: {}", run.stderr);
}

/// A TLS endpoint that only completes (or fails) handshakes, serving a
/// pair diffcopy's server would refuse to start with (an expired one, as a
/// certificate that expires while a server runs). Returns its address and
/// the server side's view of the first handshake.
fn handshake_only(files: &TlsFiles) -> (SocketAddr, std::thread::JoinHandle<Result<(), rustls::Error>>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain = CertificateDer::pem_file_iter(&files.cert).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&files.key).unwrap();
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut tcp = loop {
            match listener.accept() {
                Ok((tcp, _)) => break tcp,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("no client came: {e}"),
            }
        };
        tcp.set_nonblocking(false).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut connection = rustls::ServerConnection::new(config).unwrap();
        while connection.is_handshaking() {
            if let Err(e) = connection.complete_io(&mut tcp) {
                return Err(e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .cloned()
                    .unwrap_or(rustls::Error::General(e.to_string())));
            }
        }
        Ok(())
    });
    (addr, thread)
}

#[test]
fn the_cli_refuses_an_expired_certificate() {
    let scratch = Scratch::new("https-expired");
    let ca = TestCa::new(scratch.path(), "expired");
    let files = ca.issue(scratch.path(), "expired", Issue::Expired);
    let (addr, server_side) = handshake_only(&files);
    let source = scratch.path().join("source.bin");
    std::fs::write(&source, data(1000, 4)).unwrap();
    refused(
        &scratch.path().join("state"),
        &source,
        &format!("https://{addr}/f.bin"),
        Some(&ca.pem),
        "expired",
    );
    let handshake = server_side.join().unwrap();
    assert!(
        matches!(handshake, Err(rustls::Error::AlertReceived(_))),
        "the client must abort the handshake with an alert: {handshake:?}"
    );
}

/// `diffcopy serve ARGS` must exit 1 quickly, saying `says`.
fn refuses_to_start(root: &Path, args: &[&Path], says: &str) {
    let mut child = Command::new(diffcopy_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--root"])
        .arg(root)
        .arg("--tls-cert")
        .arg(args[0])
        .arg("--tls-key")
        .arg(args[1])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_until(Duration::from_secs(30), "the server to give up", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.unwrap().code(), Some(1), "{stderr}");
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

#[test]
fn the_server_refuses_a_missing_mismatched_expired_or_garbled_pair() {
    let scratch = Scratch::new("https-bad-pairs");
    let dir = scratch.path();
    let root = dir.join("root");
    let ca = TestCa::new(dir, "pairs");
    let good = ca.issue(dir, "good", Issue::Good);
    let other = ca.issue(dir, "other", Issue::Good);
    let expired = ca.issue(dir, "expired", Issue::Expired);
    let missing = dir.join("missing.pem");
    refuses_to_start(&root, &[&missing, &good.key], "missing.pem");
    refuses_to_start(&root, &[&good.cert, &missing], "missing.pem");
    refuses_to_start(&root, &[&good.cert, &other.key], "is not the key of the certificate");
    refuses_to_start(&root, &[&expired.cert, &expired.key], "expired 2020-12-31");
    let garbled = dir.join("garbled.pem");
    std::fs::write(&garbled, "not a certificate\n").unwrap();
    refuses_to_start(&root, &[&garbled, &good.key], "holds no PEM certificate");
    refuses_to_start(&root, &[&good.cert, &garbled], "holds no usable PEM private key");
    let unreadable = dir.join("directory.pem");
    std::fs::create_dir(&unreadable).unwrap();
    refuses_to_start(&root, &[&unreadable, &good.key], "directory.pem");

    let run = Command::new(diffcopy_bin()).args(["serve", "--tls-cert"]).arg(&good.cert).output().unwrap();
    assert_eq!(run.status.code(), Some(2), "--tls-cert without --tls-key");
}

/// The certificate (DER) a response came over.
fn served_certificate(response: &reqwest::blocking::Response) -> Vec<u8> {
    let info = response.extensions().get::<reqwest::tls::TlsInfo>().expect("TLS info");
    info.peer_certificate().expect("a peer certificate").to_vec()
}

fn der_of(files: &TlsFiles) -> Vec<u8> {
    CertificateDer::from_pem_file(&files.cert).unwrap().to_vec()
}

#[test]
fn sighup_reloads_the_pair_and_keeps_open_connections() {
    let scratch = Scratch::new("https-sighup");
    let dir = scratch.path();
    let ca = TestCa::new(dir, "sighup");
    let first = ca.issue(dir, "first", Issue::Good);
    let served = TlsFiles { cert: dir.join("served.pem"), key: dir.join("served.key") };
    std::fs::copy(&first.cert, &served.cert).unwrap();
    std::fs::copy(&first.key, &served.key).unwrap();
    let mut server = ServerProcess::start(
        &dir.join("root"),
        &["--tls-cert", served.cert.to_str().unwrap(), "--tls-key", served.key.to_str().unwrap()],
    );
    assert_eq!(server.scheme, "https");
    let client = || builder_trusting(&ca).tls_info(true).build().unwrap();
    let health = format!("{}/api/v1/health", server.url());
    let kept = client();
    assert_eq!(served_certificate(&kept.get(&health).send().unwrap()), der_of(&first));

    let hangup = |pid: u32| {
        let status = Command::new("kill").arg("-HUP").arg(pid.to_string()).status().unwrap();
        assert!(status.success());
    };
    // A bad new pair is refused; the old one stays served.
    std::fs::write(&served.cert, "garbage\n").unwrap();
    hangup(server.child.id());
    let second = ca.issue(dir, "second", Issue::Good);
    std::fs::copy(&second.cert, &served.cert).unwrap();
    std::fs::copy(&second.key, &served.key).unwrap();
    hangup(server.child.id());
    wait_until(Duration::from_secs(30), "the new certificate on a new connection", || {
        served_certificate(&client().get(&health).send().unwrap()) == der_of(&second)
    });
    // The connection opened before the reload is still the same one.
    let response = kept.get(&health).send().unwrap();
    assert!(response.status().is_success());
    assert_eq!(served_certificate(&response), der_of(&first), "the open connection was replaced");
    assert!(server.child.try_wait().unwrap().is_none(), "the server exited");
    server.kill9();
}

#[test]
fn a_stalled_handshake_is_closed_and_others_are_served() {
    let scratch = Scratch::new("https-stalled");
    let ca = TestCa::new(scratch.path(), "stalled");
    let files = ca.issue(scratch.path(), "server", Issue::Good);
    let server = InProcessServer::start(&scratch.path().join("root"), |config| {
        config.tls = Some(files);
        config.header_timeout = Duration::from_millis(500);
    });
    // Nothing at all, and the first bytes of a TLS record, then nothing.
    let silent = std::net::TcpStream::connect(server.addr).unwrap();
    let mut half = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut half, &[0x16, 0x03, 0x01, 0x02]).unwrap();

    let started = Instant::now();
    let response = client_trusting(&ca).get(format!("{}/api/v1/health", server.url())).send().unwrap();
    assert!(response.status().is_success());
    assert!(started.elapsed() < Duration::from_secs(5));

    for mut stalled in [silent, half] {
        stalled.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut rest = Vec::new();
        let closed = std::io::Read::read_to_end(&mut stalled, &mut rest);
        assert!(closed.is_ok(), "the server closed the stalled handshake: {closed:?}");
    }
    assert_eq!(server.state.stats().tls_connections, 1, "only the finished handshake counts");
}
