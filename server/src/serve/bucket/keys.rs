//! Where everything lives in the bucket, below the server's prefix:
//!
//! ```text
//! heads/<path>                   the file's pointer: its version (JSON), swapped with If-Match
//! versions/<version>             a version's bytes, immutable
//! versions/<version>.hashes      its protocol v2 block hashes (the upload's level-0 message)
//! superseded/<version>           a replaced version, removed after the grace period
//! sessions/<id>/open             an upload as opened (JSON)
//! sessions/<id>/round/<n>        the hashes message of search round n
//! sessions/<id>/searched         the search's outcome: plan, file hash, known block hashes
//! sessions/<id>/data/<a>-<b>     literal bytes a..b of the new file
//! hooks/<id>                     a webhook delivery waiting to be sent (JSON)
//! ```

use std::ops::Range;

/// The key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys below `prefix` (`""` for the bucket's top; a `/` is added).
    pub(crate) fn new(prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Self { prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}/") } }
    }

    pub(crate) fn head(&self, path: &str) -> String {
        format!("{}heads/{path}", self.prefix)
    }

    pub(crate) fn version(&self, version: &str) -> String {
        format!("{}versions/{version}", self.prefix)
    }

    pub(crate) fn hashes(&self, version: &str) -> String {
        format!("{}versions/{version}.hashes", self.prefix)
    }

    pub(super) fn superseded_prefix(&self) -> String {
        format!("{}superseded/", self.prefix)
    }

    pub(super) fn superseded(&self, version: &str) -> String {
        format!("{}{version}", self.superseded_prefix())
    }

    pub(crate) fn hooks(&self) -> String {
        format!("{}hooks/", self.prefix)
    }

    pub(crate) fn hook(&self, id: &str) -> String {
        format!("{}{id}", self.hooks())
    }

    pub(crate) fn sessions(&self) -> String {
        format!("{}sessions/", self.prefix)
    }

    pub(crate) fn session(&self, id: &str) -> String {
        format!("{}{id}/", self.sessions())
    }

    pub(crate) fn opened(&self, id: &str) -> String {
        format!("{}open", self.session(id))
    }

    pub(crate) fn rounds(&self, id: &str) -> String {
        format!("{}round/", self.session(id))
    }

    pub(crate) fn round(&self, id: &str, n: usize) -> String {
        format!("{}{n:04}", self.rounds(id))
    }

    pub(crate) fn searched(&self, id: &str) -> String {
        format!("{}searched", self.session(id))
    }

    /// Present while a commit of the session runs: data is refused.
    pub(crate) fn committing(&self, id: &str) -> String {
        format!("{}committing", self.session(id))
    }

    pub(super) fn data_prefix(&self, id: &str) -> String {
        format!("{}data/", self.session(id))
    }

    pub(crate) fn data(&self, id: &str, range: &Range<u64>) -> String {
        format!("{}{:020}-{:020}", self.data_prefix(id), range.start, range.end)
    }
}

/// The range a data key names (the part after [`Keys::data_prefix`]).
pub(super) fn data_range(name: &str) -> Option<Range<u64>> {
    let (a, b) = name.split_once('-')?;
    let (start, end) = (a.parse().ok()?, b.parse().ok()?);
    (start < end).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sit_below_the_prefix_and_data_keys_parse_back() {
        let keys = Keys::new("/team/files/");
        assert_eq!(keys.head("a/b.bin"), "team/files/heads/a/b.bin");
        assert_eq!(Keys::new("").version("v1"), "versions/v1");
        let data = keys.data("0123", &(5..4096));
        let name = data.strip_prefix(&keys.data_prefix("0123")).unwrap();
        assert_eq!(data_range(name), Some(5..4096));
        assert_eq!(data_range("00-00"), None);
        assert_eq!(data_range("x"), None);
        // Zero-padded: key order is offset order.
        assert!(keys.data("i", &(9..10)) < keys.data("i", &(10..11)));
    }
}
