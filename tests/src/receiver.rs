//! A webhook receiver on 127.0.0.1 for the hook tests: it records every
//! POST and answers 204. It can be taken down (its port then refuses
//! connections) and brought up again on the same port.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::s3::read_head;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line.
    pub line: String,
    /// `X-Diffcopy-Signature`, if sent.
    pub signature: Option<String>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// The receiver.
#[derive(Debug)]
pub struct Receiver {
    /// Where it listens (whether up or down).
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Receiver {
    /// A receiver that is up.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let mut receiver =
            Self { addr: listener.local_addr().unwrap(), received: Arc::default(), running: None };
        receiver.serve(listener);
        receiver
    }

    /// A receiver that is down: its port is known and refuses connections.
    pub fn down() -> Self {
        let mut receiver = Self::start();
        receiver.stop();
        receiver
    }

    /// `http://ADDR/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Takes it down: the port refuses connections.
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            // Wakes the accept loop, which then sees the flag and closes.
            let _ = TcpStream::connect(self.addr);
            thread.join().expect("the receiver's thread");
        }
    }

    /// Brings it up again on the same port.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "the receiver is up already");
        let listener = TcpListener::bind(self.addr).expect("bind the receiver's port again");
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, received) = (stop.clone(), self.received.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    answer(stream, &received);
                }
            }
        });
        self.running = Some((stop, thread));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one request from `stream`, records it, answers 204 and closes.
fn answer(mut stream: TcpStream, received: &Mutex<Vec<Received>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(head) = read_head(&mut stream) else { return };
    let head = String::from_utf8_lossy(&head).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    if stream.read_exact(&mut body).is_err() {
        return;
    }
    received.lock().unwrap().push(Received {
        line: head.lines().next().unwrap_or_default().to_owned(),
        signature: header("x-diffcopy-signature"),
        content_type: header("content-type"),
        body,
    });
    let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}
