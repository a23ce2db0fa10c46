//! What one instance remembers of the uploads it has served: a session's
//! state as far as this instance has read or computed it, and the hashes of
//! the blocks that arrived whole here. The store holds everything a session
//! needs, so all of it may be forgotten at any time: an entry idle for a
//! while is evicted (another instance may have ended the session long
//! ago), and the next request that needs it reads the store again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A block that arrived whole in one data request at this instance: the
/// data object that holds it, and its hash. The commit trusts the hash only
/// where it takes the whole block from that same object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Arrived {
    pub(crate) key: String,
    pub(crate) hash: u128,
}

#[derive(Debug)]
struct Entry<T> {
    session: Arc<tokio::sync::Mutex<T>>,
    arrived: HashMap<u64, Arrived>,
    touched: Instant,
}

/// Sessions by id.
#[derive(Debug)]
pub(super) struct SessionCache<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
}

impl<T> Default for SessionCache<T> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

impl<T> SessionCache<T> {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry<T>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Session `id`, if remembered (touched, so it stays).
    pub(crate) fn get(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<T>>> {
        let mut entries = self.entries();
        let entry = entries.get_mut(id)?;
        entry.touched = Instant::now();
        Some(entry.session.clone())
    }

    /// Remembers `session` as `id` unless a request got there first;
    /// returns the one remembered.
    pub(crate) fn insert(&self, id: &str, session: T) -> Arc<tokio::sync::Mutex<T>> {
        let mut entries = self.entries();
        let entry = entries.entry(id.to_owned()).or_insert_with(|| Entry {
            session: Arc::new(tokio::sync::Mutex::new(session)),
            arrived: HashMap::new(),
            touched: Instant::now(),
        });
        entry.touched = Instant::now();
        entry.session.clone()
    }

    /// Notes blocks of session `id` that arrived whole here (dropped if the
    /// session is no longer remembered: the commit then reads them back).
    pub(crate) fn arrived(&self, id: &str, blocks: impl IntoIterator<Item = (u64, Arrived)>) {
        if let Some(entry) = self.entries().get_mut(id) {
            entry.arrived.extend(blocks);
            entry.touched = Instant::now();
        }
    }

    /// The blocks of session `id` that arrived whole here, by index.
    pub(super) fn arrivals(&self, id: &str) -> HashMap<u64, Arrived> {
        self.entries().get(id).map(|e| e.arrived.clone()).unwrap_or_default()
    }

    /// Forgets session `id`.
    pub(super) fn forget(&self, id: &str) {
        self.entries().remove(id);
    }

    /// Forgets every session untouched for longer than `idle`; returns how many.
    pub(super) fn evict_idle(&self, idle: Duration) -> usize {
        let mut entries = self.entries();
        let before = entries.len();
        entries.retain(|_, e| e.touched.elapsed() < idle);
        before - entries.len()
    }

    /// (sessions, block hashes) remembered now.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let entries = self.entries();
        (entries.len(), entries.values().map(|e| e.arrived.len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_their_arrivals_go_when_idle_and_come_back_empty() {
        let cache: SessionCache<u32> = SessionCache::default();
        let first = cache.insert("a", 1);
        // A second insert keeps the first session.
        assert!(Arc::ptr_eq(&first, &cache.insert("a", 2)));
        cache.arrived("a", [(3, Arrived { key: "k".into(), hash: 9 })]);
        cache.arrived("gone", [(0, Arrived { key: "k".into(), hash: 1 })]);
        assert_eq!(cache.counts(), (1, 1));
        assert_eq!(cache.arrivals("a")[&3].hash, 9);
        assert_eq!(cache.evict_idle(Duration::from_secs(60)), 0);
        assert_eq!(cache.evict_idle(Duration::ZERO), 1);
        assert_eq!(cache.counts(), (0, 0));
        assert!(cache.get("a").is_none());
        assert!(cache.arrivals("a").is_empty());
        cache.insert("b", 5);
        cache.forget("b");
        assert_eq!(cache.counts(), (0, 0));
    }
}
