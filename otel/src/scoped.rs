//! A thread's own default subscriber that other threads cannot silence, for tests that capture spans
//! or events while other tests run beside them in the same process.
//!
//! `tracing-core` 0.1 caches each callsite's interest when the callsite is first hit. While exactly one
//! dispatcher exists in the process, it asks the *registering thread's* default instead of that
//! dispatcher (tokio-rs/tracing#3611, #2874): a callsite first hit by a thread without a subscriber is
//! cached as `never`, and the thread that installed the subscriber then loses its spans. With two or
//! more dispatchers, registration consults all of them, so one idle dispatcher kept for the life of the
//! process closes that window.
use std::sync::OnceLock;

use tracing::Dispatch;
use tracing::subscriber::{DefaultGuard, NoSubscriber, Subscriber};

/// Sets `subscriber` as this thread's default until the guard drops, like
/// [`tracing::subscriber::set_default`], after making sure registration never takes the one-dispatcher
/// shortcut (see the module's documentation).
pub fn set_default<S>(subscriber: S) -> DefaultGuard
where
    S: Subscriber + Send + Sync + 'static,
{
    static IDLE: OnceLock<Dispatch> = OnceLock::new();
    // Registered before the subscriber's own dispatcher, so that there are two from then on.
    IDLE.get_or_init(|| Dispatch::new(NoSubscriber::default()));
    tracing::subscriber::set_default(subscriber)
}
