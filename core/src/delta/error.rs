//! What can go wrong with delta messages and the search.

use core::fmt;

/// A delta message that cannot be taken: malformed bytes, or a message
/// that does not fit the session (wrong level, wrong count, out of turn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaError {
    /// Levels that are empty, too many, not decreasing, not dividing, or too small.
    BadLevels,
    /// The input ends before the part being read.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// The input does not start with the message's magic.
    BadMagic {
        /// The message expected.
        expected: &'static str,
    },
    /// A format version this crate does not read.
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// Reserved bits that are set.
    ReservedBits,
    /// A count that does not match what the message must hold.
    BadCount {
        /// The count found.
        found: u64,
        /// The count expected.
        expected: u64,
    },
    /// Bytes after the end of the message.
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// A range that is empty, past the end of the file, or before the one ahead of it.
    BadRange {
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
    },
    /// An unknown compression codec in a literal frame.
    UnknownCodec {
        /// The codec byte.
        codec: u8,
    },
    /// A raw frame whose stored length differs from its length, or one too long.
    BadFrameLength {
        /// The frame's length.
        len: u64,
        /// Its stored length.
        stored: u64,
    },
    /// Hashes of a level the search did not ask for, or after it ended.
    OutOfTurn {
        /// The level given.
        level: u8,
        /// The level expected (`None` once the search is done).
        expected: Option<u8>,
    },
    /// The parameters of the hashes are not the session's.
    ParamsMismatch,
}

impl fmt::Display for DeltaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLevels => f.write_str(
                "levels must be 1 to 6 piece sizes of at least 64 bytes, each dividing the one before",
            ),
            Self::Truncated { what } => write!(f, "truncated inside {what}"),
            Self::BadMagic { expected } => write!(f, "not a {expected} (bad magic)"),
            Self::UnsupportedVersion { version } => write!(f, "unsupported format version {version}"),
            Self::ReservedBits => f.write_str("reserved bits are set"),
            Self::BadCount { found, expected } => write!(f, "{found} entries where {expected} are expected"),
            Self::TrailingBytes { extra } => write!(f, "{extra} bytes after the end"),
            Self::BadRange { start, end } => {
                write!(f, "range {start}..{end} is empty, outside the file or out of order")
            }
            Self::UnknownCodec { codec } => write!(f, "unknown codec {codec}"),
            Self::BadFrameLength { len, stored } => {
                write!(f, "a frame of {len} bytes cannot be stored in {stored}")
            }
            Self::OutOfTurn { level, expected: Some(expected) } => {
                write!(f, "hashes of level {level} where level {expected} is expected")
            }
            Self::OutOfTurn { level, expected: None } => {
                write!(f, "hashes of level {level} after the search ended")
            }
            Self::ParamsMismatch => f.write_str("the hashes' size, seed or levels are not the session's"),
        }
    }
}

impl core::error::Error for DeltaError {}

/// A search that failed: a message it could not take, or the old file
/// could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum MatchError<E> {
    /// The message does not fit (see [`DeltaError`]).
    Delta(DeltaError),
    /// Reading the old file failed.
    Read(E),
}

impl<E> From<DeltaError> for MatchError<E> {
    fn from(e: DeltaError) -> Self {
        Self::Delta(e)
    }
}

impl<E: fmt::Display> fmt::Display for MatchError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Delta(e) => e.fmt(f),
            Self::Read(e) => write!(f, "reading the old file: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for MatchError<E> {}
