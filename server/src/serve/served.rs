//! What the routes every store serves (the page, the token check, CORS,
//! the read side) ask of the server's state, whichever store it is over: a
//! leaf beneath `state.rs`, `bucket/` and `access.rs`.

use std::future::Future;

use crate::serve::config::ServerConfig;
use crate::serve::error::AppResult;

/// What the routes every store serves read from the server's state.
pub(crate) trait Served: Send + Sync + 'static {
    /// The settings.
    fn settings(&self) -> &ServerConfig;

    /// The path and owner of upload session `id` of either protocol, if
    /// it exists, without waiting for a request that holds it.
    fn session_scope(&self, id: &str) -> impl Future<Output = AppResult<Option<SessionScope>>> + Send;
}

/// An upload session's path and owner, as [`Served::session_scope`] reads them.
#[derive(Clone, Debug)]
pub(crate) struct SessionScope {
    pub(crate) path: String,
    /// The `sub` of the token that opened it (`None`: no token, the
    /// administrator's, or a token without `sub`).
    pub(crate) owner: Option<String>,
}
