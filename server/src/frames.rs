//! Protocol v2's literal frames as both sides write and read them: zstd
//! (level 1) where that is smaller and its head compresses, raw otherwise;
//! and the hashes of the blocks that arrive whole in them, which spare the
//! receiver reading those blocks back to check the file hash. Frames from the page may
//! be LZ4 blocks, and a download for the page is sent in LZ4 blocks (it
//! carries no zstd decoder). A frame that decodes to anything but its
//! stated length is refused.

use std::borrow::Cow;

use std::collections::HashMap;
use std::ops::Range;

use diffcopy_core::delta::{Codec, DeltaParams, Frame, block_hash, write_frame};

/// Appends a frame of `bytes` for offset `offset` of the new file: zstd
/// where that is smaller.
pub(crate) fn push_frame(out: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    push_frame_as(out, offset, bytes, Codec::Zstd);
}

/// The head of a frame that zstd tries first: unless it shrinks by a
/// sixteenth, the frame goes raw without a pass over the rest. Data that
/// does not compress (media, archives, encrypted) then costs no
/// compression: zstd's level 1 over random bytes runs at about 4.5 GB/s on
/// the machine of docs/benchmarks.md, a quarter of a second of CPU per GiB.
const ZSTD_SAMPLE: usize = 64 << 10;

/// Whether zstd is worth trying on all of `bytes`: its first
/// [`ZSTD_SAMPLE`] bytes shrink by a sixteenth (a frame no longer than
/// that is tried whole).
fn zstd_worth_trying(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(ZSTD_SAMPLE)];
    head.len() == bytes.len()
        || zstd::bulk::compress(head, 1).is_ok_and(|p| p.len() <= head.len() - head.len() / 16)
}

/// Appends a frame of `bytes` for offset `offset`, compressed with `codec`
/// where that is smaller, raw otherwise (`Codec::Raw`: always raw; zstd is
/// not tried past a head that does not compress).
pub(crate) fn push_frame_as(out: &mut Vec<u8>, offset: u64, bytes: &[u8], codec: Codec) {
    let len = bytes.len() as u32;
    let packed = match codec {
        Codec::Raw => None,
        Codec::Zstd => zstd_worth_trying(bytes).then(|| zstd::bulk::compress(bytes, 1).ok()).flatten(),
        Codec::Lz4 => Some(lz4_flex::block::compress(bytes)),
    };
    match packed {
        Some(packed) if packed.len() < bytes.len() => write_frame(out, offset, len, codec, &packed),
        _ => write_frame(out, offset, len, Codec::Raw, bytes),
    }
}

/// A frame's bytes, decompressed.
pub(crate) fn frame_bytes<'a>(frame: &Frame<'a>) -> Result<Cow<'a, [u8]>, String> {
    match frame.codec {
        Codec::Raw => Ok(Cow::Borrowed(frame.stored)),
        Codec::Zstd => {
            let bytes = zstd::bulk::decompress(frame.stored, frame.len as usize)
                .map_err(|e| format!("a zstd frame does not decode: {e}"))?;
            if bytes.len() != frame.len as usize {
                return Err(format!("a zstd frame holds {} bytes, not {}", bytes.len(), frame.len));
            }
            Ok(Cow::Owned(bytes))
        }
        Codec::Lz4 => {
            let mut bytes = vec![0; frame.len as usize];
            match lz4_flex::block::decompress_into(frame.stored, &mut bytes) {
                Ok(n) if n == bytes.len() => Ok(Cow::Owned(bytes)),
                Ok(n) => Err(format!("an LZ4 frame holds {n} bytes, not {}", frame.len)),
                Err(e) => Err(format!("an LZ4 frame does not decode: {e}")),
            }
        }
    }
}

