//! The memory guard: samples resident memory and clears the L1 cache when it is above a limit.
use std::time::Duration;

use super::Cache;
use crate::metrics::process;

/// What the guard does with one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardAction {
    Nothing,
    ClearL1,
}

/// Pure decision: clear L1 when resident memory exceeds a non-zero limit.
pub fn decide(resident_bytes: u64, limit_bytes: u64) -> GuardAction {
    if limit_bytes > 0 && resident_bytes > limit_bytes {
        GuardAction::ClearL1
    } else {
        GuardAction::Nothing
    }
}

impl Cache {
    /// Applies one sample; returns what was done.
    pub fn guard_memory(&self, resident_bytes: u64, limit_bytes: u64) -> GuardAction {
        let action = decide(resident_bytes, limit_bytes);
        if action == GuardAction::ClearL1 {
            let entries = self.inner.l1.entry_count();
            self.clear_l1();
            self.telemetry().guard_action("clear_l1").inc();
            tracing::warn!(
                resident_bytes,
                limit_bytes,
                entries,
                "resident memory above the limit; cleared the in-process cache"
            );
        }
        action
    }

    /// Samples RSS every `interval` while the cache lives; does nothing when `limit_bytes` is 0.
    pub fn start_memory_guard(&self, limit_bytes: u64, interval: Duration) {
        self.telemetry()
            .memory_limit_bytes
            .set(i64::try_from(limit_bytes).unwrap_or(i64::MAX));
        if limit_bytes == 0 {
            return;
        }
        let weak = std::sync::Arc::downgrade(&self.inner);
        self.spawn(async move {
            let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let cache = Cache { inner };
                if let Some(rss) = process::resident_bytes() {
                    cache.guard_memory(rss, limit_bytes);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_only_above_a_set_limit() {
        assert_eq!(decide(10, 0), GuardAction::Nothing);
        assert_eq!(decide(10, 20), GuardAction::Nothing);
        assert_eq!(decide(30, 20), GuardAction::ClearL1);
    }
}
