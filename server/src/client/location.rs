//! A sync's source or target: a local path or a file on a server.

use std::path::PathBuf;

use super::error::ClientError;

/// Where a file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local file.
    Local(PathBuf),
    /// A file on a server: `base` is `http[s]://host:port`, `path` the file's
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
    /// pdiffcopy), `https://host[:port]/path` (port 443 when omitted) or a
    /// local path.
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        Self::parse_as(text, false)
    }

    /// Parses a tree's source or target: as [`Location::parse`], and
    /// `http[s]://host[:port]/` names the server's whole root.
    pub fn parse_dir(text: &str) -> Result<Self, ClientError> {
        Self::parse_as(text, true)
    }

    fn parse_as(text: &str, dir: bool) -> Result<Self, ClientError> {
        for (scheme, default_port) in [("http", 8080), ("https", 443)] {
            let Some(rest) = text.strip_prefix(scheme).and_then(|r| r.strip_prefix("://")) else {
                continue;
            };
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            if authority.is_empty() || (path.is_empty() && !(dir && rest.contains('/'))) {
                return Err(ClientError::Usage(format!("{text}: expected {scheme}://host[:port]/path")));
            }
            // A port follows the last colon, unless that colon is inside an IPv6 literal.
            let has_port = authority.rsplit_once(':').is_some_and(|(_, port)| !port.contains(']'));
            let authority =
                if has_port { authority.to_owned() } else { format!("{authority}:{default_port}") };
            return Ok(Self::Remote { base: format!("{scheme}://{authority}"), path: path.to_owned() });
        }
        if text.contains("://") {
            return Err(ClientError::Usage(format!(
                "{text}: only http:// and https:// URLs and local paths are supported"
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
        assert_eq!(
            Location::parse("https://h/x").unwrap(),
            Location::Remote { base: "https://h:443".into(), path: "x".into() }
        );
        assert_eq!(
            Location::parse("https://[::1]:8443/x").unwrap(),
            Location::Remote { base: "https://[::1]:8443".into(), path: "x".into() }
        );
        assert_eq!(
            Location::parse("https://[::1]/x").unwrap(),
            Location::Remote { base: "https://[::1]:443".into(), path: "x".into() }
        );
        assert!(Location::parse("http://h").is_err());
        assert!(Location::parse("http://h/").is_err());
        assert_eq!(
            Location::parse_dir("http://h/").unwrap(),
            Location::Remote { base: "http://h:8080".into(), path: String::new() }
        );
        assert!(Location::parse_dir("http://h").is_err());
        assert!(Location::parse("https:///x").is_err());
        assert!(Location::parse("ftp://h/x").is_err());
    }
}
