//! Running the server on a socket until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::app;
use crate::state::AppState;

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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let graceful = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(graceful).into_future();
    tokio::pin!(server);
    let mut stop_rx2 = stop_rx.clone();
    let result = tokio::select! {
        result = &mut server => result,
        _ = async {
            let _ = stop_rx2.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => {
            tracing::warn!("requests still running {DRAIN_TIMEOUT:?} after shutdown; stopping anyway");
            Ok(())
        }
    };
    expiry.abort();
    drop(stop_rx);
    result
}

/// Removes idle upload sessions now and then.
async fn expire_uploads(state: Arc<AppState>) {
    let ttl = state.config.upload_ttl;
    let period = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || state.uploads.expire(ttl)).await;
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
