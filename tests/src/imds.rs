//! A stand-in for EC2's instance metadata service (IMDSv2) on 127.0.0.1:
//! a session token for a `PUT`, then a role whose credentials expire soon,
//! each request for them answered with the next key pair in turn. The
//! server under test finds it through `AWS_EC2_METADATA_SERVICE_ENDPOINT`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const TOKEN: &str = "imds-session-token";
const ROLE: &str = "diffcopy-test-role";

/// The service; it stops when dropped.
#[derive(Debug)]
pub struct Imds {
    /// Where it listens.
    pub addr: SocketAddr,
    issued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Imds {
    /// Hands out `keys` (access, secret) in turn, each valid for `lifetime`.
    pub fn start(keys: &[(&str, &str)], lifetime: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the IMDS");
        let addr = listener.local_addr().expect("IMDS address");
        let keys: Vec<(String, String)> = keys.iter().map(|(a, s)| (a.to_string(), s.to_string())).collect();
        let issued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (issued2, stop2) = (issued.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(stream) = stream {
                    answer(stream, &keys, lifetime, &issued2);
                }
            }
        });
        Self { addr, issued, stop }
    }

    /// `http://ADDR`, for `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Credentials handed out so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::Relaxed)
    }
}

impl Drop for Imds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(stream: TcpStream, keys: &[(String, String)], lifetime: Duration, issued: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut token = None;
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("x-aws-ec2-metadata-token")
        {
            token = Some(value.trim().to_owned());
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let credentials = "/latest/meta-data/iam/security-credentials/";
    let (status, body) = match (method, path) {
        ("PUT", "/latest/api/token") => ("200 OK", TOKEN.to_owned()),
        ("GET", _) if token.as_deref() != Some(TOKEN) => ("401 Unauthorized", String::new()),
        ("GET", p) if p == credentials => ("200 OK", ROLE.to_owned()),
        ("GET", p) if p.strip_prefix(credentials) == Some(ROLE) => {
            let n = issued.fetch_add(1, Ordering::Relaxed);
            let (access, secret) = &keys[n % keys.len()];
            let expires =
                jiff::Timestamp::now() + jiff::SignedDuration::try_from(lifetime).expect("a lifetime");
            let body = serde_json::json!({
                "Code": "Success",
                "LastUpdated": jiff::Timestamp::now().to_string(),
                "Type": "AWS-HMAC",
                "AccessKeyId": access,
                "SecretAccessKey": secret,
                "Token": format!("session-{n}"),
                "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            });
            ("200 OK", body.to_string())
        }
        _ => ("404 Not Found", String::new()),
    };
    let _ = (&stream).write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            .as_bytes(),
    );
}
