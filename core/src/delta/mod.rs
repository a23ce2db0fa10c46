//! Protocol v2's delta: the side with the new file hashes it in aligned
//! pieces, coarse to fine; the side with the old file finds those pieces
//! anywhere in its file and says what it still needs.
//!
//! 1. new side: [`BlockHashes`]: every block's weak rolling sum and seeded
//!    strong hash, and the whole file's hash;
//! 2. old side: a [`Matcher`] finds the blocks (same offset, next to a
//!    match, then one rolling pass) and answers a [`Need`]: ranges to hash
//!    finer, ranges to send as data;
//! 3. new side: the [`PieceHashes`] of the ranges to refine; 2 and 3 repeat
//!    down to the finest level;
//! 4. new side: the literal ranges, in [frames](FrameWriter);
//! 5. old side: the [`Plan`] rebuilds the new file from old ranges and
//!    literals; the file hash checks the result.
//!
//! An upload's client is the new side and the server the old side; a
//! download swaps them. Nothing here does I/O: the old file is read through
//! [`ReadAt`], and compression of literal frames is the caller's.

mod blocks;
mod error;
mod frames;
mod matcher;
mod need;
mod old;
mod params;
mod pieces;
mod plan;
mod reader;
mod strong;
mod varint;
mod weak;

pub use blocks::{BlockHash, BlockHashes, BlockHashesBuilder};
pub use error::{DeltaError, MatchError};
pub use frames::{
    Codec, FRAMES_HEADER, Frame, FrameWriter, LITERAL_BATCH, MAX_FRAME, joined, literal_batches,
    parse_frames, write_frame,
};
pub use matcher::{Matcher, SearchStats};
pub use need::Need;
pub use old::{ReadAt, SliceFile};
pub use params::{DeltaParams, Levels, MAX_LEVELS, MIN_PIECE, pieces};
pub use pieces::{PieceHashes, pieces_of};
pub use plan::{Plan, Segment, Source};
pub use strong::{BlockHasher, FileHasher, block_hash, block_match_hash, piece_hash};
pub use weak::{ANCHOR, WeakSum, anchor_len, weak_sum};
