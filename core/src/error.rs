//! Error types, one per operation, each carrying the context that explains it.

use alloc::string::String;
use core::fmt;

use crate::hash::HashAlgorithm;

/// A hash algorithm name that is not supported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseAlgorithmError {
    /// The name that was given (cut to 64 characters).
    pub name: String,
}

impl ParseAlgorithmError {
    pub(crate) fn new(name: &str) -> Self {
        Self { name: name.chars().take(64).collect() }
    }
}

impl fmt::Display for ParseAlgorithmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown hash algorithm \"{}\" (expected sha1, sha256 or blake3)", self.name)
    }
}

/// Text that is not the hex form of the expected number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HexError {
    /// The text has the wrong number of digits.
    InvalidLength {
        /// Digits expected.
        expected: usize,
        /// Digits found.
        actual: usize,
    },
    /// A character that is not a hex digit.
    InvalidChar {
        /// Its position in the text.
        position: usize,
        /// The byte found there.
        byte: u8,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidLength { expected, actual } => {
                write!(f, "expected {expected} hex digits, found {actual}")
            }
            Self::InvalidChar { position, byte } => {
                write!(f, "byte {byte:#04x} at position {position} is not a hex digit")
            }
        }
    }
}

/// A signature that cannot be built as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The block size is 0 or larger than [`MAX_BLOCK_SIZE`](crate::MAX_BLOCK_SIZE).
    InvalidBlockSize {
        /// The block size given.
        block_size: u32,
    },
    /// A digest whose length does not match the signature's algorithm.
    DigestLength {
        /// The algorithm's digest length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// More digests than the file has blocks.
    TooManyDigests {
        /// The file's block count.
        block_count: u64,
    },
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidBlockSize { block_size } => {
                write!(f, "block size {block_size} is out of range (1 to {} bytes)", crate::MAX_BLOCK_SIZE)
            }
            Self::DigestLength { expected, actual } => {
                write!(f, "digest of {actual} bytes where the algorithm gives {expected}")
            }
            Self::TooManyDigests { block_count } => {
                write!(f, "more digests than the file's {block_count} blocks")
            }
        }
    }
}

/// Bytes that are not a valid binary signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends before the part that is being read.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The input does not start with [`MAGIC`](crate::MAGIC).
    BadMagic,
    /// A format version this crate does not read.
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// An unknown algorithm id.
    UnknownAlgorithm {
        /// The id found.
        id: u8,
    },
    /// Flag bits this version does not define.
    UnknownFlags {
        /// The flags found.
        flags: u16,
    },
    /// The block size is 0 or too large.
    InvalidBlockSize {
        /// The block size found.
        block_size: u32,
    },
    /// The declared block count does not match the file and block size.
    BlockCountMismatch {
        /// The count in the header.
        declared: u64,
        /// The count the file size and block size give.
        expected: u64,
    },
    /// Bytes after the last digest.
    TrailingBytes {
        /// How many.
        extra: u64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "signature truncated: needs {needed} bytes, has {available}")
            }
            Self::BadMagic => f.write_str("not a diffcopy signature (bad magic)"),
            Self::UnsupportedVersion { version } => {
                write!(f, "unsupported signature format version {version}")
            }
            Self::UnknownAlgorithm { id } => write!(f, "unknown hash algorithm id {id}"),
            Self::UnknownFlags { flags } => write!(f, "unknown signature flags {flags:#06x}"),
            Self::InvalidBlockSize { block_size } => {
                write!(f, "signature block size {block_size} is out of range")
            }
            Self::BlockCountMismatch { declared, expected } => {
                write!(f, "signature declares {declared} blocks where its sizes give {expected}")
            }
            Self::TrailingBytes { extra } => write!(f, "{extra} bytes after the last digest"),
        }
    }
}

/// A pdiffcopy text signature (`"<offset>\t<hexdigest>\n"` lines) that does
/// not describe the expected file. Lines count from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextError {
    /// The block size is out of range.
    InvalidBlockSize {
        /// The block size given.
        block_size: u32,
    },
    /// A line without a tab between offset and digest.
    MalformedLine {
        /// The line number.
        line: usize,
    },
    /// An offset that is not a decimal number.
    BadOffset {
        /// The line number.
        line: usize,
    },
    /// An offset that is not the start of a block inside the file.
    UnexpectedOffset {
        /// The line number.
        line: usize,
        /// The offset found.
        offset: u64,
    },
    /// An offset given twice.
    DuplicateOffset {
        /// The line number of the second occurrence.
        line: usize,
        /// The offset.
        offset: u64,
    },
    /// A digest that is not hex of the algorithm's length.
    BadDigest {
        /// The line number.
        line: usize,
        /// What is wrong with it.
        error: HexError,
    },
    /// A block of the file that has no line.
    MissingBlock {
        /// The block's offset.
        offset: u64,
    },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidBlockSize { block_size } => {
                write!(f, "block size {block_size} is out of range")
            }
            Self::MalformedLine { line } => write!(f, "line {line}: expected <offset>\\t<digest>"),
            Self::BadOffset { line } => write!(f, "line {line}: offset is not a decimal number"),
            Self::UnexpectedOffset { line, offset } => {
                write!(f, "line {line}: offset {offset} is not a block start inside the file")
            }
            Self::DuplicateOffset { line, offset } => {
                write!(f, "line {line}: offset {offset} appears twice")
            }
            Self::BadDigest { line, error } => write!(f, "line {line}: bad digest: {error}"),
            Self::MissingBlock { offset } => write!(f, "no digest for the block at offset {offset}"),
        }
    }
}

/// Two signatures that cannot be compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffError {
    /// The signatures use different hash algorithms.
    AlgorithmMismatch {
        /// The source's algorithm.
        source: HashAlgorithm,
        /// The target's algorithm.
        target: HashAlgorithm,
    },
    /// The signatures use different block sizes.
    BlockSizeMismatch {
        /// The source's block size.
        source: u32,
        /// The target's block size.
        target: u32,
    },
}

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlgorithmMismatch { source, target } => {
                write!(f, "cannot compare a {source} signature with a {target} one")
            }
            Self::BlockSizeMismatch { source, target } => {
                write!(f, "cannot compare signatures with block sizes {source} and {target}")
            }
        }
    }
}

// `core::error::Error` (stable since Rust 1.81), so the errors are `Error`s
// with or without `std`.
impl core::error::Error for ParseAlgorithmError {}
impl core::error::Error for HexError {}
impl core::error::Error for SignatureError {}
impl core::error::Error for DecodeError {}
impl core::error::Error for TextError {}
impl core::error::Error for DiffError {}
