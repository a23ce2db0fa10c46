//! Literal data in frames: where it goes in the new file, how long it is,
//! and how it is stored (raw, or compressed where that is smaller). The
//! codecs themselves live with the callers; the core only frames.
//!
//! ```text
//! "DCL2" version(1)
//! per frame: offset (u64) length (u32) codec (u8) stored length (u32) stored bytes
//! ```

use alloc::vec::Vec;
use core::ops::Range;

use super::error::DeltaError;
use super::reader::Reader;

const MAGIC: &[u8; 4] = b"DCL2";
const _: () = assert!(FRAMES_HEADER[0] == MAGIC[0] && FRAMES_HEADER[3] == MAGIC[3]);
const NAME: &str = "literal frames";
/// The most bytes one frame carries once decompressed (16 MiB).
pub const MAX_FRAME: u32 = 16 << 20;

/// How a frame's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// As they are.
    Raw,
    /// A zstd frame.
    Zstd,
    /// An LZ4 block (no frame header: the frame's length is the decoded
    /// size). The page sends these: its encoder is a tenth of zstd's size.
    Lz4,
}

impl Codec {
    fn byte(self) -> u8 {
        match self {
            Self::Raw => 0,
            Self::Zstd => 1,
            Self::Lz4 => 2,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, DeltaError> {
        match byte {
            0 => Ok(Self::Raw),
            1 => Ok(Self::Zstd),
            2 => Ok(Self::Lz4),
            codec => Err(DeltaError::UnknownCodec { codec }),
        }
    }
}

/// One frame: `len` bytes for the new file at `offset`, stored as `codec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Where the bytes go.
    pub offset: u64,
    /// How many bytes, decompressed.
    pub len: u32,
    /// How they are stored.
    pub codec: Codec,
    /// The stored bytes.
    pub stored: &'a [u8],
}

impl Frame<'_> {
    /// The new file's range the frame fills.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + u64::from(self.len)
    }
}

/// The most literal bytes the clients put in one frame and in one request:
/// large enough to amortise a request, small enough that a few in flight
/// stay well inside a client's memory budget.
pub const LITERAL_BATCH: u32 = 2 << 20;

/// `ranges` cut into frames of at most `max` bytes, grouped into requests
/// of at most about `max` bytes: what an uploading client sends, in order.
pub fn literal_batches(ranges: &[Range<u64>], max: u32) -> Vec<Vec<Range<u64>>> {
    let max = u64::from(max.max(1));
    let mut out: Vec<Vec<Range<u64>>> = Vec::new();
    let mut size = max;
    for piece in ranges.iter().flat_map(|r| super::params::pieces(r.clone(), max as u32)) {
        if size + (piece.end - piece.start) > max {
            out.push(Vec::new());
            size = 0;
        }
        size += piece.end - piece.start;
        if let Some(batch) = out.last_mut() {
            batch.push(piece);
        }
    }
    out
}

/// `ranges` (in order) with the touching ones joined: what a downloading
/// client asks for, so that a batch's pieces of one range travel as one.
pub fn joined(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r.clone()),
        }
    }
    out
}

/// The bytes a message of frames starts with.
pub const FRAMES_HEADER: [u8; 5] = [b'D', b'C', b'L', b'2', 1];

/// Appends one frame to `out` (after [`FRAMES_HEADER`] and any frames before).
pub fn write_frame(out: &mut Vec<u8>, offset: u64, len: u32, codec: Codec, stored: &[u8]) {
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.push(codec.byte());
    out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
    out.extend_from_slice(stored);
}

/// Writes frames into one message body.
#[derive(Clone, Debug)]
pub struct FrameWriter {
    out: Vec<u8>,
}

impl Default for FrameWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameWriter {
    /// An empty message.
    pub fn new() -> Self {
        Self { out: FRAMES_HEADER.to_vec() }
    }

    /// Adds a frame of `len` bytes at `offset`, stored as `stored`.
    pub fn push(&mut self, offset: u64, len: u32, codec: Codec, stored: &[u8]) {
        write_frame(&mut self.out, offset, len, codec, stored);
    }

