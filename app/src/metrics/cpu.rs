//! CPU figures for the dashboard: the CPU time of this process (`/proc/self/stat`) and, in a
//! container, of its cgroup with the cgroup's CPU limit (cgroup v2 `cpu.stat` and `cpu.max`,
//! cgroup v1 `cpuacct.usage` and `cpu.cfs_quota_us`). [`CpuMeter`] turns two readings into the
//! cores used in between.
use std::{sync::Mutex, time::Instant};

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;
/// Where the process's cgroup is mounted (its own, in a container with a cgroup namespace).
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// CPU time this process has used (user + system), in seconds; `None` where `/proc` is missing.
pub fn process_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_ticks(&stat).map(|ticks| ticks as f64 / USER_HZ)
}

/// `utime + stime` (fields 14 and 15) from the text of `/proc/<pid>/stat`. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its closing parenthesis.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU the cgroup has used and may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgroupCpu {
    /// CPU time of every process in the cgroup, in seconds.
    pub usage_seconds: f64,
    /// The CPU limit in cores; `None` when the cgroup has none.
    pub limit_cores: Option<f64>,
}

/// The cgroup's CPU figures (v2, else v1); `None` outside a cgroup that accounts CPU.
pub fn cgroup_cpu() -> Option<CgroupCpu> {
    let read = |path: &str| std::fs::read_to_string(format!("{CGROUP_ROOT}/{path}")).ok();
    if let Some(stat) = read("cpu.stat")
        && let Some(usage_seconds) = parse_v2_usage(&stat)
    {
        let limit_cores = read("cpu.max").and_then(|max| parse_v2_limit(&max));
        return Some(CgroupCpu {
            usage_seconds,
            limit_cores,
        });
    }
    let usage_ns: f64 = read("cpuacct/cpuacct.usage")?.trim().parse().ok()?;
    let quota = read("cpu/cpu.cfs_quota_us");
    let period = read("cpu/cpu.cfs_period_us");
    Some(CgroupCpu {
        usage_seconds: usage_ns / 1e9,
        limit_cores: quota
            .zip(period)
            .and_then(|(quota, period)| parse_v1_limit(&quota, &period)),
    })
}

/// `usage_usec` of a cgroup v2 `cpu.stat`, in seconds.
pub fn parse_v2_usage(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|line| line.starts_with("usage_usec "))?;
    let usec: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(usec / 1e6)
}

/// Cores allowed by a cgroup v2 `cpu.max` (`"<quota> <period>"`, `"max <period>"` for none).
pub fn parse_v2_limit(max: &str) -> Option<f64> {
    let mut parts = max.split_whitespace();
    let quota = parts.next()?;
    let period: f64 = parts.next()?.parse().ok()?;
    let quota: f64 = quota.parse().ok()?;
    (period > 0.0).then(|| quota / period)
}

/// Cores allowed by cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota -1: none).
pub fn parse_v1_limit(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.trim().parse().ok()?;
    let period: f64 = period.trim().parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// The process's CPU on the dashboard.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CpuFigures {
    /// CPU time this process used since it started, in seconds.
    pub process_seconds_total: Option<f64>,
    /// Cores this process used on average since the previous measurement (`None` on the first).
    pub process_cores: Option<f64>,
    /// Its cgroup (the container), when CPU is accounted there.
    pub cgroup: Option<CgroupFigures>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CgroupFigures {
    pub usage_seconds_total: f64,
    /// Cores the cgroup used on average since the previous measurement (`None` on the first).
    pub cores: Option<f64>,
    /// The CPU limit in cores; `None` when there is none.
    pub limit_cores: Option<f64>,
    /// `cores / limitCores`: how much of the limit is in use.
    pub limit_utilisation: Option<f64>,
}

/// A reading of both clocks.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    process: Option<f64>,
    cgroup: Option<f64>,
}

/// Measures CPU use between two dashboard measurements.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Mutex<Option<Reading>>,
}

impl CpuMeter {
    /// Reads the clocks and compares them with the previous reading.
    pub fn measure(&self) -> CpuFigures {
        let cgroup = cgroup_cpu();
        let now = Reading {
            at: Instant::now(),
            process: process_seconds(),
            cgroup: cgroup.map(|c| c.usage_seconds),
        };
        let previous = self
            .last
            .lock()
            .map(|mut last| last.replace(now))
            .unwrap_or_default();
        let wall = previous.map_or(0.0, |before| now.at.duration_since(before.at).as_secs_f64());
        let rate = |now: Option<f64>, before: Option<f64>| {
            let (now, before) = (now?, before?);
            (wall > 0.0).then(|| ((now - before) / wall).max(0.0))
        };
        let before = |pick: fn(&Reading) -> Option<f64>| previous.as_ref().and_then(pick);
        let cgroup = cgroup.map(|c| {
            let cores = rate(now.cgroup, before(|r| r.cgroup));
            CgroupFigures {
                usage_seconds_total: c.usage_seconds,
                cores,
                limit_cores: c.limit_cores,
                limit_utilisation: cores.zip(c.limit_cores).map(|(used, limit)| used / limit),
            }
        });
        CpuFigures {
            process_seconds_total: now.process,
            process_cores: rate(now.process, before(|r| r.process)),
            cgroup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_counted_after_the_command_name() {
        let stat = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    250 75 0 0 20 0 9 0 12345 1000000 5000 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn cgroup_limits_in_cores() {
        assert_eq!(parse_v2_usage("usage_usec 2500000\nuser_usec 1\n"), Some(2.5));
        assert_eq!(parse_v2_limit("200000 100000\n"), Some(2.0));
        assert_eq!(parse_v2_limit("max 100000\n"), None);
        assert_eq!(parse_v1_limit("50000\n", "100000\n"), Some(0.5));
        assert_eq!(parse_v1_limit("-1\n", "100000\n"), None);
    }

    #[test]
    fn this_process_uses_cpu_and_the_meter_rates_it() {
        let meter = CpuMeter::default();
        let first = meter.measure();
        assert!(first.process_seconds_total.is_some_and(|s| s >= 0.0));
        assert_eq!(
            first.process_cores, None,
            "nothing to compare the first reading with"
        );
        let spin = Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(50) {
            std::hint::black_box(0u64.wrapping_add(1));
        }
        let second = meter.measure();
        assert!(second.process_cores.is_some_and(|cores| cores >= 0.0));
        assert!(second.process_seconds_total >= first.process_seconds_total);
    }
}