/// The block hashes of the blocks of `params`' file that lie wholly in
/// `range`, whose bytes are `data`: (index, hash).
pub(crate) fn whole_blocks(params: &DeltaParams, range: &Range<u64>, data: &[u8]) -> Vec<(u64, u128)> {
    let block = u64::from(params.levels.block_size());
    let mut out = Vec::new();
    let mut i = range.start.div_ceil(block);
    while i * block < params.file_size {
        let (start, end) = (i * block, ((i + 1) * block).min(params.file_size));
        if end > range.end {
            break;
        }
        let bytes = &data[(start - range.start) as usize..(end - range.start) as usize];
        out.push((i, block_hash(params.seed, bytes)));
        i += 1;
    }
    out
}

/// The blocks of session data that arrived whole, by index, as a session
/// notes them: a block's hash when one data frame wrote all of it, `None`
/// once any other frame wrote any of it too (a retry, other bytes), so
/// that a hash noted is always that of the bytes the block holds.
#[derive(Debug, Default)]
pub(crate) struct Arrivals(HashMap<u64, Option<u128>>);

impl Arrivals {
    /// Notes a frame of `params`' file written at `range`, with `whole` the
    /// hashes of its blocks that lie wholly in it ([`whole_blocks`]).
    pub(crate) fn note(&mut self, params: &DeltaParams, range: &Range<u64>, whole: Vec<(u64, u128)>) {
        if range.is_empty() {
            return;
        }
        let block = u64::from(params.levels.block_size());
        let mut whole = whole.into_iter().peekable();
        for i in range.start / block..=(range.end - 1) / block {
            let hash = whole.next_if(|(at, _)| *at == i).map(|(_, hash)| hash);
            self.0.entry(i).and_modify(|noted| *noted = None).or_insert(hash);
        }
    }

