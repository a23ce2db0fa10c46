//! Protocol v2's hashing and search, one thread, 256 MiB in memory, 1 MiB
//! blocks: the new side's block hashes (weak sum + XXH3-128 per block), each
//! part alone, and the old side's rolling pass over data with no match.
//! Criterion prints MB/s ("thrpt").

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use diffcopy_core::delta::{
    BlockHashesBuilder, DeltaParams, Levels, Matcher, SliceFile, block_hash, piece_hash, weak_sum,
};

const DATA_LEN: usize = 256 << 20;
const BLOCK: u32 = 1 << 20;

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
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

fn params() -> DeltaParams {
    DeltaParams { file_size: DATA_LEN as u64, seed: 7, levels: Levels::for_block(BLOCK).unwrap() }
}

fn hashing(c: &mut Criterion) {
    let data = noise(DATA_LEN, 0x9E37_79B9_7F4A_7C15);
    let mut group = c.benchmark_group("v2_new_side_256MiB");
    group.throughput(Throughput::Bytes(DATA_LEN as u64));
    group.sample_size(10);
    group.bench_function("block_hashes", |b| {
        b.iter(|| {
            let mut builder = BlockHashesBuilder::new(params());
            for block in data.chunks(BLOCK as usize) {
                builder.push_block(black_box(block));
            }
            black_box(builder.finish().unwrap())
        })
    });
    group.bench_function("xxh3_128_only", |b| {
        b.iter(|| data.chunks(BLOCK as usize).map(|c| block_hash(7, black_box(c))).fold(0, |a, h| a ^ h))
    });
    group.bench_function("xxh3_64_only", |b| {
        b.iter(|| data.chunks(BLOCK as usize).map(|c| piece_hash(7, black_box(c))).fold(0, |a, h| a ^ h))
    });
    group.bench_function("weak_sum_only", |b| {
        b.iter(|| data.chunks(BLOCK as usize).map(|c| weak_sum(black_box(c))).fold(0, |a, h| a ^ h))
    });
    group.finish();

    // The old side rolls over an old file that shares nothing with the new one.
    let new = noise(DATA_LEN, 1);
    let mut builder = BlockHashesBuilder::new(params());
    for block in new.chunks(BLOCK as usize) {
        builder.push_block(block);
    }
    let hashes = builder.finish().unwrap();
    let mut group = c.benchmark_group("v2_old_side_256MiB");
    group.throughput(Throughput::Bytes(DATA_LEN as u64));
    group.sample_size(10);
    group.bench_function("search_nothing_matches", |b| {
        b.iter(|| {
            let mut matcher = Matcher::new(params(), data.len() as u64);
            let need = matcher.blocks(&hashes, &mut SliceFile(&data), None).unwrap();
            black_box((need, matcher.stats()))
        })
    });
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
