//! Reading a version from the bucket as the core's search and hashing
//! read a file: [`ObjectReader`] implements `ReadAt` (blocking, for the
//! blocking threads the search runs on) over ranged GETs of 64 KiB units
//! and runs of them, 8 MiB kept; [`hash_blocks`] reads a whole object in parallel
//! stretches and hashes its blocks.

use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;
use diffcopy_core::delta::ReadAt;
use futures_util::{Stream, StreamExt as _};
use tokio::runtime::Handle;

use crate::s3::{Bucket, S3Error};

/// `range` of object `key`, checked to be that long.
pub(super) async fn read_range(bucket: &Bucket, key: &str, range: Range<u64>) -> Result<Bytes, S3Error> {
    if range.is_empty() {
        return Ok(Bytes::new());
    }
    let want = range.end - range.start;
    let bytes =
        bucket.get(key, Some(range)).await?.ok_or_else(|| S3Error::Protocol(format!("{key} is gone")))?;
    if bytes.len() as u64 != want {
        return Err(S3Error::Protocol(format!("{key}: {} bytes read of {want}", bytes.len())));
    }
    Ok(bytes)
}

/// Object `key`'s blocks of `block_size` (`len` bytes in all) hashed with
/// `hash`, in order, a batch per stretch of about 4 MiB: four stretches
/// are read at a time, each hashed on a blocking thread.
pub(super) fn hash_blocks<T: Send + 'static>(
    bucket: Bucket,
    key: String,
    len: u64,
    block_size: u32,
    hash: impl Fn(&[u8]) -> T + Clone + Send + 'static,
) -> impl Stream<Item = Result<Vec<T>, S3Error>> + Send {
    let block = u64::from(block_size);
    let span = ((4 << 20) / block).max(1) * block;
    futures_util::stream::iter((0..len).step_by(span as usize))
        .map(move |start| {
            let (bucket, key, hash) = (bucket.clone(), key.clone(), hash.clone());
            async move {
                let bytes = read_range(&bucket, &key, start..(start + span).min(len)).await?;
                tokio::task::spawn_blocking(move || bytes.chunks(block_size as usize).map(hash).collect())
                    .await
                    .map_err(|e| S3Error::Protocol(format!("hashing: {e}")))
            }
        })
        .buffered(4)
}

/// One object read by offset, from a blocking thread, through a
/// [`UnitCache`] filled by ranged GETs.
#[derive(Debug)]
pub(super) struct ObjectReader {
    bucket: Bucket,
    key: String,
    runtime: Handle,
    cache: UnitCache,
}

impl ObjectReader {
    /// A reader of `key`, `len` bytes long (call inside the runtime).
    pub(crate) fn new(bucket: Bucket, key: String, len: u64) -> Self {
        Self { bucket, key, runtime: Handle::current(), cache: UnitCache::new(len) }
    }
}

impl ReadAt for ObjectReader {
    type Error = std::io::Error;

    fn len(&self) -> u64 {
        self.cache.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let (bucket, key, runtime) = (&self.bucket, &self.key, &self.runtime);
        self.cache.read(offset, buf, |range| runtime.block_on(read_range(bucket, key, range)))
    }
}

/// What an object reader keeps of the object. The search reads whole
/// stretches (a rolling window's span) and small pieces here and there (a
/// piece checked where a match would continue, the siblings of a refined
/// block one after another). Bytes are fetched and kept in units of
/// [`UNIT`], so each read fetches only the units no earlier read left; a
/// small read fetches ahead [`AHEAD`] times its own length (its siblings,
/// which the search reads next), stopping at a unit already kept. The least
/// recently used units go once [`KEEP`] bytes are kept.
#[derive(Debug)]
struct UnitCache {
    /// The object's length.
    len: u64,
    /// Units by index: their bytes and when they were last read.
    units: HashMap<u64, (Bytes, u64)>,
    kept: u64,
    clock: u64,
}

