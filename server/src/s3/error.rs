//! What an S3 request can fail with.

/// A failed S3 request.
#[derive(Debug)]
pub(crate) enum S3Error {
    /// No answer: connection refused, reset, timed out, TLS refused.
    Transport(reqwest::Error),
    /// The store answered with an error.
    Status {
        /// The HTTP status.
        status: u16,
        /// S3's error code (`NoSuchKey`, `PreconditionFailed`, ...), or the status's reason.
        code: String,
        /// S3's message.
        message: String,
    },
    /// An answer this client does not understand.
    Protocol(String),
    /// No credentials, or none that could be used to sign.
    Credentials(String),
}

impl S3Error {
    /// The HTTP status, for an answered request.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether a conditional write lost: `412 PreconditionFailed`.
    /// (AWS's `409 ConditionalRequestConflict`, a write racing another, is
    /// retried until one of them wins.)
    pub(crate) fn is_precondition_failed(&self) -> bool {
        matches!(self.status(), Some(412))
    }

    /// Whether the same request may well succeed later: what AWS's
    /// standard retry mode retries ([`super::retry`]), once the retries
    /// here are spent.
    pub(crate) fn is_transient(&self) -> bool {
        super::retry::retryable(self).is_some()
    }

    /// Whether the object (or the bucket) does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => {
                write!(f, "the object store did not answer: {e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            Self::Status { status, code, message } if message.is_empty() => write!(f, "{status} {code}"),
            Self::Status { status, code, message } => write!(f, "{status} {code}: {message}"),
            Self::Protocol(what) => write!(f, "the object store's answer is not understood: {what}"),
            Self::Credentials(why) => write!(f, "cannot sign requests to the object store: {why}"),
        }
    }
}

impl std::error::Error for S3Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for S3Error {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(e)
    }
}
