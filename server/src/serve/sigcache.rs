//! Signatures computed once per file version: a bounded cache whose oldest
//! entries go first when the bytes held exceed the budget. API v1's
//! signatures and protocol v2's block hashes each keep one.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use diffcopy_core::{HashAlgorithm, Signature};

use crate::fs::FileVersion;

/// What a cached API v1 signature is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    /// The file version hashed.
    pub(crate) version: FileVersion,
    /// The algorithm.
    pub(crate) algorithm: HashAlgorithm,
    /// The block size.
    pub(crate) block_size: u32,
}

/// A value that knows how many bytes it holds.
pub(crate) trait Weigh {
    /// Bytes held, roughly.
    fn weight(&self) -> usize;
}

impl Weigh for Signature {
    fn weight(&self) -> usize {
        self.digest_bytes().len() + 64
    }
}

impl Weigh for Vec<u8> {
    fn weight(&self) -> usize {
        self.len() + 64
    }
}

/// A bounded cache of shared values.
#[derive(Debug)]
pub(super) struct SignatureCache<K, V> {
    inner: Mutex<Inner<K, V>>,
    budget: usize,
}

#[derive(Debug)]
struct Inner<K, V> {
    map: HashMap<K, Arc<V>>,
    order: VecDeque<K>,
    bytes: usize,
}

impl<K: Copy + Eq + Hash, V: Weigh> SignatureCache<K, V> {
    /// A cache holding at most `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Self { inner: Mutex::new(Inner { map: HashMap::new(), order: VecDeque::new(), bytes: 0 }), budget }
    }

    /// The cached value for `key`, if any.
    pub(crate) fn get(&self, key: &K) -> Option<Arc<V>> {
        self.lock().map.get(key).cloned()
    }

    /// Remembers `value` for `key`, evicting the oldest entries as needed.
    pub(crate) fn insert(&self, key: K, value: Arc<V>) {
        let size = value.weight();
        if size > self.budget {
            return;
        }
        let mut inner = self.lock();
        if inner.map.insert(key, value).is_some() {
            return;
        }
        inner.order.push_back(key);
        inner.bytes += size;
        while inner.bytes > self.budget {
            let Some(old) = inner.order.pop_front() else { break };
            if let Some(evicted) = inner.map.remove(&old) {
                inner.bytes -= evicted.weight();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // in a way that matters for a cache: keep going.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffcopy_core::SignatureHeader;

    fn entry(ino: u64, blocks: u64) -> (CacheKey, Arc<Signature>) {
        let version = FileVersion { dev: 1, ino, size: blocks * 4096, mtime_ns: 0, ctime_ns: 0 };
        let header = SignatureHeader::new(HashAlgorithm::Sha1, 4096, blocks * 4096).unwrap();
        let sig = Signature::from_parts(header, vec![0; blocks as usize * 20]).unwrap();
        (CacheKey { version, algorithm: HashAlgorithm::Sha1, block_size: 4096 }, Arc::new(sig))
    }

    #[test]
    fn oldest_entries_are_evicted_past_the_budget() {
        let cache = SignatureCache::new(3 * (200 + 64));
        let entries: Vec<_> = (0..4).map(|i| entry(i, 10)).collect();
        for (key, sig) in &entries {
            cache.insert(*key, sig.clone());
        }
        assert!(cache.get(&entries[0].0).is_none());
        for (key, _) in &entries[1..] {
            assert!(cache.get(key).is_some());
        }
        let (big_key, big) = entry(9, 1000);
        cache.insert(big_key, big);
        assert!(cache.get(&big_key).is_none(), "larger than the whole budget");
    }
}
