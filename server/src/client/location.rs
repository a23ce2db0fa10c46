//! A sync's source or target: a local path or a file on a server.

use std::path::PathBuf;

use super::error::ClientError;

/// Where a file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local file.
    Local(PathBuf),
    /// A file on a server: `base` is `http://host:port`, `path` the file's
    /// path below the server's root, without the leading `/`.
    Remote {
        /// Scheme, host and port.
        base: String,
        /// The path below the server's root.
        path: String,
    },
}

impl Location {
    /// Parses `http://host[:port]/path` (port 8080 when omitted, as
    /// pdiffcopy) or a local path.
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        if let Some(rest) = text.strip_prefix("http://") {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            if authority.is_empty() || path.is_empty() {
                return Err(ClientError::Usage(format!("{text}: expected http://host[:port]/path")));
            }
            let authority =
                if authority.contains(':') { authority.to_owned() } else { format!("{authority}:8080") };
            return Ok(Self::Remote { base: format!("http://{authority}"), path: path.to_owned() });
        }
        if text.contains("://") {
            return Err(ClientError::Usage(format!(
                "{text}: only http:// URLs and local paths are supported"
            )));
        }
        Ok(Self::Local(PathBuf::from(text)))
    }

    /// Whether this is a server location.
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::Remote { .. })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::Remote { base, path } => write!(f, "{base}/{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_paths() {
        assert_eq!(
            Location::parse("http://h:9/a/b").unwrap(),
            Location::Remote { base: "http://h:9".into(), path: "a/b".into() }
        );
        assert_eq!(
            Location::parse("http://h/x").unwrap(),
            Location::Remote { base: "http://h:8080".into(), path: "x".into() }
        );
        assert_eq!(Location::parse("/tmp/x").unwrap(), Location::Local("/tmp/x".into()));
        assert!(Location::parse("http://h").is_err());
        assert!(Location::parse("https://h/x").is_err());
    }
}
