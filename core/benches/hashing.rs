//! Signature throughput for each algorithm: 256 MiB in memory, 1 MiB blocks,
//! fed in 1 MiB chunks as a reader would. Criterion prints MB/s ("thrpt").
//! Compare SHA-1 with `openssl speed -evp sha1 -bytes 1048576`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use diffcopy_core::{HashAlgorithm, SignatureBuilder, hash_block};

const DATA_LEN: usize = 256 << 20;
const BLOCK: u32 = 1 << 20;

fn data() -> Vec<u8> {
    // Cheap pseudo-random bytes (xorshift): compressible data makes no
    // difference to these hashes, but keep it honest anyway.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(DATA_LEN);
    while out.len() < DATA_LEN {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out
}

fn signatures(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("signature_256MiB_1MiB_blocks");
    group.throughput(Throughput::Bytes(DATA_LEN as u64));
    group.sample_size(10);
    for algorithm in HashAlgorithm::ALL {
        group.bench_function(algorithm.name(), |b| {
            b.iter(|| {
                let mut builder = SignatureBuilder::new(algorithm, BLOCK).expect("valid block size");
                for chunk in data.chunks(1 << 20) {
                    builder.update(black_box(chunk));
                }
                black_box(builder.finish())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("hash_block_1MiB");
    group.throughput(Throughput::Bytes(u64::from(BLOCK)));
    for algorithm in HashAlgorithm::ALL {
        group.bench_function(algorithm.name(), |b| {
            b.iter(|| black_box(hash_block(algorithm, black_box(&data[..BLOCK as usize]))))
        });
    }
    group.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
