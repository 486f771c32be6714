//! A small in-process cache of definitions: an entry is used while it is younger than [`TTL`]
//! and no change has been made through this process' store since it was read
//! ([`crate::Store::changes`]), so an edit made here is seen at once and one made by another
//! process within [`TTL`]. The flow engine caches flows, stages and bindings with it; the OAuth
//! provider its clients and signing keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long another process' edit may go unseen.
pub const TTL: Duration = Duration::from_secs(5);
/// Entries kept per map before it is emptied (a bound, not an LRU: definitions are few).
const MAX_ENTRIES: usize = 4096;

struct Entry<V> {
    at: Instant,
    generation: u64,
    value: V,
}

/// One cached map.
pub struct TtlMap<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K, V> Default for TtlMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    /// The value for `key` if it is fresh for `generation`.
    pub fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let map = self.entries.lock().ok()?;
        let e = map.get(key)?;
        (e.generation == generation && e.at.elapsed() < TTL).then(|| e.value.clone())
    }

    /// Remembers `value` for `key`, read at `generation`.
    pub fn put(&self, key: K, generation: u64, value: V) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(
                key,
                Entry {
                    at: Instant::now(),
                    generation,
                    value,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_with_a_change() {
        let m: TtlMap<u32, &str> = TtlMap::default();
        m.put(1, 7, "a");
        assert_eq!(m.get(&1, 7), Some("a"));
        assert_eq!(
            m.get(&1, 8),
            None,
            "a change since it was read makes it stale"
        );
        assert_eq!(m.get(&2, 7), None);
    }
}
