//! A proxy in front of an S3 store that misbehaves as real stores and
//! networks do: it answers `503 SlowDown` without passing the request on,
//! passes a request on and then drops the answer (the request took effect;
//! the client never hears of it), or fails every request while the store
//! is "down". It passes the `Host` header through untouched, so SigV4
//! signatures stay valid, and it notes the access key of every request.
//!
//! Each connection carries one request (the proxy closes it after the
//! answer). Which fault a request meets is drawn from a fixed-seed
//! sequence, so a run's mix is the same from run to run.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::s3::{close_after, read_head};

/// What the proxy does to the requests it gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Percent of requests answered `503 SlowDown` (not passed on).
    pub slow_down: u32,
    /// Percent passed on whose answer is then dropped.
    pub drop_answer: u32,
    /// Every request answered `503 ServiceUnavailable`: the store is down.
    pub down: bool,
}

/// What the proxy has done.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests passed on and answered.
    pub passed: AtomicU64,
    /// Answered `503 SlowDown`.
    pub slowed: AtomicU64,
    /// Passed on, answer dropped.
    pub dropped: AtomicU64,
    /// Refused while down.
    pub refused: AtomicU64,
}

impl Counts {
    /// (passed, slowed, dropped, refused).
    pub fn get(&self) -> (u64, u64, u64, u64) {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (l(&self.passed), l(&self.slowed), l(&self.dropped), l(&self.refused))
    }
}

#[derive(Debug)]
struct Shared {
    backend: SocketAddr,
    faults: Mutex<Faults>,
    counts: Counts,
    draws: AtomicU64,
    access_keys: Mutex<BTreeSet<String>>,
}

/// The proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// A proxy to `backend` with no faults yet.
    pub fn start(backend: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            backend,
            faults: Mutex::new(Faults::default()),
            counts: Counts::default(),
            draws: AtomicU64::new(0),
            access_keys: Mutex::new(BTreeSet::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (shared2, stop2) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let shared = shared2.clone();
                std::thread::spawn(move || serve(&shared, client));
            }
        });
        Self { addr, shared, stop }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Misbehaves as `faults` says from now on.
    pub fn set(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// What it has done so far.
    pub fn counts(&self) -> &Counts {
        &self.shared.counts
    }

    /// The access keys requests were signed with.
    pub fn access_keys(&self) -> BTreeSet<String> {
        self.shared.access_keys.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A number in 0..100 from draw `n` of a fixed sequence (splitmix64).
fn percentile(n: u64) -> u32 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % 100) as u32
}

/// The request head and body, read whole (bounded).
fn read_request(client: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let head = read_head(client)?;
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if length > 256 << 20 {
        return None;
    }
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// The access key of a SigV4 `Authorization` header in `head`.
fn access_key(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let credential = text.split("Credential=").nth(1)?;
    Some(credential.split('/').next()?.to_owned())
}

fn error_answer(code: &str) -> Vec<u8> {
    let body =
        format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>injected</Message></Error>");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The store's whole answer to `head` and `body`.
fn pass_on(backend: SocketAddr, head: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut store = TcpStream::connect_timeout(&backend, Duration::from_secs(5)).ok()?;
    store.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    store.write_all(&close_after(head)).ok()?;
    store.write_all(body).ok()?;
    let mut answer = Vec::new();
    store.read_to_end(&mut answer).ok()?;
    Some(answer)
}

fn serve(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
    let Some((head, body)) = read_request(&mut client) else { return };
    if let Some(key) = access_key(&head) {
        shared.access_keys.lock().unwrap_or_else(PoisonError::into_inner).insert(key);
    }
    let faults = *shared.faults.lock().unwrap_or_else(PoisonError::into_inner);
    let draw = percentile(shared.draws.fetch_add(1, Ordering::Relaxed));
    let counts = &shared.counts;
    if faults.down {
        counts.refused.fetch_add(1, Ordering::Relaxed);
        let _ = client.write_all(&error_answer("ServiceUnavailable"));
    } else if draw < faults.slow_down {
        counts.slowed.fetch_add(1, Ordering::Relaxed);
        let _ = client.write_all(&error_answer("SlowDown"));
    } else if draw < faults.slow_down + faults.drop_answer {
        // The store does the work; the client never hears.
        if pass_on(shared.backend, &head, &body).is_some() {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    } else if let Some(answer) = pass_on(shared.backend, &head, &body) {
        counts.passed.fetch_add(1, Ordering::Relaxed);
        let _ = client.write_all(&answer);
    }
    let _ = client.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn draws_spread_over_the_percentiles() {
        let below_15 = (0..10_000).filter(|&n| percentile(n) < 15).count();
        assert!((1_300..1_700).contains(&below_15), "{below_15}");
    }
}
