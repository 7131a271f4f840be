//! What the Redis server holds, for the dashboard: memory in use, its `maxmemory`, and the keys of
//! the database (the cache's entries and the job queues alike: Redis counts keys per database).
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RedisFigures {
    /// `used_memory` of `INFO memory`.
    pub used_memory_bytes: u64,
    /// `maxmemory`; `None` when Redis has no limit (0).
    pub max_memory_bytes: Option<u64>,
    /// `DBSIZE`: keys in the database the app uses.
    pub keys: u64,
}

impl RedisFigures {
    /// From the text of `INFO memory` and the answer to `DBSIZE`; `None` when the text lacks
    /// `used_memory`.
    pub fn from_info(info: &str, keys: u64) -> Option<Self> {
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.trim_end().strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.parse::<u64>().ok())
        };
        Some(Self {
            used_memory_bytes: field("used_memory")?,
            max_memory_bytes: field("maxmemory").filter(|max| *max > 0),
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_used_and_max_memory_from_info() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n\
                    used_memory_rss:2000000\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n";
        assert_eq!(
            RedisFigures::from_info(info, 42),
            Some(RedisFigures {
                used_memory_bytes: 1_048_576,
                max_memory_bytes: None,
                keys: 42,
            })
        );
        let limited = "used_memory:10\r\nmaxmemory:268435456\r\n";
        assert_eq!(
            RedisFigures::from_info(limited, 0).and_then(|f| f.max_memory_bytes),
            Some(268_435_456)
        );
        assert_eq!(RedisFigures::from_info("# Memory\r\n", 1), None);
    }
}