    /// `known` (the search's, by block index) with the hashes of the
    /// blocks that arrived whole where it has none, for `count` blocks.
    pub(crate) fn fill(&self, known: &[Option<u128>], count: u64) -> Vec<Option<u128>> {
        (0..count)
            .map(|i| known.get(i as usize).copied().flatten().or_else(|| self.0.get(&i).copied().flatten()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffcopy_core::delta::{FRAMES_HEADER, Levels, parse_frames};

    #[test]
    fn compressible_bytes_shrink_and_everything_round_trips() {
        let zeros = vec![0u8; 100_000];
        let noise: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut body = FRAMES_HEADER.to_vec();
        push_frame(&mut body, 0, &zeros);
        push_frame(&mut body, 100_000, &noise);
        assert!(body.len() < 100_000 + 1000, "the zeros were compressed");
        let frames = parse_frames(&body, 200_000).unwrap();
        assert_eq!(frames[0].codec, Codec::Zstd);
        assert_eq!(frame_bytes(&frames[0]).unwrap(), &zeros[..]);
        assert_eq!(frame_bytes(&frames[1]).unwrap(), &noise[..]);
        let lying = Frame { len: 5, ..frames[0] };
        assert!(frame_bytes(&lying).is_err());
    }

    #[test]
    fn lz4_frames_decode_to_exactly_their_length() {
        let text = b"the page's literal data, the page's literal data, the page's literal data".repeat(50);
        let packed = lz4_flex::block::compress(&text);
        assert!(packed.len() < text.len() / 4);
        let len = text.len() as u32;
        let frame = Frame { offset: 0, len, codec: Codec::Lz4, stored: &packed };
        assert_eq!(frame_bytes(&frame).unwrap(), &text[..]);
        for wrong in [len - 1, len + 1, 1] {
            let lying = Frame { len: wrong, ..frame };
            assert!(frame_bytes(&lying).is_err(), "stated {wrong} of {len}");
        }
        for cut in [0, 1, packed.len() / 2, packed.len() - 1] {
            let torn = Frame { stored: &packed[..cut], ..frame };
            assert!(frame_bytes(&torn).is_err(), "cut at {cut}");
        }
        let garbage = Frame { stored: &[0xff; 64], ..frame };
        assert!(frame_bytes(&garbage).is_err());
    }

    #[test]
    fn each_codec_is_used_only_where_it_is_smaller_and_round_trips() {
        let text = b"a download for the page, a download for the page. ".repeat(400);
        let noise: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for codec in [Codec::Raw, Codec::Zstd, Codec::Lz4] {
            for bytes in [&text[..], &noise[..], &text[..1]] {
                let mut body = FRAMES_HEADER.to_vec();
                push_frame_as(&mut body, 3, bytes, codec);
                let frames = parse_frames(&body, 3 + bytes.len() as u64).unwrap();
                let expected = if bytes.len() == text.len() { codec } else { Codec::Raw };
                assert_eq!(frames[0].codec, expected, "{codec:?}, {} bytes", bytes.len());
                assert_eq!(frame_bytes(&frames[0]).unwrap(), bytes);
            }
        }
    }

    #[test]
    fn zstd_is_not_tried_past_a_head_that_does_not_compress() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..ZSTD_SAMPLE + 1)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let zeros = vec![0u8; 4 * ZSTD_SAMPLE];
        let codec_of = |bytes: &[u8]| {
            let mut body = FRAMES_HEADER.to_vec();
            push_frame(&mut body, 0, bytes);
            let frames = parse_frames(&body, bytes.len() as u64).unwrap();
            assert_eq!(frame_bytes(&frames[0]).unwrap(), bytes);
            frames[0].codec
        };
        // A head that does not shrink: raw, even where the rest would.
        let random_then_zeros = [&random[..ZSTD_SAMPLE], &zeros[..]].concat();
        assert_eq!(codec_of(&random_then_zeros), Codec::Raw);
        // A head that does: the whole frame is tried.
        let zeros_then_random = [&zeros[..], &random[..]].concat();
        assert_eq!(codec_of(&zeros_then_random), Codec::Zstd);
        // No longer than the head: tried whole, whatever its start.
        let short = [&random[..ZSTD_SAMPLE / 2], &zeros[..ZSTD_SAMPLE / 2]].concat();
        assert_eq!(codec_of(&short), Codec::Zstd);
        assert_eq!(codec_of(&random), Codec::Raw);
    }

    #[test]
    fn only_blocks_wholly_inside_a_run_are_hashed_on_arrival() {
        let levels = Levels::for_block(4096).unwrap();
        let params = DeltaParams { file_size: 3 * 4096 + 10, seed: 9, levels };
        let file: Vec<u8> = (0..params.file_size).map(|i| (i * 7 % 251) as u8).collect();
        let hashed = |range: Range<u64>| -> Vec<u64> {
            let data = &file[range.start as usize..range.end as usize];
            let out = whole_blocks(&params, &range, data);
            for (i, hash) in &out {
                let at = (*i * 4096) as usize;
                let end = (at + 4096).min(file.len());
                assert_eq!(*hash, block_hash(9, &file[at..end]));
            }
            out.into_iter().map(|(i, _)| i).collect()
        };
        assert_eq!(hashed(0..params.file_size), [0, 1, 2, 3]);
        assert_eq!(hashed(1..8192), [1]);
        assert_eq!(hashed(4096..8191), Vec::<u64>::new());
        assert_eq!(hashed(3 * 4096..params.file_size), [3]);
        assert_eq!(hashed(3 * 4096..params.file_size - 1), Vec::<u64>::new());
    }

    #[test]
    fn a_block_written_twice_or_in_part_is_not_taken_as_arrived() {
        let levels = Levels::for_block(4096).unwrap();
        let params = DeltaParams { file_size: 4 * 4096, seed: 9, levels };
        let mut arrivals = Arrivals::default();
        arrivals.note(&params, &(0..8192), vec![(0, 10), (1, 11)]);
        arrivals.note(&params, &(8192..10000), vec![]);
        arrivals.note(&params, &(12288..16384), vec![(3, 13)]);
        assert_eq!(arrivals.fill(&[], 4), [Some(10), Some(11), None, Some(13)]);
        // A retry of block 1, and parts of blocks 2 and 3 written again.
        arrivals.note(&params, &(4096..8192), vec![(1, 11)]);
        arrivals.note(&params, &(16000..16384), vec![]);
        arrivals.note(&params, &(10000..12288), vec![]);
        assert_eq!(arrivals.fill(&[None, None, Some(7)], 4), [Some(10), None, Some(7), None]);
    }
}
