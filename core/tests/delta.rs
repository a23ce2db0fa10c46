//! Protocol v2's delta, run whole in memory: both sides' messages go
//! through their encodings, the old side's plan rebuilds the new file, and
//! the file hash checks it. Property tests over random edits, then the
//! bytes each edit pattern costs.

use std::ops::Range;

use diffcopy_core::delta::{
    BlockHashes, BlockHashesBuilder, DeltaParams, FileHasher, Levels, Matcher, Need, PieceHashes, Plan,
    SearchStats, SliceFile, block_hash, pieces,
};
use proptest::prelude::*;

/// What one delta cost: bytes each way and the literal data.
#[derive(Debug, Default)]
struct Traffic {
    /// Hash messages, new side to old.
    hashes: u64,
    /// Need messages, old side to new.
    needs: u64,
    /// Literal bytes (uncompressed).
    literal: u64,
    rounds: u32,
}

impl Traffic {
    fn total(&self) -> u64 {
        self.hashes + self.needs + self.literal
    }
}

fn block_hashes(params: DeltaParams, new: &[u8]) -> BlockHashes {
    let mut builder = BlockHashesBuilder::new(params);
    for block in new.chunks(params.levels.block_size() as usize) {
        builder.push_block(block);
    }
    builder.finish().unwrap()
}

fn file_hash(params: &DeltaParams, bytes: &[u8]) -> u128 {
    let mut hasher = FileHasher::new(params.seed, params.file_size, params.levels.block_size());
    for block in bytes.chunks(params.levels.block_size() as usize) {
        hasher.push(block_hash(params.seed, block));
    }
    hasher.finish()
}

/// The whole exchange; returns the rebuilt file, the plan and what it cost.
fn sync(old: &[u8], new: &[u8], levels: &[u32], aligned: bool) -> (Vec<u8>, Plan, Traffic, SearchStats) {
    let params =
        DeltaParams { file_size: new.len() as u64, seed: 0x5eed, levels: Levels::new(levels).unwrap() };
    let mut traffic = Traffic::default();
    let sent = block_hashes(params, new).encode();
    traffic.hashes += sent.len() as u64;
    let received = BlockHashes::decode(&sent).unwrap();
    let old_blocks: Vec<u128> =
        old.chunks(params.levels.block_size() as usize).map(|b| block_hash(params.seed, b)).collect();
    let mut matcher = Matcher::new(params, old.len() as u64);
    let mut need =
        matcher.blocks(&received, &mut SliceFile(old), aligned.then_some(&old_blocks[..])).unwrap();
    let mut literal: Vec<Range<u64>> = Vec::new();
    loop {
        traffic.rounds += 1;
        let wire = need.encode();
        traffic.needs += wire.len() as u64;
        let need_seen = Need::decode(&wire, params.file_size).unwrap();
        assert_eq!(need_seen, need);
        literal.extend(need_seen.literal.iter().cloned());
        if need_seen.is_final() {
            break;
        }
        let hashes =
            PieceHashes::compute(&params, need_seen.level, &need_seen.refine, &mut SliceFile(new)).unwrap();
        let wire = hashes.encode();
        traffic.hashes += wire.len() as u64;
        need = matcher.pieces(&PieceHashes::decode(&wire).unwrap(), &mut SliceFile(old)).unwrap();
    }
    let plan = matcher.plan().expect("the search is over");
    let block = params.levels.block_size() as usize;
    for (i, known) in matcher.known_block_hashes().into_iter().enumerate() {
        if let Some(hash) = known {
            let expected = block_hash(params.seed, &new[i * block..new.len().min((i + 1) * block)]);
            assert_eq!(hash, expected, "the known hash of block {i} is the new block's");
        }
    }
    literal.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in literal {
        match merged.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => merged.push(r),
        }
    }
    assert_eq!(
        plan.literal_ranges().collect::<Vec<_>>(),
        merged,
        "the needs asked for exactly the plan's literals"
    );
    traffic.literal = plan.literal_bytes();
    let rebuilt = plan.rebuild(old, |r| &new[r.start as usize..r.end as usize]);
    assert_eq!(file_hash(&params, &rebuilt), received.file_hash(), "the file hash checks the result");
    println!("{} -> {} bytes: {traffic:?} {:?}", old.len(), new.len(), matcher.stats());
    (rebuilt, plan, traffic, matcher.stats())
}

