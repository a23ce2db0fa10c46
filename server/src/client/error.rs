//! The client's errors, each with the exit code the program returns.

use std::fmt;

/// What went wrong in a sync.
#[derive(Debug)]
pub enum ClientError {
    /// Bad arguments or an impossible request (exit 2).
    Usage(String),
    /// The server could not be reached (exit 3).
    Connect {
        /// The URL tried.
        url: String,
        /// The cause.
        detail: String,
    },
    /// The server refused the credentials or the operation: 401/403 (exit 4).
    Denied {
        /// The server's message.
        message: String,
    },
    /// The source does not exist (exit 5).
    NotFound(String),
    /// The target changed meanwhile, or the upload conflicts: 409/412 (exit 6).
    Conflict(String),
    /// Any other server answer (exit 1).
    Server {
        /// HTTP status.
        status: u16,
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
        /// When a 503 says to try again (`Retry-After`).
        retry_after: Option<std::time::Duration>,
    },
    /// TLS failed: the server's certificate was refused (expired, another
    /// host's, an unknown CA) or the handshake broke (exit 7).
    Tls {
        /// The URL tried.
        url: String,
        /// What TLS said.
        detail: String,
    },
    /// The server's answer is not what its protocol promises: a bad
    /// signature, a short range, a block that fails its digest (exit 1).
    Protocol(String),
    /// Local I/O (exit 1).
    Local(String),
}

impl ClientError {
    /// The process exit code for this error (documented in the README).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Connect { .. } => 3,
            Self::Denied { .. } => 4,
            Self::NotFound(_) => 5,
            Self::Conflict(_) => 6,
            Self::Tls { .. } => 7,
            Self::Server { .. } | Self::Protocol(_) | Self::Local(_) => 1,
        }
    }

    /// A request that got no answer: [`Tls`](Self::Tls) when TLS refused
    /// it, else [`Connect`](Self::Connect), with the whole chain of causes.
    pub(super) fn unanswered(url: &str, err: &reqwest::Error) -> Self {
        let mut detail = err.to_string();
        let mut tls = None;
        let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
        while let Some(e) = cause {
            detail = format!("{detail}: {e}");
            tls = tls.or_else(|| rustls_error(e).map(ToString::to_string));
            cause = e.source();
        }
        match tls {
            Some(detail) => Self::Tls { url: url.to_owned(), detail },
            None => Self::Connect { url: url.to_owned(), detail },
        }
    }

    /// A local I/O error with what was being done.
    pub fn io(context: impl fmt::Display, err: impl fmt::Display) -> Self {
        Self::Local(format!("{context}: {err}"))
    }
}

/// The rustls error `err` is or wraps, looking inside `io::Error`s (whose
/// `source()` skips the error they wrap).
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m) | Self::Local(m) | Self::NotFound(m) | Self::Conflict(m) => f.write_str(m),
            Self::Protocol(m) => write!(f, "bad answer from the server: {m}"),
            Self::Connect { url, detail } => write!(f, "cannot reach {url}: {detail}"),
            Self::Tls { url, detail } => write!(
                f,
                "TLS with {url} failed: {detail} (a private CA is trusted with --cacert FILE; \
                 an http:// server does not speak https://)"
            ),
            Self::Denied { message } => write!(f, "the server refused: {message}"),
            Self::Server { status, code, message, .. } => {
                write!(f, "server error {status} {code}: {message}")
            }
        }
    }
}

impl std::error::Error for ClientError {}