/// The bytes fetched and kept together.
const UNIT: u64 = 64 << 10;
/// How many times its own length a small read fetches ahead.
const AHEAD: u64 = 16;
/// The most a read fetches ahead to.
const MOST_AHEAD: u64 = 1 << 20;
/// The bytes kept.
const KEEP: u64 = 8 << 20;

impl UnitCache {
    fn new(len: u64) -> Self {
        Self { len, units: HashMap::new(), kept: 0, clock: 0 }
    }

    /// Fills `buf` from `offset`, fetching what is missing with `fetch`
    /// (a range of the object, unit-aligned at its start).
    fn read(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        mut fetch: impl FnMut(Range<u64>) -> Result<Bytes, S3Error>,
    ) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let want = buf.len() as u64;
        if offset.checked_add(want).is_none_or(|end| end > self.len) {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the object's end"));
        }
        let (first, last) = (offset / UNIT, (offset + want - 1) / UNIT);
        let units = self
            .units(first, last, ahead_to(offset, want, self.len), &mut fetch)
            .map_err(std::io::Error::other)?;
        let mut done = 0usize;
        for (i, unit) in (first..).zip(&units) {
            let from = (offset + done as u64 - i * UNIT) as usize;
            let n = (unit.len() - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&unit[from..from + n]);
            done += n;
        }
        debug_assert_eq!(done, buf.len());
        Ok(())
    }

    /// Units `first..=last`, fetching the missing ones; a run of missing
    /// units that reaches `last` goes on up to `ahead` while units are missing.
    fn units(
        &mut self,
        first: u64,
        last: u64,
        ahead: u64,
        fetch: &mut impl FnMut(Range<u64>) -> Result<Bytes, S3Error>,
    ) -> Result<Vec<Bytes>, S3Error> {
        let mut got = Vec::with_capacity((last - first + 1) as usize);
        let mut at = first;
        while at <= last {
            self.clock += 1;
            if let Some((bytes, used)) = self.units.get_mut(&at) {
                *used = self.clock;
                got.push(bytes.clone());
                at += 1;
                continue;
            }
            let mut end = at + 1;
            while end <= ahead && !self.units.contains_key(&end) {
                end += 1;
            }
            let fetched = fetch(at * UNIT..(end * UNIT).min(self.len))?;
            for (i, unit) in (at..end).zip(fetched.chunks(UNIT as usize)) {
                let unit = fetched.slice_ref(unit);
                if i <= last {
                    got.push(unit.clone());
                }
                self.kept += unit.len() as u64;
                self.units.insert(i, (unit, self.clock));
            }
            at = end;
        }
        self.evict();
        Ok(got)
    }

    /// Drops the least recently used units while more than [`KEEP`] bytes are kept.
    fn evict(&mut self) {
        while self.kept > KEEP {
            let Some(oldest) = self.units.iter().min_by_key(|(_, (_, used))| *used).map(|(i, _)| *i) else {
                break;
            };
            if let Some((bytes, _)) = self.units.remove(&oldest) {
                self.kept -= bytes.len() as u64;
            }
        }
    }
}