/// Deterministic incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[derive(Clone, Debug)]
enum Edit {
    Insert { at: prop::sample::Index, len: usize, seed: u64 },
    Delete { at: prop::sample::Index, len: usize },
    Overwrite { at: prop::sample::Index, len: usize, seed: u64 },
    Move { from: prop::sample::Index, len: usize, to: prop::sample::Index },
    Truncate { at: prop::sample::Index },
    Append { len: usize, seed: u64 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1usize..3000, any::<u64>()).prop_map(|(at, len, seed)| Edit::Insert {
            at,
            len,
            seed
        }),
        (any::<prop::sample::Index>(), 1usize..3000).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<prop::sample::Index>(), 1usize..5000, any::<u64>())
            .prop_map(|(at, len, seed)| Edit::Overwrite { at, len, seed }),
        (any::<prop::sample::Index>(), 1usize..20_000, any::<prop::sample::Index>())
            .prop_map(|(from, len, to)| Edit::Move { from, len, to }),
        any::<prop::sample::Index>().prop_map(|at| Edit::Truncate { at }),
        (1usize..9000, any::<u64>()).prop_map(|(len, seed)| Edit::Append { len, seed }),
    ]
}

fn apply(data: &mut Vec<u8>, edit: &Edit) {
    let at = |i: &prop::sample::Index, len: usize| i.index(len + 1);
    match edit {
        Edit::Insert { at: i, len, seed } => {
            let p = at(i, data.len());
            data.splice(p..p, noise(*len, *seed));
        }
        Edit::Delete { at: i, len } => {
            let p = at(i, data.len());
            data.drain(p..(p + len).min(data.len()));
        }
        Edit::Overwrite { at: i, len, seed } => {
            let p = at(i, data.len());
            let end = (p + len).min(data.len());
            data[p..end].copy_from_slice(&noise(end - p, *seed));
        }
        Edit::Move { from, len, to } => {
            let p = at(from, data.len());
            let taken: Vec<u8> = data.drain(p..(p + len).min(data.len())).collect();
            let q = at(to, data.len());
            data.splice(q..q, taken);
        }
        Edit::Truncate { at: i } => {
            let p = at(i, data.len());
            data.truncate(p);
        }
        Edit::Append { len, seed } => data.extend(noise(*len, *seed)),
    }
}