    /// The body's length so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether no frame was added.
    pub fn is_empty(&self) -> bool {
        self.out.len() == FRAMES_HEADER.len()
    }

    /// The body.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Parses a message of frames for a file of `file_size` bytes: every frame
/// lies in the file, is at most [`MAX_FRAME`] long, and a raw one stores
/// exactly its length. Yields each frame or the first error.
pub fn parse_frames(bytes: &[u8], file_size: u64) -> Result<Vec<Frame<'_>>, DeltaError> {
    let mut r = Reader::new(bytes);
    r.header(MAGIC, NAME)?;
    let mut frames = Vec::new();
    while r.remaining() > 0 {
        let offset = r.u64(NAME)?;
        let len = r.u32(NAME)?;
        let codec = Codec::from_byte(r.u8(NAME)?)?;
        let stored_len = r.u32(NAME)?;
        let end = offset.checked_add(u64::from(len));
        if len == 0 || end.is_none_or(|end| end > file_size) {
            return Err(DeltaError::BadRange { start: offset, end: end.unwrap_or(u64::MAX) });
        }
        if len > MAX_FRAME || (codec == Codec::Raw && stored_len != len) || stored_len > MAX_FRAME {
            return Err(DeltaError::BadFrameLength { len: u64::from(len), stored: u64::from(stored_len) });
        }
        let stored = r.take(stored_len as usize, NAME)?;
        frames.push(Frame { offset, len, codec, stored });
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cut_long_ranges_and_group_short_ones() {
        let mib = 1 << 20;
        let ranges = [0..10, 20..30, 100..100 + 9 * mib];
        let cut = literal_batches(&ranges, 4 << 20);
        assert_eq!(cut.len(), 4);
        assert_eq!(cut[0], [0..10, 20..30]);
        assert_eq!(cut[3], [100 + 8 * mib..100 + 9 * mib]);
        let sizes: Vec<u64> = cut.iter().map(|b| b.iter().map(|r| r.end - r.start).sum()).collect();
        assert!(sizes.iter().all(|&s| s <= 4 << 20), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<u64>(), 9 * mib + 20);
        assert!(literal_batches(&[], LITERAL_BATCH).is_empty());
        assert_eq!(joined(&[0..5, 5..9, 10..12, 12..12]), [0..9, 10..12]);
        assert!(joined(&[]).is_empty());
    }

    #[test]
    fn frames_round_trip_and_are_checked() {
        let mut writer = FrameWriter::new();
        assert!(writer.is_empty());
        writer.push(10, 3, Codec::Raw, b"abc");
        writer.push(100, 50, Codec::Zstd, b"zz");
        let bytes = writer.finish();
        let frames = parse_frames(&bytes, 150).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].stored, b"abc");
        assert_eq!(frames[1].range(), 100..150);
        assert!(parse_frames(&bytes, 149).is_err(), "past the end of the file");
        // Cut anywhere but between frames, the message is refused.
        let first_frame_end = 5 + 17 + 3;
        for len in (0..bytes.len()).filter(|&l| l != 5 && l != first_frame_end) {
            assert!(parse_frames(&bytes[..len], 150).is_err(), "len {len}");
        }
        assert_eq!(parse_frames(&bytes[..first_frame_end], 150).unwrap().len(), 1);
        assert_eq!(parse_frames(&bytes[..5], 150), Ok(Vec::new()));
        let mut raw_lie = FrameWriter::new();
        raw_lie.push(0, 4, Codec::Raw, b"abc");
        assert!(parse_frames(&raw_lie.finish(), 10).is_err());
        let mut codec = FrameWriter::new();
        codec.push(0, 3, Codec::Raw, b"abc");
        let mut bytes = codec.finish();
        bytes[5 + 12] = 9;
        assert_eq!(parse_frames(&bytes, 10), Err(DeltaError::UnknownCodec { codec: 9 }));
    }
}
