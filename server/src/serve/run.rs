//! Running the server on a socket until shutdown.
//!
//! The accept loop is ours rather than `axum::serve`, so that every
//! connection gets a header-read timeout (a client that sends half a request
//! line cannot hold a connection forever), a TLS handshake bounded by the
//! same timeout, and shutdown drains connections gracefully with a deadline.
//!
//! Plain HTTP is HTTP/1.1. Over TLS, ALPN picks HTTP/2 or HTTP/1.1.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::limits::{H2_CONNECTION_WINDOW, H2_STREAM_WINDOW};
use crate::serve::api::app;
use crate::serve::bucket::{BucketState, bucket_app, sweep_now_and_then};
use crate::serve::memory;
use crate::serve::state::AppState;
use crate::serve::stats::Stats;
use crate::serve::tls::Tls;
use crate::serve::wire::Counted;

/// What a TLS connection reads from its socket at once, for rustls to take
/// in 4 KiB pieces.
const TLS_READ_BUFFER: usize = 256 << 10;

/// How long in-flight requests get to finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `state` on `listener` until `shutdown` completes, then lets
/// requests in flight finish (up to 10 s).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let expiry = tokio::spawn(expire_uploads(state.clone()));
    let delivering = state.hooks.clone().map(|hooks| tokio::spawn(hooks.deliver_forever()));
    let served = Accepting {
        router: app(state.clone()),
        header_timeout: state.config.header_timeout,
        tls: state.tls.clone(),
        stats: state.stats.clone(),
    };
    served.until(listener, shutdown).await;
    expiry.abort();
    delivering.inspect(tokio::task::JoinHandle::abort);
    Ok(())
}

/// Serves a bucket's `state` on `listener` until `shutdown` completes, as
/// [`run`] does a directory's.
pub async fn run_bucket(
    listener: TcpListener,
    state: Arc<BucketState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeping = tokio::spawn(sweep_now_and_then(state.store.clone()));
    let delivering = state.hooks.clone().map(|hooks| tokio::spawn(hooks.deliver_forever()));
    let served = Accepting {
        router: bucket_app(state.clone()),
        header_timeout: state.config.header_timeout,
        tls: state.tls.clone(),
        stats: state.stats.clone(),
    };
    served.until(listener, shutdown).await;
    sweeping.abort();
    delivering.inspect(tokio::task::JoinHandle::abort);
    Ok(())
}

/// The accept loop's parts, whatever the store.
struct Accepting {
    router: Router,
    header_timeout: Duration,
    tls: Option<Tls>,
    stats: Arc<Stats>,
}

impl Accepting {
    async fn until(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
        memory::limit_arenas();
        let trimming = tokio::spawn(memory::trim_when_idle(self.stats.clone()));
        let graceful = GracefulShutdown::new();
        let reload = self.tls.clone().map(|tls| tokio::spawn(tls.reload_on_sighup()));
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors and the like: wait a little, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                router: self.router.clone(),
                header_timeout: self.header_timeout,
                watcher: graceful.watcher(),
                tls: self.tls.clone(),
                stats: self.stats.clone(),
            };
            tokio::spawn(connection.serve(Counted::new(stream, self.stats.clone())));
        }
        drop(listener);
        if let Some(reload) = reload {
            reload.abort();
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
            tracing::warn!("requests still running {DRAIN_TIMEOUT:?} after shutdown; stopping anyway");
        }
        trimming.abort();
    }
}

/// What serving one accepted connection needs.
struct Connection {
    router: Router,
    header_timeout: Duration,
    /// Holds the drain open until the connection ends.
    watcher: Watcher,
    tls: Option<Tls>,
    stats: Arc<Stats>,
}

impl Connection {
    /// Serves `stream` until the client or shutdown ends it.
    async fn serve(self, stream: Counted<TcpStream>) {
        let Some(tls) = self.tls.clone() else {
            self.stats.connection(false, false);
            return self.http1(stream).await;
        };
        // rustls reads at most 4 KiB from its transport at a time: straight
        // from the socket that is four recv calls per 16 KiB record.
        let buffered = BufReader::with_capacity(TLS_READ_BUFFER, stream);
        let handshake = tokio::time::timeout(self.header_timeout, tls.acceptor().accept(buffered));
        match handshake.await {
            Ok(Ok(stream)) => {
                let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                self.stats.connection(true, http2);
                if http2 {
                    self.http2(stream).await;
                } else {
                    self.http1(stream).await;
                }
            }
            Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        }
    }

    /// HTTP/1.1 with keep-alive; the headers of each request must arrive
    /// within the header timeout.
    async fn http1(self, io: impl AsyncRead + AsyncWrite + Send + Unpin + 'static) {
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(self.router));
        if let Err(e) = self.watcher.watch(connection).await {
            tracing::debug!("connection ended: {e}");
        }
    }

    /// HTTP/2: a peer that stops answering pings within the header timeout
    /// is dropped (there is no per-request header timeout to lean on).
    async fn http2(self, io: impl AsyncRead + AsyncWrite + Send + Unpin + 'static) {
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(self.header_timeout)
            .keep_alive_timeout(self.header_timeout)
            .initial_stream_window_size(H2_STREAM_WINDOW)
            .initial_connection_window_size(H2_CONNECTION_WINDOW)
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(self.router));
        if let Err(e) = self.watcher.watch(connection).await {
            tracing::debug!("connection ended: {e}");
        }
    }
}

/// Removes idle upload sessions now and then.
async fn expire_uploads(state: Arc<AppState>) {
    let ttl = state.config.upload_ttl;
    let period = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || state.expire_uploads(ttl)).await;
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
