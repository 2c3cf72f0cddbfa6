//! A bounded memory of decisions, so late spans follow the decision of their trace.
//!
//! Two generations instead of a true LRU: inserts go to the young map; when it holds half the capacity the old
//! one is discarded and the young one takes its place. Lookups see both, so the newest `capacity / 2` to
//! `capacity` entries are always remembered, at O(1) per operation and no per-entry links.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
pub struct DecisionCache<K, V> {
    capacity: usize,
    young: HashMap<K, V>,
    old: HashMap<K, V>,
}

impl<K: Eq + Hash, V> DecisionCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, young: HashMap::new(), old: HashMap::new() }
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.young.len() >= self.capacity.div_ceil(2) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.young.get(key).or_else(|| self.old.get(key))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_entries_within_the_bound() {
        let mut cache = DecisionCache::new(10);
        for i in 0..100 {
            cache.insert(i, i * 2);
            assert!(cache.len() <= 10);
        }
        for i in 95..100 {
            assert_eq!(cache.get(&i), Some(&(i * 2)));
        }
        assert_eq!(cache.get(&0), None);
        let mut off = DecisionCache::new(0);
        off.insert(1, 1);
        assert_eq!(off.get(&1), None);
    }
}
