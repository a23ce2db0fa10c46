//! Signatures computed once per file version, algorithm and block size.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use diffcopy_core::{HashAlgorithm, Signature};

use crate::fs::FileVersion;

/// What a cached signature is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    /// The file version hashed.
    pub(crate) version: FileVersion,
    /// The algorithm.
    pub(crate) algorithm: HashAlgorithm,
    /// The block size.
    pub(crate) block_size: u32,
}

/// A bounded cache of complete signatures; the oldest go first when the
/// digests held exceed the budget.
#[derive(Debug)]
pub(crate) struct SignatureCache {
    inner: Mutex<Inner>,
    budget: usize,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<CacheKey, Arc<Signature>>,
    order: VecDeque<CacheKey>,
    bytes: usize,
}

impl SignatureCache {
    /// A cache holding at most `budget` bytes of digests.
    pub(crate) fn new(budget: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), budget }
    }

    /// The cached signature for `key`, if any.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<Signature>> {
        self.lock().map.get(key).cloned()
    }

    /// Remembers `signature` for `key`, evicting the oldest entries as needed.
    pub(crate) fn insert(&self, key: CacheKey, signature: Arc<Signature>) {
        let size = signature.digest_bytes().len() + 64;
        if size > self.budget {
            return;
        }
        let mut inner = self.lock();
        if inner.map.insert(key, signature).is_some() {
            return;
        }
        inner.order.push_back(key);
        inner.bytes += size;
        while inner.bytes > self.budget {
            let Some(old) = inner.order.pop_front() else { break };
            if let Some(evicted) = inner.map.remove(&old) {
                inner.bytes -= evicted.digest_bytes().len() + 64;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
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
