//! Where a request goes: the URL of a bucket's object, path-style
//! (`https://HOST/BUCKET/KEY`) or virtual-hosted (`https://BUCKET.HOST/KEY`),
//! with keys percent-encoded as SigV4 signs them.

use reqwest::Url;

/// How a bucket is named in a request's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `HOST/BUCKET/KEY`: what every S3-compatible store takes.
    Path,
    /// `BUCKET.HOST/KEY`: AWS's own form (it deprecates path-style).
    Virtual,
}

impl Addressing {
    /// The default for `endpoint` (`None` for AWS): virtual-hosted for
    /// AWS's endpoints, unless the bucket's name has a dot (its host name
    /// would not match AWS's TLS certificate), path-style for others.
    pub(super) fn default_for(endpoint: Option<&Url>, bucket: &str) -> Self {
        let aws = endpoint.is_none_or(|url| url.host_str().is_some_and(|h| h.ends_with(".amazonaws.com")));
        if aws && !bucket.contains('.') { Self::Virtual } else { Self::Path }
    }
}

impl std::str::FromStr for Addressing {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "path" => Ok(Self::Path),
            "virtual" => Ok(Self::Virtual),
            other => Err(format!("{other:?} is not an addressing style (path or virtual)")),
        }
    }
}

/// A bucket's place: its endpoint, name and addressing.
#[derive(Debug, Clone)]
pub(super) struct Place {
    /// The URL up to the key: `https://HOST/BUCKET` or `https://BUCKET.HOST`.
    base: Url,
    /// `/BUCKET` for path-style, empty for virtual-hosted.
    prefix: String,
}

impl Place {
    /// `endpoint` is `http(s)://host[:port]` with no path.
    pub(crate) fn new(endpoint: &Url, bucket: &str, addressing: Addressing) -> Result<Self, String> {
        let mut base = endpoint.clone();
        let prefix = match addressing {
            Addressing::Path => format!("/{}", uri_encode(bucket, false)),
            Addressing::Virtual => {
                let host =
                    endpoint.host_str().ok_or_else(|| format!("the S3 endpoint {endpoint} has no host"))?;
                base.set_host(Some(&format!("{bucket}.{host}")))
                    .map_err(|e| format!("bucket {bucket} at {endpoint}: {e}"))?;
                String::new()
            }
        };
        Ok(Self { base, prefix })
    }

    /// The URL of object `key`, or of the bucket itself, with `query`
    /// (already encoded).
    pub(crate) fn url(&self, key: Option<&str>, query: &str) -> Url {
        let mut url = self.base.clone();
        match key {
            Some(key) => url.set_path(&format!("{}/{}", self.prefix, uri_encode(key, true))),
            None if self.prefix.is_empty() => url.set_path("/"),
            None => url.set_path(&self.prefix),
        }
        url.set_query((!query.is_empty()).then_some(query));
        url
    }
}

/// Percent-encodes `text` as SigV4 wants: everything but `A-Za-z0-9-._~`
/// (and `/` when `keep_slash`), upper-case hex.
pub(super) fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A query string as S3 signs it: pairs encoded and sorted.
pub(super) fn query_text(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> =
        query.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode("a b/c~d", true), "a%20b/c~d");
        assert_eq!(uri_encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(uri_encode("é", false), "%C3%A9");
        assert_eq!(query_text(&[("uploadId", "x/y"), ("partNumber", "2")]), "partNumber=2&uploadId=x%2Fy");
    }

    #[test]
    fn addresses_path_style_and_virtual_hosted() {
        let aws = Url::parse("https://s3.eu-west-1.amazonaws.com").unwrap();
        let local = Url::parse("http://127.0.0.1:8333").unwrap();
        assert_eq!(Addressing::default_for(None, "files"), Addressing::Virtual);
        assert_eq!(Addressing::default_for(Some(&aws), "files"), Addressing::Virtual);
        assert_eq!(Addressing::default_for(Some(&aws), "my.files"), Addressing::Path);
        assert_eq!(Addressing::default_for(Some(&local), "files"), Addressing::Path);

        let virtual_hosted = Place::new(&aws, "files", Addressing::Virtual).unwrap();
        assert_eq!(
            virtual_hosted.url(Some("a b/c"), "x=1").as_str(),
            "https://files.s3.eu-west-1.amazonaws.com/a%20b/c?x=1"
        );
        assert_eq!(virtual_hosted.url(None, "").as_str(), "https://files.s3.eu-west-1.amazonaws.com/");
        let path = Place::new(&local, "files", Addressing::Path).unwrap();
        assert_eq!(path.url(Some("k"), "").as_str(), "http://127.0.0.1:8333/files/k");
        assert_eq!(path.url(None, "list-type=2").as_str(), "http://127.0.0.1:8333/files?list-type=2");
        assert!("sideways".parse::<Addressing>().is_err());
    }
}