fn levels() -> impl Strategy<Value = Vec<u32>> {
    prop_oneof![
        Just(vec![4096, 512, 64]),
        Just(vec![4096]),
        Just(vec![16384, 1024, 128]),
        Just(vec![1000, 100]),
        Just(vec![65536, 4096, 512])
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever the edits, the old file and the delta rebuild the new file
    /// exactly, in either direction.
    #[test]
    fn old_plus_delta_is_new(
        size in 0usize..200_000,
        seed in any::<u64>(),
        edits in proptest::collection::vec(edit(), 0..8),
        levels in levels(),
        aligned in any::<bool>(),
    ) {
        let old = noise(size, seed);
        let mut new = old.clone();
        for e in &edits {
            apply(&mut new, e);
        }
        let (rebuilt, _, _, _) = sync(&old, &new, &levels, aligned);
        prop_assert!(rebuilt == new, "new from old");
        let (rebuilt, _, _, _) = sync(&new, &old, &levels, aligned);
        prop_assert!(rebuilt == old, "old from new");
    }

    /// Low-entropy data (runs and repeats) is where weak sums collide.
    #[test]
    fn repetitive_data_rebuilds_too(
        pattern in proptest::collection::vec(any::<u8>(), 1..8),
        size in 0usize..60_000,
        edits in proptest::collection::vec(edit(), 0..4),
    ) {
        let old: Vec<u8> = pattern.iter().copied().cycle().take(size).collect();
        let mut new = old.clone();
        for e in &edits {
            apply(&mut new, e);
        }
        let (rebuilt, _, _, _) = sync(&old, &new, &[4096, 512, 64], false);
        prop_assert!(rebuilt == new);
    }
}

const B: usize = 64 << 10;
const LEVELS: [u32; 4] = [65536, 4096, 512, 64];

#[test]
fn edge_sizes() {
    let base = noise(3 * B + 17, 1);
    for (old_len, new_len) in [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (B - 1, B),
        (B, B - 1),
        (B, B + 1),
        (B + 1, B),
        (3 * B + 17, B),
        (B, 3 * B + 17),
    ] {
        let old = &base[..old_len];
        let new = &base[..new_len];
        let (rebuilt, plan, traffic, _) = sync(old, new, &LEVELS, true);
        assert_eq!(rebuilt, new, "{old_len} -> {new_len}");
        let common = old_len.min(new_len) as u64;
        assert!(
            traffic.literal <= new_len as u64 - common + 64,
            "{old_len} -> {new_len}: {traffic:?} {plan:?}"
        );
    }
}

#[test]
fn unchanged_sends_only_the_block_hashes() {
    let old = noise(64 * B, 2);
    let (_, plan, traffic, stats) = sync(&old, &old, &LEVELS, true);
    assert!(plan.is_identity(old.len() as u64));
    assert_eq!(traffic.literal, 0);
    assert_eq!(traffic.rounds, 1);
    assert!(traffic.total() <= 64 * 12 + 200, "{traffic:?}");
    assert_eq!((stats.rolled, stats.hashed), (0, 0), "the aligned hashes sufficed: {stats:?}");
}

#[test]
fn an_insertion_near_the_start_sends_a_piece() {
    let old = noise(64 * B, 3);
    let mut new = old.clone();
    new.splice(4096..4096, noise(100, 4));
    let (_, _, traffic, stats) = sync(&old, &new, &LEVELS, true);
    assert!(traffic.literal <= 256, "{traffic:?}");
    assert!(traffic.total() <= 2048, "{traffic:?}");
    assert!(stats.rolled <= 2 * B as u64, "found within a block or two of rolling: {stats:?}");
}

#[test]
fn scattered_edits_send_little_more_than_the_edits() {
    let old = noise(160 * B, 5);
    let mut new = old.clone();
    let mut edited = 0;
    for (i, block) in (0..160).step_by(10).enumerate() {
        let at = block * B + (i * 7919) % (B - 4096);
        new[at..at + 4096].copy_from_slice(&noise(4096, 100 + i as u64));
        edited += 4096;
    }
    let (_, _, traffic, _) = sync(&old, &new, &LEVELS, true);
    assert!(traffic.literal <= edited + 16 * 2 * 64, "{traffic:?}");
    // 64 KiB blocks and 64-byte finest pieces cost more hash bytes per edit
    // than the default levels do; the wire tests check those at 1 MiB.
    assert!(traffic.total() <= edited * 3 / 2, "{traffic:?}");
}

#[test]
fn insertions_and_deletions_spread_over_the_file() {
    let old = noise(200 * B, 6);
    let mut new = old.clone();
    for k in (0..20).rev() {
        let at = k * 10 * B + 1234 + k * 77;
        if k % 2 == 0 {
            new.splice(at..at, noise(100, k as u64));
        } else {
            new.drain(at..at + 100);
        }
    }
    let (_, _, traffic, _) = sync(&old, &new, &LEVELS, true);
    assert!(traffic.literal <= 20 * 256, "{traffic:?}");
    assert!(traffic.total() <= 20 * 256 + 200 * 12 + 20 * 400, "{traffic:?}");
}

#[test]
fn a_region_moved_to_the_end_is_found() {
    let old = noise(200 * B, 7);
    let mut new = old.clone();
    let moved: Vec<u8> = new.drain(30 * B + 999..35 * B + 999).collect();
    new.extend(moved);
    let (_, _, traffic, _) = sync(&old, &new, &LEVELS, true);
    assert!(traffic.literal <= 4 * 512, "{traffic:?}");
    assert!(traffic.total() <= 8192, "{traffic:?}");
}

#[test]
fn rewritten_blocks_cost_one_level_of_hashes() {
    let old = noise(100 * B, 8);
    let mut new = old.clone();
    for block in (0..100).step_by(10) {
        new[block * B..(block + 1) * B].copy_from_slice(&noise(B, block as u64));
    }
    let changed = 10 * B as u64;
    let (_, _, traffic, _) = sync(&old, &new, &LEVELS, true);
    assert_eq!(traffic.literal, changed);
    assert!(traffic.total() as f64 <= changed as f64 * 1.02, "{traffic:?}");
}

#[test]
fn a_new_file_is_all_literal_in_one_round() {
    let new = noise(10 * B + 5, 9);
    let (_, plan, traffic, _) = sync(&[], &new, &LEVELS, false);
    assert_eq!(plan.literal_bytes(), new.len() as u64);
    assert_eq!(traffic.rounds, 1);
    let cut: Vec<_> = pieces(0..5, 2).collect();
    assert_eq!(cut, [0..2, 2..4, 4..5]);
}

#[test]
fn dense_insertions_and_deletions() {
    let size = 32 << 20;
    let old = noise(size, 11);
    let mut new = Vec::with_capacity(size + 1000);
    let mut at = 0;
    for k in 0..20 {
        let edit = (k + 1) * size / 21;
        new.extend_from_slice(&old[at..edit]);
        if k % 2 == 0 {
            new.extend_from_slice(&noise(100, k as u64));
            at = edit;
        } else {
            at = edit + 100;
        }
    }
    new.extend_from_slice(&old[at..]);
    let (_, _, traffic, stats) = sync(&old, &new, &[1 << 20, 1 << 16, 4096, 512], true);
    println!("DENSE {traffic:?} {stats:?}");
    assert!(traffic.literal <= 20 * 1024, "{traffic:?}");
}

/// A byte inserted every 200 KiB: no 1 MiB block is found whole, so the
/// search rolls near one long unmatched parent (16 MiB, several of the
/// chunks it reads at a time) and must find its pieces across the chunks.
#[test]
fn a_shift_in_every_block_is_found_across_a_long_parent() {
    let size = 16 << 20;
    let old = noise(size, 12);
    let mut new = Vec::with_capacity(size + 100);
    for (k, chunk) in old.chunks(200 << 10).enumerate() {
        new.extend_from_slice(chunk);
        new.push(k as u8);
    }
    let (rebuilt, _, traffic, _) = sync(&old, &new, &[1 << 20, 1 << 16, 4096, 512], true);
    assert!(rebuilt == new);
    // Each insertion costs a piece or two of the finest level.
    assert!(traffic.literal <= 84 * 1024, "{traffic:?}");
}

/// New data over old zeros (pdiffcopy's "zeroed" patterns), not aligned to
/// a block: the block at the region's end is partly there, but the long run
/// of new data before it is not refined past the first finer level.
#[test]
fn a_long_run_of_new_data_is_not_refined_all_the_way_down() {
    let size = 10 << 20;
    let new = noise(size + 300_000, 13);
    let mut old = new.clone();
    old[..size - 600_000].fill(0);
    let (rebuilt, _, traffic, _) = sync(&old, &new, &[1 << 20, 1 << 16, 4096, 512], true);
    assert!(rebuilt == new);
    assert!(traffic.literal <= size as u64, "{traffic:?}");
    // Level 0 and one finer level over the run; the finest levels only
    // for the block the run ends in.
    assert!(traffic.hashes < 8 * 1024, "{traffic:?}");
}

/// A zeroed region of the old file is skipped fast by the rolling passes
/// (every window there has one weak sum), yet zeros and data shifted
/// beside it are still found.
#[test]
fn old_zeros_are_skipped_and_what_is_there_is_found() {
    let noise_part = noise(3 << 20, 14);
    let mut old = noise_part.clone();
    old.extend_from_slice(&vec![0u8; 5 << 20]);
    // New: the noise shifted by 7 bytes, then 200 KiB of zeros.
    let mut new = vec![1u8; 7];
    new.extend_from_slice(&noise_part);
    new.extend_from_slice(&vec![0u8; 200 << 10]);
    let (rebuilt, _, traffic, _) = sync(&old, &new, &[1 << 20, 1 << 16, 4096, 512], true);
    assert!(rebuilt == new);
    assert!(traffic.literal <= 8 * 1024, "{traffic:?}");
}
