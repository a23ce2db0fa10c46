//! The checks behind the fuzz targets in `fuzz/fuzz_targets/`, shared with
//! `tests/fuzz_regressions.rs` so that every committed input runs through
//! exactly what the fuzzer ran. Each function takes the raw fuzz input and
//! panics when an invariant breaks; an input the API rejects cleanly is fine.
//!
//! Input formats:
//!
//! * `decode_signature`: the bytes are an encoded signature.
//! * `parse_text`: byte 0 picks the algorithm, byte 1 the block size, bytes
//!   2..4 the file size (see [`text_params`]); the rest is the text, decoded
//!   as lossy UTF-8.
//! * `diff`: bytes 0..2 (little endian) are the length of the source's
//!   encoding, which follows; the rest is the target's encoding, or no target
//!   when empty.
//! * `decode_delta`: see [`delta_parts`]; `delta_sync`: see [`sync_parts`].

use diffcopy_core::{
    DecodeError, DiffError, HEADER_LEN, HashAlgorithm, MAX_BLOCK_SIZE, Signature, SignatureHeader, TextError,
    diff as diff_signatures, parse_text as parse_signature_text,
};

/// Block sizes picked by a block-size byte of `0xF0` or more.
const EDGE_BLOCK_SIZES: [u32; 6] = [MAX_BLOCK_SIZE, MAX_BLOCK_SIZE + 1, u32::MAX, 4096, 1 << 20, 3];
/// File sizes picked by a file-size field of `0xFF00` or more.
const EDGE_FILE_SIZES: [u64; 6] = [u64::MAX, u64::MAX - 1, 1 << 63, 1 << 40, 1 << 32, (1 << 32) + 1];

/// The algorithm, block size and file size a `parse_text` input asks for, and
/// the text: small block sizes (0 to 15, 0 being invalid) and file sizes
/// (below 512) so the text can describe every block, with a few edge values.
pub(crate) fn text_params(data: &[u8]) -> Option<(HashAlgorithm, u32, u64, String)> {
    let (head, text) = data.split_first_chunk::<4>()?;
    let algorithm = HashAlgorithm::ALL[usize::from(head[0] % 3)];
    let block_size = match head[1] {
        b @ 0..0xF0 => u32::from(b % 16),
        b => EDGE_BLOCK_SIZES[usize::from(b - 0xF0) % EDGE_BLOCK_SIZES.len()],
    };
    let file_size = match u16::from_le_bytes([head[2], head[3]]) {
        raw @ 0..0xFF00 => u64::from(raw % 512),
        raw => EDGE_FILE_SIZES[usize::from(raw & 0xFF) % EDGE_FILE_SIZES.len()],
    };
    Some((algorithm, block_size, file_size, String::from_utf8_lossy(text).into_owned()))
}

/// The source and target encodings of a `diff` input.
pub(crate) fn diff_parts(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    Some(rest.split_at(len))
}

