//! The limits a server enforces and a client checks before it asks: block
//! sizes and the number of blocks one file may have; and the HTTP/2 receive
//! windows both sides open (the server receives uploads, the client
//! downloads).

use core::fmt;

use diffcopy_core::SignatureHeader;

/// The smallest block size (4 KiB).
pub const MIN_BLOCK_SIZE: u32 = 4 << 10;
/// The largest block size (64 MiB).
pub const MAX_BLOCK_SIZE: u32 = 64 << 20;
/// The default block size (1 MiB), as pdiffcopy's.
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// The most blocks one signature or upload may have (2^24: 320 MiB of SHA-1
/// digests held in memory at worst). Larger files need larger blocks.
pub const MAX_BLOCKS: u64 = 1 << 24;

/// An HTTP/2 stream's receive window: a 1 MiB block or a 2 MiB data range,
/// and the next, without waiting for a window update (h2's default is 64 KiB).
pub const H2_STREAM_WINDOW: u32 = 4 << 20;
/// An HTTP/2 connection's receive window: several streams' worth.
pub const H2_CONNECTION_WINDOW: u32 = 16 << 20;

/// A block size or block count outside the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitError {
    /// The block size is outside [`MIN_BLOCK_SIZE`]`..=`[`MAX_BLOCK_SIZE`].
    BlockSize {
        /// The block size asked for.
        block_size: u32,
    },
    /// The file would have more than [`MAX_BLOCKS`] blocks.
    TooManyBlocks {
        /// The blocks it would have.
        blocks: u64,
        /// At this block size.
        block_size: u32,
    },
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BlockSize { block_size } => write!(
                f,
                "block size {block_size} is outside {} KiB to {} MiB",
                MIN_BLOCK_SIZE >> 10,
                MAX_BLOCK_SIZE >> 20
            ),
            Self::TooManyBlocks { blocks, block_size } => write!(
                f,
                "{blocks} blocks of {block_size} bytes is more than {MAX_BLOCKS}; use a larger block size"
            ),
        }
    }
}

impl std::error::Error for LimitError {}

/// Checks a block size against [`MIN_BLOCK_SIZE`] and [`MAX_BLOCK_SIZE`].
pub fn check_block_size(block_size: u32) -> Result<(), LimitError> {
    if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(LimitError::BlockSize { block_size });
    }
    Ok(())
}

/// Refuses a file that would have more than [`MAX_BLOCKS`] blocks.
pub fn check_block_count(header: &SignatureHeader) -> Result<(), LimitError> {
    if header.block_count() > MAX_BLOCKS {
        return Err(LimitError::TooManyBlocks {
            blocks: header.block_count(),
            block_size: header.block_size(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffcopy_core::HashAlgorithm;

    #[test]
    fn block_sizes_at_the_edges() {
        assert!(check_block_size(MIN_BLOCK_SIZE - 1).is_err());
        assert!(check_block_size(MIN_BLOCK_SIZE).is_ok());
        assert!(check_block_size(MAX_BLOCK_SIZE).is_ok());
        assert_eq!(
            check_block_size(MAX_BLOCK_SIZE + 1).unwrap_err().to_string(),
            "block size 67108865 is outside 4 KiB to 64 MiB"
        );
    }

    #[test]
    fn block_counts_at_the_edge() {
        let at = |size| SignatureHeader::new(HashAlgorithm::Sha1, MIN_BLOCK_SIZE, size).unwrap();
        let limit = MAX_BLOCKS * u64::from(MIN_BLOCK_SIZE);
        assert!(check_block_count(&at(limit)).is_ok());
        assert!(matches!(
            check_block_count(&at(limit + 1)),
            Err(LimitError::TooManyBlocks { blocks, .. }) if blocks == MAX_BLOCKS + 1
        ));
    }
}
