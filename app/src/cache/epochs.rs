//! Per-key write epochs: every local write or remote eviction of a key bumps its counter, and an
//! L1 entry remembers the epoch its load started in. An entry whose epoch is behind is stale,
//! however the load raced with the write. Keys share a fixed set of counters by hash; a shared
//! counter only costs an extra miss.
use std::{
    hash::{BuildHasher, RandomState},
    sync::atomic::{AtomicU64, Ordering},
};

const SHARDS: usize = 4096;

pub struct Epochs {
    counters: Box<[AtomicU64]>,
    hasher: RandomState,
}

impl Default for Epochs {
    fn default() -> Self {
        Self {
            counters: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl Epochs {
    fn counter(&self, key: &str) -> &AtomicU64 {
        let index = usize::try_from(self.hasher.hash_one(key)).unwrap_or(0) % SHARDS;
        &self.counters[index]
    }

    pub fn current(&self, key: &str) -> u64 {
        self.counter(key).load(Ordering::Acquire)
    }

    pub fn bump(&self, key: &str) {
        self.counter(key).fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_moves_only_that_counter_forward() {
        let epochs = Epochs::default();
        let before = epochs.current("user:1");
        epochs.bump("user:1");
        assert_eq!(epochs.current("user:1"), before + 1);
    }
}
