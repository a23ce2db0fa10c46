//! Every input under `tests/fuzz-crashers/<target>/` runs through the same
//! checks as the fuzz target of that name (`fuzz/fuzz_targets/`), without
//! libFuzzer, so what the fuzzer once found stays fixed. The directories hold
//! generated seeds (`seed-*`, written by `write_seeds` below) and whatever
//! `scripts/fuzz` copied from a fuzzer run (`crash-*`, `oom-*`, `timeout-*`).

use std::fs;
use std::path::{Path, PathBuf};

use diffcopy_core::{HashAlgorithm, Signature, SignatureBuilder};

mod fuzz_checks;

/// A fuzz target's name and its checks.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 5] = [
    ("decode_signature", fuzz_checks::decode_signature),
    ("parse_text", fuzz_checks::parse_text),
    ("diff", fuzz_checks::diff),
    ("decode_delta", fuzz_checks::decode_delta),
    ("delta_sync", fuzz_checks::delta_sync),
];

fn crashers_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-crashers").join(target)
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = crashers_dir(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_input_passes_its_target_checks() {
    for (target, check) in TARGETS {
        let files = inputs(target);
        assert!(!files.is_empty(), "no inputs in {}: the seeds are missing", crashers_dir(target).display());
        for path in files {
            let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails its checks", path.display());
        }
    }
}

#[test]
fn seeds_cover_the_success_paths() {
    // The seeds must reach past the decoders: at least one decodes, one
    // parses and one diffs, so the checks on results run at all.
    let decodes = inputs("decode_signature").iter().any(|p| Signature::decode(&fs::read(p).unwrap()).is_ok());
    assert!(decodes, "no decode_signature seed decodes");
    let parses = inputs("parse_text").iter().any(|p| {
        let data = fs::read(p).unwrap();
        let (algorithm, block_size, file_size, text) = fuzz_checks::text_params(&data).unwrap();
        diffcopy_core::parse_text(&text, algorithm, block_size, file_size).is_ok()
    });
    assert!(parses, "no parse_text seed parses");
    let diffs = inputs("diff").iter().any(|p| {
        let data = fs::read(p).unwrap();
        let (source, target) = fuzz_checks::diff_parts(&data).unwrap();
        Signature::decode(source).is_ok() && Signature::decode(target).is_ok()
    });
    assert!(diffs, "no diff seed decodes both sides");
    let delta_kinds: std::collections::BTreeSet<u8> = inputs("decode_delta")
        .iter()
        .filter_map(|p| fuzz_checks::delta_parts(&fs::read(p).unwrap()).map(|(kind, _, _)| kind))
        .collect();
    assert_eq!(delta_kinds.len(), 5, "a decode_delta seed of every message kind");
}

fn sign(algorithm: HashAlgorithm, block_size: u32, bytes: &[u8]) -> Signature {
    let mut builder = SignatureBuilder::new(algorithm, block_size).unwrap();
    builder.update(bytes);
    builder.finish()
}

/// Rewrites the `seed-*` files: `cargo test -p diffcopy-core --test
/// fuzz_regressions -- --ignored write_seeds`.
#[test]
#[ignore = "writes the seed files into the source tree"]
fn write_seeds() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = crashers_dir(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let old: Vec<u8> = (0..40u8).collect();
    let mut new = old.clone();
    new[9] = 0xFF;
    new.extend_from_slice(b"grown");

    let signatures = [
        ("sha1-empty", sign(HashAlgorithm::Sha1, 4, b"")),
        ("sha1-4x10", sign(HashAlgorithm::Sha1, 4, b"0123456789")),
        ("sha256-3x10", sign(HashAlgorithm::Sha256, 3, b"0123456789")),
        ("blake3-1x5", sign(HashAlgorithm::Blake3, 1, b"abcde")),
        ("sha1-8x40", sign(HashAlgorithm::Sha1, 8, &old)),
    ];
    for (name, signature) in &signatures {
        write("decode_signature", name, &signature.encode());
    }
    let text_seed = |signature: &Signature, text: &str| {
        let algorithm = HashAlgorithm::ALL.iter().position(|&a| a == signature.algorithm()).unwrap() as u8;
        let size = u16::try_from(signature.file_size()).unwrap().to_le_bytes();
        let mut bytes = vec![algorithm, u8::try_from(signature.block_size()).unwrap(), size[0], size[1]];
        bytes.extend_from_slice(text.as_bytes());
        bytes
    };
    for (name, signature) in &signatures {
        write("parse_text", name, &text_seed(signature, &signature.to_text()));
    }
    let sig = &signatures[1].1;
    let reversed: String =
        sig.to_text().lines().rev().map(|l| format!("{}\r\n\n", l.to_uppercase())).collect();
    write("parse_text", "sha1-4x10-reversed-crlf-upper", &text_seed(sig, &reversed));

    let pair = |source: &Signature, target: Option<&Signature>| {
        let source = source.encode();
        let mut bytes = u16::try_from(source.len()).unwrap().to_le_bytes().to_vec();
        bytes.extend_from_slice(&source);
        bytes.extend_from_slice(&target.map(Signature::encode).unwrap_or_default());
        bytes
    };
    let a = sign(HashAlgorithm::Sha1, 8, &old);
    let b = sign(HashAlgorithm::Sha1, 8, &new);
    write("diff", "same", &pair(&a, Some(&a)));
    write("diff", "grown-one-change", &pair(&b, Some(&a)));
    write("diff", "shrunk-one-change", &pair(&a, Some(&b)));
    write("diff", "no-target", &pair(&b, None));
    let c = sign(HashAlgorithm::Blake3, 3, &old);
    write("diff", "algorithm-mismatch", &pair(&a, Some(&c)));
    let d = sign(HashAlgorithm::Sha1, 3, &old[..7]);
    write("diff", "block-size-mismatch", &pair(&a, Some(&d)));
    let e = sign(HashAlgorithm::Blake3, 3, &new);
    write("diff", "blake3-changed", &pair(&e, Some(&c)));

    // Protocol v2: one valid message of each kind, and old/new pairs.
    use diffcopy_core::delta::{
        BlockHashesBuilder, Codec, DeltaParams, FrameWriter, Levels, Matcher, Need, PieceHashes, SliceFile,
    };
    let params = DeltaParams { file_size: 600, seed: 5, levels: Levels::new(&[256, 64]).unwrap() };
    let file: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut builder = BlockHashesBuilder::new(params);
    for block in file.chunks(256) {
        builder.push_block(block);
    }
    let hashes = builder.finish().unwrap();
    let kind = |kind: u8, size: u16, message: &[u8]| {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(message);
        bytes
    };
    write("decode_delta", "block-hashes", &kind(0, 0, &hashes.encode()));
    let pieces = PieceHashes::compute(&params, 1, &[256..512], &mut SliceFile(&file)).unwrap();
    write("decode_delta", "piece-hashes", &kind(1, 0, &pieces.encode()));
    let need = Need { level: 1, refine: vec![0..256], literal: vec![300..310, 512..600] };
    write("decode_delta", "need", &kind(2, 600, &need.encode()));
    let mut old = file.clone();
    old.splice(10..10, [1, 2, 3]);
    let mut matcher = Matcher::new(params, old.len() as u64);
    let mut need = matcher.blocks(&hashes, &mut SliceFile(&old), None).unwrap();
    while !need.is_final() {
        let pieces = PieceHashes::compute(&params, need.level, &need.refine, &mut SliceFile(&file)).unwrap();
        need = matcher.pieces(&pieces, &mut SliceFile(&old)).unwrap();
    }
    let plan = matcher.plan().unwrap();
    write("decode_delta", "plan", &kind(3, old.len() as u16, &plan.encode()));
    let mut frames = FrameWriter::new();
    frames.push(0, 3, Codec::Raw, b"abc");
    frames.push(100, 50, Codec::Zstd, b"not really zstd");
    write("decode_delta", "frames", &kind(4, 600, &frames.finish()));

    let sync_pair = |old: &[u8], new: &[u8]| {
        let mut bytes = u16::try_from(old.len()).unwrap().to_le_bytes().to_vec();
        bytes.extend_from_slice(old);
        bytes.extend_from_slice(new);
        bytes
    };
    write("delta_sync", "inserted", &sync_pair(&old, &file));
    write("delta_sync", "deleted", &sync_pair(&file, &old));
    write("delta_sync", "new", &sync_pair(b"", &file));
    write("delta_sync", "emptied", &sync_pair(&file, b""));
}
