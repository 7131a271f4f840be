//! Process figures read at each scrape: the resident set size (`/proc/self/statm`) and the CPU
//! time used so far (`/proc/self/stat`), so a load tester or Prometheus can tell when the app's
//! CPU is what saturates.
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
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

/// Reads RSS and CPU time at every scrape, so the figures are never stale.
#[derive(Debug)]
struct ProcessFigures;

impl Collector for ProcessFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(bytes) = resident_bytes() {
            let gauge = ConstGauge::new(i64::try_from(bytes).unwrap_or(i64::MAX));
            encode_figure(
                &mut encoder,
                "perfstack_process_resident_memory",
                "Resident set size of the process",
                Unit::Bytes,
                &gauge,
            )?;
        }
        if let Some(seconds) = super::cpu::process_seconds() {
            encode_figure(
                &mut encoder,
                "perfstack_process_cpu",
                "CPU time (user + system) the process has used",
                Unit::Seconds,
                &ConstCounter::new(seconds),
            )?;
        }
        Ok(())
    }
}

/// Writes one figure under its name, help and unit.
fn encode_figure(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Unit,
    figure: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    figure.encode(encoder.encode_descriptor(name, help, Some(&unit), figure.metric_type())?)
}

pub fn register(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessFigures));
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