/// `Signature::decode` and `SignatureHeader::decode` agree, never panic, and
/// whatever decodes re-encodes to the same bytes (and survives the text form).
pub(crate) fn decode_signature(data: &[u8]) {
    let header = SignatureHeader::decode(data);
    let signature = Signature::decode(data);
    if let Ok(header) = &header {
        assert_eq!(header.encode()[..], data[..HEADER_LEN], "a decoded header re-encodes to its bytes");
        assert_eq!(SignatureHeader::decode(&data[..HEADER_LEN]).as_ref(), Ok(header));
        assert!(header.encoded_len() >= HEADER_LEN as u64);
    }
    match (&header, &signature) {
        (Err(header_error), Err(error)) => {
            assert_eq!(header_error, error, "a bad header fails the signature the same way");
            let _ = error.to_string();
        }
        (Err(error), Ok(_)) => panic!("header fails ({error:?}) but the signature decodes"),
        (Ok(header), Err(error)) => {
            let _ = error.to_string();
            let (needed, available) = (header.encoded_len(), data.len() as u64);
            match *error {
                DecodeError::Truncated { needed: n, available: a } => {
                    assert_eq!((n, a), (needed, available));
                    assert!(available < needed);
                }
                DecodeError::TrailingBytes { extra } => {
                    assert_eq!(needed.checked_add(extra), Some(available))
                }
                ref other => panic!("header decodes but the signature fails with {other:?}"),
            }
        }
        (Ok(header), Ok(signature)) => {
            assert_eq!(signature.header(), header);
            assert!(signature.is_complete());
            assert_eq!(signature.digest_count(), header.block_count());
            assert_eq!(header.encoded_len(), data.len() as u64);
            assert_eq!(signature.encode(), data, "a decoded signature re-encodes to the same bytes");
            let shorter = Signature::decode(&data[..data.len() - 1]);
            assert!(matches!(shorter, Err(DecodeError::Truncated { .. })), "{shorter:?}");
            let text = signature.to_text();
            let parsed = parse_signature_text(
                &text,
                signature.algorithm(),
                signature.block_size(),
                signature.file_size(),
            );
            assert_eq!(parsed.as_ref(), Ok(signature), "the text form parses back equal");
            let _ = signature.file_digest();
        }
    }
}

/// `parse_text` never panics; what it accepts describes every block once,
/// matches the lines, and survives `to_text` and the binary encoding.
pub(crate) fn parse_text(data: &[u8]) {
    let Some((algorithm, block_size, file_size, text)) = text_params(data) else { return };
    let result = parse_signature_text(&text, algorithm, block_size, file_size);
    let signature = match result {
        Err(error) => {
            if block_size == 0 || block_size > MAX_BLOCK_SIZE {
                assert_eq!(error, TextError::InvalidBlockSize { block_size });
            }
            let _ = error.to_string();
            return;
        }
        Ok(signature) => signature,
    };
    assert!(block_size != 0 && block_size <= MAX_BLOCK_SIZE, "accepted block size {block_size}");
    assert_eq!(
        (signature.algorithm(), signature.block_size(), signature.file_size()),
        (algorithm, block_size, file_size)
    );
    assert!(signature.is_complete());
    // Every non-blank line is one block, and its digest is that block's.
    let mut lines = 0u64;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let (offset, hex) = line.split_once('\t').expect("an accepted line has a tab");
        let offset: u64 = offset.parse().expect("an accepted offset is a number");
        assert_eq!(offset % u64::from(block_size), 0);
        assert!(offset < file_size);
        let digest = signature.block_digest(offset / u64::from(block_size)).expect("block has a digest");
        assert_eq!(hex.to_ascii_lowercase(), to_hex(digest));
    }
    assert_eq!(lines, signature.header().block_count(), "one line per block");
    let again = parse_signature_text(&signature.to_text(), algorithm, block_size, file_size);
    assert_eq!(again.as_ref(), Ok(&signature), "to_text parses back equal");
    assert_eq!(Signature::decode(&signature.encode()).as_ref(), Ok(&signature));
}

/// `diff` on two decoded signatures: the right error or a delta whose blocks
/// are sorted, unique and exactly the changed ones, whose byte counts add up
/// to the file size, and whose runs cover exactly the blocks.
pub(crate) fn diff(data: &[u8]) {
    let Some((source, target)) = diff_parts(data) else { return };
    decode_signature(source);
    if !target.is_empty() {
        decode_signature(target);
    }
    let Ok(source) = Signature::decode(source) else { return };
    let target = if target.is_empty() {
        None
    } else {
        let Ok(target) = Signature::decode(target) else { return };
        Some(target)
    };
    check_diff(&source, target.as_ref());
    // Against itself nothing changes; against nothing everything does.
    let same = diff_signatures(&source, Some(&source)).expect("a signature diffs with itself");
    assert!(same.blocks().is_empty() && same.is_identical());
    assert_eq!(same.unchanged_bytes(), source.file_size());
    check_diff(&source, None);
}

