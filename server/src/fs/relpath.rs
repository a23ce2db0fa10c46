//! Validated relative paths: the only way a client names a file.

use std::fmt;

/// The longest relative path accepted, in bytes.
const MAX_PATH_LEN: usize = 4096;
/// The longest single path segment accepted, in bytes.
const MAX_SEGMENT_LEN: usize = 255;
/// Names starting with this are the server's staging files; clients cannot name them.
pub(crate) const RESERVED_PREFIX: &str = ".diffcopy-";

/// The directory below the root where upload sessions and commits keep
/// their journals (reserved: its name starts with [`RESERVED_PREFIX`]).
pub(crate) const JOURNAL_DIR: &str = ".diffcopy-sessions";

/// A path below the server's root: `/`-separated segments, none empty, `.`
/// or `..`, none containing NUL or a backslash, none reserved for staging.
///
/// This is the first line of defence; the second is that every open goes
/// through [`Root`](crate::fs::Root), which cannot leave the root even
/// through symlinks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RelPath(String);

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathError {
    /// The path is empty.
    Empty,
    /// Longer than [`MAX_PATH_LEN`] or a segment longer than [`MAX_SEGMENT_LEN`].
    TooLong,
    /// `a//b`, a leading or a trailing `/`.
    EmptySegment,
    /// A `.` segment.
    Dot,
    /// A `..` segment.
    DotDot,
    /// A NUL byte.
    Nul,
    /// A backslash (a path separator elsewhere).
    Backslash,
    /// A segment starting with [`RESERVED_PREFIX`].
    Reserved,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the path is empty",
            Self::TooLong => "the path or one of its segments is too long",
            Self::EmptySegment => "the path has an empty segment",
            Self::Dot => "the path has a '.' segment",
            Self::DotDot => "the path has a '..' segment",
            Self::Nul => "the path contains a NUL byte",
            Self::Backslash => "the path contains a backslash",
            Self::Reserved => "names starting with .diffcopy- are reserved",
        })
    }
}

impl std::error::Error for PathError {}

impl RelPath {
    /// Validates a relative path such as `dir/file.bin` (already percent-decoded).
    pub(crate) fn parse(path: &str) -> Result<Self, PathError> {
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        if path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if path.contains('\0') {
            return Err(PathError::Nul);
        }
        if path.contains('\\') {
            return Err(PathError::Backslash);
        }
        for segment in path.split('/') {
            match segment {
                "" => return Err(PathError::EmptySegment),
                "." => return Err(PathError::Dot),
                ".." => return Err(PathError::DotDot),
                s if s.len() > MAX_SEGMENT_LEN => return Err(PathError::TooLong),
                s if s.starts_with(RESERVED_PREFIX) => return Err(PathError::Reserved),
                _ => {}
            }
        }
        Ok(Self(path.to_owned()))
    }

    /// pdiffcopy's absolute `filename` (`/a/b`) mapped below the root (`a/b`).
    /// A relative name is taken as it is.
    pub(crate) fn from_pdiffcopy(filename: &str) -> Result<Self, PathError> {
        Self::parse(filename.strip_prefix('/').unwrap_or(filename))
    }

    /// The path as given, `/`-separated.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory part (`None` for a file directly in the root).
    pub(crate) fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(dir, _)| dir)
    }

    /// The last segment.
    pub(crate) fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths_split_into_parent_and_name() {
        let p = RelPath::parse("a/b c/d.bin").unwrap();
        assert_eq!(p.parent(), Some("a/b c"));
        assert_eq!(p.file_name(), "d.bin");
        let top = RelPath::parse("..hidden..").unwrap();
        assert_eq!(top.parent(), None);
        assert_eq!(RelPath::from_pdiffcopy("/x/y").unwrap().as_str(), "x/y");
    }

    #[test]
    fn bad_paths_are_refused_with_their_reason() {
        for (path, err) in [
            ("", PathError::Empty),
            ("/abs", PathError::EmptySegment),
            ("a//b", PathError::EmptySegment),
            ("a/", PathError::EmptySegment),
            ("./a", PathError::Dot),
            ("a/../../etc/passwd", PathError::DotDot),
            ("..", PathError::DotDot),
            ("a\0b", PathError::Nul),
            ("a\\..\\b", PathError::Backslash),
            ("d/.diffcopy-x.part", PathError::Reserved),
        ] {
            assert_eq!(RelPath::parse(path), Err(err), "{path:?}");
        }
        assert_eq!(RelPath::parse(&"a".repeat(256)), Err(PathError::TooLong));
        assert_eq!(RelPath::parse(&"a/".repeat(3000)), Err(PathError::TooLong));
        assert_eq!(RelPath::from_pdiffcopy("//etc"), Err(PathError::EmptySegment));
        assert_eq!(RelPath::from_pdiffcopy("/"), Err(PathError::Empty));
    }
}
