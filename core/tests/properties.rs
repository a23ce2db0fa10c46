//! Property tests: chunking, encodings and diffs over random files.

use diffcopy_core::{HashAlgorithm, Signature, SignatureBuilder, diff, hash_block, parse_text};
use proptest::prelude::*;

fn algorithm() -> impl Strategy<Value = HashAlgorithm> {
    prop_oneof![Just(HashAlgorithm::Sha1), Just(HashAlgorithm::Sha256), Just(HashAlgorithm::Blake3)]
}

fn sign(algorithm: HashAlgorithm, block_size: u32, bytes: &[u8]) -> Signature {
    let mut builder = SignatureBuilder::new(algorithm, block_size).unwrap();
    builder.update(bytes);
    builder.finish()
}

proptest! {
    #[test]
    fn chunking_never_changes_a_signature(
        algorithm in algorithm(),
        block_size in 1u32..300,
        data in proptest::collection::vec(any::<u8>(), 0..4000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let whole = sign(algorithm, block_size, &data);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut builder = SignatureBuilder::new(algorithm, block_size).unwrap();
        let mut start = 0;
        for cut in cuts.into_iter().chain([data.len()]) {
            builder.update(&data[start..cut]);
            start = cut;
        }
        prop_assert_eq!(builder.finish(), whole.clone());
        for (i, block) in data.chunks(block_size as usize).enumerate() {
            let expected = hash_block(algorithm, block);
            prop_assert_eq!(whole.block_digest(i as u64), Some(expected.as_bytes()));
        }
    }

    #[test]
    fn binary_encoding_round_trips_and_every_truncation_fails(
        algorithm in algorithm(),
        block_size in 1u32..64,
        data in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let sig = sign(algorithm, block_size, &data);
        let bytes = sig.encode();
        prop_assert_eq!(Signature::decode(&bytes), Ok(sig));
        for len in 0..bytes.len() {
            prop_assert!(Signature::decode(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Signature::decode(&bytes);
        let mut with_magic = b"DCSG\x01\x01\0\0".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = Signature::decode(&with_magic);
    }

    #[test]
    fn text_form_round_trips_in_any_order(
        algorithm in algorithm(),
        block_size in 1u32..64,
        data in proptest::collection::vec(any::<u8>(), 0..600),
        seed in any::<u64>(),
    ) {
        let sig = sign(algorithm, block_size, &data);
        let mut lines: Vec<String> = sig.to_text().lines().map(str::to_owned).collect();
        // A deterministic shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..lines.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            lines.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        prop_assert_eq!(parse_text(&text, algorithm, block_size, data.len() as u64), Ok(sig));
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "[0-9a-f\t\n\r -]{0,200}", size in 0u64..1000) {
        let _ = parse_text(&text, HashAlgorithm::Sha1, 7, size);
    }

    /// Copying the delta's blocks from the source into the target, resized to
    /// the source's length, reproduces the source exactly.
    #[test]
    fn applying_a_delta_reproduces_the_source(
        block_size in 1u32..100,
        target in proptest::collection::vec(0u8..4, 0..2000),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4), 0..10),
        new_len in proptest::option::of(0usize..2500),
        target_exists in any::<bool>(),
    ) {
        let mut source = target.clone();
        if let Some(len) = new_len {
            source.resize(len, 3);
        }
        for (at, byte) in edits {
            if !source.is_empty() {
                let i = at.index(source.len());
                source[i] = byte;
            }
        }
        let source_sig = sign(HashAlgorithm::Sha1, block_size, &source);
        let target_sig = sign(HashAlgorithm::Sha1, block_size, &target);
        let delta = diff(&source_sig, target_exists.then_some(&target_sig)).unwrap();
        let mut rebuilt = if target_exists { target.clone() } else { Vec::new() };
        rebuilt.resize(source.len(), 0);
        for &block in delta.blocks() {
            let range = delta.layout().block_range(block).unwrap();
            let range = range.start as usize..range.end as usize;
            rebuilt[range.clone()].copy_from_slice(&source[range]);
        }
        prop_assert_eq!(&rebuilt, &source);
        prop_assert_eq!(delta.bytes_to_send() + delta.unchanged_bytes(), source.len() as u64);
        let runs = delta.runs(3);
        prop_assert_eq!(runs.iter().map(|r| r.end - r.start).sum::<u64>(), delta.blocks_to_send());
        prop_assert!(runs.iter().all(|r| r.end - r.start <= 3));
        prop_assert!((0.0..=100.0).contains(&delta.similarity_percent()));
    }
}