fn check_diff(source: &Signature, target: Option<&Signature>) {
    let result = diff_signatures(source, target);
    if let Some(target) = target {
        if target.algorithm() != source.algorithm() {
            let expected =
                DiffError::AlgorithmMismatch { source: source.algorithm(), target: target.algorithm() };
            assert_eq!(result, Err(expected));
            return;
        }
        if target.block_size() != source.block_size() {
            let expected =
                DiffError::BlockSizeMismatch { source: source.block_size(), target: target.block_size() };
            assert_eq!(result, Err(expected));
            return;
        }
    }
    let delta = result.expect("same algorithm and block size diff");
    let file_size = source.file_size();
    let block_size = u64::from(source.block_size());
    let block_count = source.header().block_count();
    assert_eq!(delta.layout(), source.layout());
    assert_eq!(delta.total_blocks(), block_count);
    assert_eq!(delta.target_size(), target.map(Signature::file_size));

    let blocks = delta.blocks();
    assert!(blocks.windows(2).all(|w| w[0] < w[1]), "blocks sorted and unique: {blocks:?}");
    assert!(blocks.iter().all(|&i| i < block_count), "blocks inside the source");
    assert_eq!(delta.blocks_to_send(), blocks.len() as u64);

    // An independent reckoning of which blocks change and what they weigh.
    let digest_len = source.algorithm().digest_len();
    let digest_of = |signature: &Signature, i: u64| {
        let start = usize::try_from(i).unwrap() * digest_len;
        signature.digest_bytes()[start..start + digest_len].to_vec()
    };
    let len_in = |size: u64, i: u64| (i * block_size < size).then(|| (size - i * block_size).min(block_size));
    let mut expected_blocks = Vec::new();
    let mut expected_bytes = 0u64;
    for i in 0..block_count {
        let unchanged = target.is_some_and(|target| {
            len_in(target.file_size(), i) == len_in(file_size, i)
                && digest_of(target, i) == digest_of(source, i)
        });
        if !unchanged {
            expected_blocks.push(i);
            expected_bytes += len_in(file_size, i).expect("a source block has a length");
        }
    }
    assert_eq!(blocks, &expected_blocks[..], "exactly the changed blocks");
    assert_eq!(delta.bytes_to_send(), expected_bytes);
    assert!(delta.bytes_to_send() <= file_size);
    assert_eq!(delta.bytes_to_send() + delta.unchanged_bytes(), file_size);
    if target.is_none() {
        assert_eq!(delta.bytes_to_send(), file_size, "no target: everything is sent");
    }
    let similarity = delta.similarity_percent();
    assert!((0.0..=100.0).contains(&similarity), "similarity {similarity}");
    assert_eq!(delta.needs_resize(), target.map(Signature::file_size) != Some(file_size));
    assert_eq!(delta.is_identical(), blocks.is_empty() && !delta.needs_resize());

    for max in [0, 1, 2, 3, 7, u64::MAX] {
        let runs = delta.runs(max);
        let limit = max.max(1);
        let covered: Vec<u64> = runs.iter().flat_map(Clone::clone).collect();
        assert_eq!(covered, blocks, "runs of {max} cover exactly the blocks");
        for run in &runs {
            assert!(run.start < run.end && run.end - run.start <= limit, "run {run:?} with max {max}");
        }
        for pair in runs.windows(2) {
            assert!(pair[0].end <= pair[1].start, "runs ascending: {pair:?}");
            if pair[0].end == pair[1].start {
                assert_eq!(pair[0].end - pair[0].start, limit, "adjacent runs split only at the max");
            }
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The delta message a `decode_delta` input holds: byte 0 picks the kind
/// (block hashes, piece hashes, need, plan, literal frames), bytes 1..3 the
/// file size (or the old file's length, for a plan) the decoder checks
/// ranges against; the rest is the message.
pub(crate) fn delta_parts(data: &[u8]) -> Option<(u8, u64, &[u8])> {
    let (head, message) = data.split_first_chunk::<3>()?;
    Some((head[0] % 5, u64::from(u16::from_le_bytes([head[1], head[2]])), message))
}

/// Every protocol v2 decoder on arbitrary bytes: no panic, and whatever
/// decodes re-encodes to something that decodes the same.
pub(crate) fn decode_delta(data: &[u8]) {
    use diffcopy_core::delta::{BlockHashes, Need, PieceHashes, Plan, parse_frames};
    let Some((kind, size, message)) = delta_parts(data) else { return };
    match kind {
        0 => {
            if let Ok(hashes) = BlockHashes::decode(message) {
                assert_eq!(hashes.encode(), message, "block hashes re-encode to their bytes");
                assert_eq!(hashes.len(), hashes.params().block_count());
                assert_eq!(BlockHashes::encoded_len(hashes.params()), message.len() as u64);
            }
        }
        1 => {
            if let Ok(hashes) = PieceHashes::decode(message) {
                assert_eq!(hashes.encode(), message, "piece hashes re-encode to their bytes");
                assert_eq!(hashes.weak.len(), hashes.hashes.len());
            }
        }
        2 => {
            if let Ok(need) = Need::decode(message, size) {
                for list in [&need.refine, &need.literal] {
                    assert!(list.iter().all(|r| r.start < r.end && r.end <= size), "{need:?}");
                    assert!(list.windows(2).all(|w| w[0].end < w[1].start), "{need:?}");
                }
                assert_eq!(Need::decode(&need.encode(), size).as_ref(), Ok(&need));
            }
        }
        3 => {
            if let Ok(plan) = Plan::decode(message, size) {
                let covered: u64 = plan.segments().iter().map(|s| s.new.end - s.new.start).sum();
                assert_eq!(covered, plan.file_size(), "the segments cover the file");
                assert_eq!(plan.literal_bytes() + plan.copied_bytes(), plan.file_size());
                assert_eq!(Plan::decode(&plan.encode(), size).as_ref(), Ok(&plan));
            }
        }
        _ => {
            if let Ok(frames) = parse_frames(message, size) {
                for frame in frames {
                    assert!(frame.len > 0 && frame.range().end <= size, "{frame:?}");
                }
            }
        }
    }
}

/// The old and new files of a `delta_sync` input: bytes 0..2 are the old
/// file's length, which follows; the rest is the new file.
pub(crate) fn sync_parts(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    Some(rest.split_at(len))
}

/// A whole protocol v2 exchange in memory between the two halves of the
/// input (blocks of 256 bytes, pieces down to 64): the old file and the
/// plan rebuild the new file exactly, and every message survives its codec.
pub(crate) fn delta_sync(data: &[u8]) {
    use diffcopy_core::delta::{
        BlockHashes, BlockHashesBuilder, DeltaParams, Levels, Matcher, Need, PieceHashes, SliceFile,
    };
    let Some((old, new)) = sync_parts(data) else { return };
    let params =
        DeltaParams { file_size: new.len() as u64, seed: 99, levels: Levels::new(&[256, 64]).unwrap() };
    let mut builder = BlockHashesBuilder::new(params);
    for block in new.chunks(256) {
        builder.push_block(block);
    }
    let hashes = BlockHashes::decode(&builder.finish().unwrap().encode()).unwrap();
    let mut matcher = Matcher::new(params, old.len() as u64);
    let mut need = matcher.blocks(&hashes, &mut SliceFile(old), None).unwrap();
    while !need.is_final() {
        need = Need::decode(&need.encode(), params.file_size).unwrap();
        let pieces = PieceHashes::compute(&params, need.level, &need.refine, &mut SliceFile(new)).unwrap();
        need = matcher.pieces(&PieceHashes::decode(&pieces.encode()).unwrap(), &mut SliceFile(old)).unwrap();
    }
    let plan = matcher.plan().expect("the search ended");
    let rebuilt = plan.rebuild(old, |r| &new[r.start as usize..r.end as usize]);
    assert_eq!(rebuilt, new, "old + delta = new");
}
