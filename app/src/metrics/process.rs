//! Process memory: the resident set size read from `/proc/self/statm`.
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::gauge::ConstGauge,
    registry::{Registry, Unit},
};

/// Page size assumed when it cannot be read (every Linux target we ship to uses 4 KiB pages).
const PAGE_SIZE: u64 = 4096;

/// Resident set size of this process in bytes, or `None` where `/proc` is missing.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    parse_statm_resident(&statm).map(|pages| pages * PAGE_SIZE)
}

/// The resident pages from the text of `/proc/self/statm` (second field).
pub fn parse_statm_resident(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// Reads RSS at every scrape, so the figure is never stale.
#[derive(Debug)]
struct ResidentMemory;

impl Collector for ResidentMemory {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(bytes) = resident_bytes() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(i64::try_from(bytes).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "perfstack_process_resident_memory",
            "Resident set size of the process",
            Some(&Unit::Bytes),
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

pub fn register(registry: &mut Registry) {
    registry.register_collector(Box::new(ResidentMemory));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_second_field_is_resident_pages() {
        assert_eq!(parse_statm_resident("5000 1234 300 10 0 900 0"), Some(1234));
        assert_eq!(parse_statm_resident("garbage"), None);
    }

    #[test]
    fn this_process_has_memory() {
        assert!(resident_bytes().is_some_and(|b| b > 0));
    }
}
