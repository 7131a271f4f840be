//! `scoped::set_default` keeps a thread's spans when another thread, without a subscriber, is the first
//! to reach a callsite. Its own process: the shortcut it guards against only exists while the process
//! has exactly one dispatcher, which other tests in the same binary would hide.
use std::sync::{Arc, Mutex, PoisonError};

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Subscriber;
use tracing::{Event, Metadata};

/// Records the names of the spans it is given.
#[derive(Clone, Default)]
struct Names(Arc<Mutex<Vec<&'static str>>>);

impl Subscriber for Names {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut names = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        names.push(span.metadata().name());
        Id::from_u64(names.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn probe() {
    drop(tracing::info_span!("probe"));
}

#[test]
fn a_callsite_first_reached_by_a_thread_without_a_subscriber_still_reaches_this_one() {
    let names = Names::default();
    let _guard = perfstack_otel::scoped::set_default(names.clone());
    std::thread::spawn(probe).join().unwrap();
    probe();
    assert_eq!(*names.0.lock().unwrap(), ["probe"]);
}