/// The last unit a read of `len` bytes at `offset` fetches ahead to, in an
/// object of `size` bytes (`len` > 0, the read within the object).
fn ahead_to(offset: u64, len: u64, size: u64) -> u64 {
    let fetch = len.max((len * AHEAD).min(MOST_AHEAD));
    ((offset + fetch).min(size) - 1) / UNIT
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::{KEEP, MOST_AHEAD, UNIT, UnitCache, ahead_to};

    /// Reads `reads` (offset, length) of `object` through a cache: each
    /// must give the object's bytes (or EOF past its end), and each fetch
    /// must start on a unit, end within the object and not repeat a unit
    /// still kept. Returns the bytes fetched.
    fn check_reads(object: &[u8], reads: &[(u64, usize)]) -> u64 {
        let len = object.len() as u64;
        let mut cache = UnitCache::new(len);
        let mut fetched = 0u64;
        for &(offset, want) in reads {
            let mut buf = vec![0u8; want];
            let mut fetches: Vec<Range<u64>> = Vec::new();
            let kept_before: Vec<u64> = cache.units.keys().copied().collect();
            let result = cache.read(offset, &mut buf, |range| {
                fetches.push(range.clone());
                Ok(Bytes::copy_from_slice(&object[range.start as usize..range.end as usize]))
            });
            if want > 0 && offset + want as u64 > len {
                assert!(result.is_err(), "a read past the end at {offset}+{want} of {len}");
                continue;
            }
            result.unwrap();
            if want > 0 {
                assert_eq!(buf, &object[offset as usize..offset as usize + want], "{offset}+{want}");
            }
            for range in &fetches {
                assert_eq!(range.start % UNIT, 0, "{range:?} starts on a unit");
                assert!(range.start < range.end && range.end <= len, "{range:?} within {len}");
                for unit in range.start / UNIT..range.end.div_ceil(UNIT) {
                    assert!(!kept_before.contains(&unit), "unit {unit} fetched again while kept");
                }
                fetched += range.end - range.start;
            }
            assert!(cache.kept <= KEEP + (want as u64).max(MOST_AHEAD) + UNIT, "{} kept", cache.kept);
        }
        fetched
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn reads_give_the_objects_bytes_and_fetch_each_unit_once_while_kept(
            len in prop_oneof![Just(0u64), Just(1), Just(UNIT - 1), Just(UNIT), Just(UNIT + 1), 0u64..(3 << 20), (9u64 << 20)..(10 << 20)],
            reads in proptest::collection::vec((0u64..(10 << 20), prop_oneof![1usize..5000, 60_000usize..70_000, 1usize..(2 << 20)]), 1..24),
        ) {
            let object: Vec<u8> = (0..len).map(|i| (i * 7 + i / 65_536) as u8).collect();
            let reads: Vec<(u64, usize)> = reads.into_iter().map(|(o, n)| (o % (len + 2), n)).collect();
            check_reads(&object, &reads);
        }
    }

    #[test]
    fn a_read_again_fetches_nothing_and_siblings_come_with_the_first() {
        let object: Vec<u8> = (0..(4u64 << 20)).map(|i| i as u8).collect();
        // A 4 KiB piece fetches its 64 KiB unit; its siblings then cost nothing.
        assert_eq!(check_reads(&object, &[(0, 4096)]), UNIT);
        assert_eq!(check_reads(&object, &[(0, 4096), (4096, 4096), (60_000, 5536)]), UNIT);
        // A 64 KiB piece fetches its 1 MiB block.
        assert_eq!(check_reads(&object, &[(1 << 20, 65_536), ((1 << 20) + 65_536, 65_536)]), 1 << 20);
        // A large read fetches only itself, and nothing when read again.
        assert_eq!(check_reads(&object, &[(UNIT, 3 << 20), (UNIT, 3 << 20)]), 3 << 20);
    }

    #[test]
    fn small_reads_fetch_their_siblings_and_large_ones_only_themselves() {
        let size = 1 << 30;
        // A 64 KiB piece: the 1 MiB block it lies in.
        assert_eq!(ahead_to(0, 64 << 10, size), MOST_AHEAD / UNIT - 1);
        // A 4 KiB piece: its 64 KiB parent.
        assert_eq!(ahead_to(0, 4 << 10, size), 0);
        assert_eq!(ahead_to(4 << 10, 4 << 10, size), 1);
        // A whole block or a rolling window's span: itself.
        assert_eq!(ahead_to(UNIT, 4 << 20, size), (UNIT + (4 << 20) - 1) / UNIT);
        // Never past the object's end.
        assert_eq!(ahead_to(size - 1, 1, size), (size - 1) / UNIT);
        assert_eq!(ahead_to(0, 1, 1), 0);
    }
}
