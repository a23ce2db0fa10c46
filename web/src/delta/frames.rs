//! Literal data as protocol v2 frames (`DCL2`), as the page sends them: an
//! LZ4 block where that is smaller and the server reads LZ4, raw otherwise.
//! LZ4 rather than the CLI's zstd: its encoder is a tenth of the size in
//! the package (docs/browser.md#size), and it skips through incompressible
//! data (media, archives, encrypted disks) at memory speed, so no sample
//! is needed to decide.

use diffcopy_core::delta::{Codec, write_frame};

/// Appends a frame of `bytes` for offset `offset` of the new file, an LZ4
/// block if `lz4` and that is smaller.
pub(crate) fn push_frame(out: &mut Vec<u8>, offset: u64, bytes: &[u8], lz4: bool) {
    let len = bytes.len() as u32;
    if lz4 {
        let packed = lz4_flex::block::compress(bytes);
        if packed.len() < bytes.len() {
            write_frame(out, offset, len, Codec::Lz4, &packed);
            return;
        }
    }
    write_frame(out, offset, len, Codec::Raw, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffcopy_core::delta::{FRAMES_HEADER, parse_frames};

    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn zeros_shrink_noise_stays_raw() {
        let zeros = vec![0u8; 300_000];
        let noise = noise(300_000);
        let mut body = FRAMES_HEADER.to_vec();
        push_frame(&mut body, 0, &zeros, true);
        push_frame(&mut body, 300_000, &noise, true);
        let frames = parse_frames(&body, 600_000).unwrap();
        assert_eq!(frames[0].codec, Codec::Lz4);
        assert!(frames[0].stored.len() < 2000);
        let decoded = lz4_flex::block::decompress(frames[0].stored, zeros.len()).unwrap();
        assert_eq!(decoded, zeros);
        assert_eq!(frames[1].codec, Codec::Raw);
        assert_eq!(frames[1].stored, &noise[..]);
    }

    #[test]
    fn a_server_without_lz4_gets_raw_frames() {
        for len in [1, 511, 512, 513, 100_000] {
            let zeros = vec![0u8; len];
            let mut body = FRAMES_HEADER.to_vec();
            push_frame(&mut body, 7, &zeros, false);
            let frames = parse_frames(&body, 7 + len as u64).unwrap();
            assert_eq!((frames[0].codec, frames[0].stored), (Codec::Raw, &zeros[..]));
        }
    }
}
