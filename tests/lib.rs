//! The cross-crate tests in `contract/` (docs/architecture.md, "Tests"): each takes what one side
//! produces and hands it to the other side's reader, so a change to the contract that only one side
//! follows fails there.
//!
//! The library itself holds what the test suites of several crates need alike: so far,
//! [`spare_port`].

use std::sync::{
    LazyLock,
    atomic::{AtomicU32, Ordering},
};

/// The ports [`spare_port`] hands out: below the kernel's ephemeral range (32768-60999 by default),
/// above the k8s-lab's fixed ports (16443, 17443, 23790-24791) and below the NodePort range.
const SPARE: std::ops::Range<u32> = 26_000..30_000;

/// The next candidate: a process-wide cursor starting at an offset from the process id, so that two
/// test processes rarely try the same ports and one process never hands a port out twice.
static CURSOR: LazyLock<AtomicU32> =
    LazyLock::new(|| AtomicU32::new(std::process::id().wrapping_mul(7_919) % (SPARE.end - SPARE.start)));

/// A loopback TCP port that nothing listens on now, for a server a test starts later (a child
/// process, or a proxy it starts and stops).
///
/// Asking the kernel for port 0 and closing the listener is not enough for that: the port is then
/// an ephemeral one, and any outgoing connection made meanwhile (a pool opening to PostgreSQL) may
/// take it as its local port, after which binding it fails with "address in use". The ports handed
/// out here are outside the ephemeral range, so only an explicit bind can take them.
///
/// # Panics
/// When every port of the range is bound, which leaves a test nothing to do.
pub fn spare_port() -> u16 {
    next_unbound(&CURSOR)
}

/// The first port of [`SPARE`] from `cursor` on that binds, moving `cursor` past it.
fn next_unbound(cursor: &AtomicU32) -> u16 {
    let span = SPARE.end - SPARE.start;
    for _ in 0..span {
        let offset = cursor.fetch_add(1, Ordering::Relaxed) % span;
        let Ok(port) = u16::try_from(SPARE.start + offset) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("every loopback port in {SPARE:?} is in use");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_ports_are_bindable_distinct_and_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| spare_port()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for port in ports {
            assert!(SPARE.contains(&u32::from(port)), "{port}");
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }

    #[test]
    fn a_bound_port_is_skipped() {
        let taken = spare_port();
        let _held = std::net::TcpListener::bind(("127.0.0.1", taken)).unwrap();
        let cursor = AtomicU32::new(u32::from(taken) - SPARE.start);
        assert_ne!(next_unbound(&cursor), taken);
    }
}
