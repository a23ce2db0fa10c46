//! Literal data as protocol v2 frames (`DCL2`), as the page sends them: zstd
//! (ruzstd's fastest level, about zstd's level 1, as the CLI uses) where
//! that is smaller, raw otherwise. Most large files that change are
//! incompressible (media, archives, encrypted disks), so a frame over
//! [`SAMPLE`] bytes is compressed only when its first [`SAMPLE`] bytes
//! shrink by a tenth: such data costs a sample's compression, not a frame's.

use diffcopy_core::delta::{Codec, write_frame};
use ruzstd::encoding::{CompressionLevel, compress_to_vec};

/// Bytes compressed to decide whether a frame is worth compressing.
const SAMPLE: usize = 64 << 10;

/// Appends a frame of `bytes` for offset `offset` of the new file.
pub(crate) fn push_frame(out: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let len = bytes.len() as u32;
    if worth_compressing(bytes) {
        let packed = compress_to_vec(bytes, CompressionLevel::Fastest);
        if packed.len() < bytes.len() {
            write_frame(out, offset, len, Codec::Zstd, &packed);
            return;
        }
    }
    write_frame(out, offset, len, Codec::Raw, bytes);
}

/// Whether `bytes` may compress: short ones are simply tried; longer ones
/// if their first [`SAMPLE`] bytes shrink by a tenth.
fn worth_compressing(bytes: &[u8]) -> bool {
    bytes.len() <= SAMPLE
        || compress_to_vec(&bytes[..SAMPLE], CompressionLevel::Fastest).len() * 10 < SAMPLE * 9
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffcopy_core::delta::{FRAMES_HEADER, parse_frames};

    #[test]
    fn zeros_shrink_noise_stays_raw() {
        let zeros = vec![0u8; 300_000];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut body = FRAMES_HEADER.to_vec();
        push_frame(&mut body, 0, &zeros);
        push_frame(&mut body, 300_000, &noise);
        let frames = parse_frames(&body, 600_000).unwrap();
        assert_eq!(frames[0].codec, Codec::Zstd);
        assert!(frames[0].stored.len() < 1000);
        let mut decoded = Vec::new();
        let mut decoder = ruzstd::decoding::StreamingDecoder::new(frames[0].stored).unwrap();
        std::io::Read::read_to_end(&mut decoder, &mut decoded).unwrap();
        assert_eq!(decoded, zeros);
        assert_eq!(frames[1].codec, Codec::Raw);
        assert_eq!(frames[1].stored, &noise[..]);
    }
}
