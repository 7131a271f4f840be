//! Cross-replica L1 eviction over Redis pub/sub, and the retry of evictions Redis missed.
use std::{
    sync::{Weak, atomic::Ordering},
    time::Duration,
};

use futures::StreamExt;

use super::Inner;

const RECONNECT_DELAY: Duration = Duration::from_secs(1);
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// `<instance> <key>`: the replica that wrote, and the key.
pub fn message(instance: &str, key: &str) -> String {
    format!("{instance} {key}")
}

fn parse(message: &str) -> Option<(&str, &str)> {
    message.split_once(' ')
}

fn subscribe_failed(inner: &Inner, error: &str) {
    inner.telemetry.redis_error("subscribe").inc();
    tracing::debug!(error, "eviction subscription lost; reconnecting");
}

/// Subscribes and drops every key another replica evicts from this L1. After a reconnect the
/// whole L1 is cleared, because messages sent while disconnected are lost.
pub async fn listen(weak: Weak<Inner>) {
    let mut connected_before = false;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Some(l2) = inner.l2.clone() else { return };
        let Some(channel) = l2.channel() else {
            // Keys and channel wait for the scope (see `Cache::set_scope`).
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let instance = inner.instance.clone();
        drop(inner);
        let attempt = tokio::time::timeout(Duration::from_secs(2), async {
            let mut pubsub = l2.client().get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let pubsub = match attempt {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(err)) => {
                if let Some(inner) = weak.upgrade() {
                    subscribe_failed(&inner, &err.to_string());
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
            Err(_) => {
                if let Some(inner) = weak.upgrade() {
                    subscribe_failed(&inner, "timed out");
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
        };
        // Entries loaded before the subscription was up may have missed evictions.
        if let Some(inner) = weak.upgrade() {
            if connected_before {
                tracing::info!("eviction subscription restored; clearing L1 in case messages were missed");
            }
            inner.l1.invalidate_all();
            inner.subscribed.store(true, Ordering::Release);
        }
        connected_before = true;
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Some(inner) = weak.upgrade() else { return };
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            let Some((from, key)) = parse(&payload) else {
                continue;
            };
            if from == instance {
                continue;
            }
            inner.forget(key).await;
            inner.telemetry.eviction("remote").inc();
        }
        if let Some(inner) = weak.upgrade() {
            inner.subscribed.store(false, Ordering::Release);
            subscribe_failed(&inner, "connection closed");
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Sends the evictions that could not reach Redis once it answers again.
pub async fn retry_pending(weak: Weak<Inner>) {
    loop {
        tokio::time::sleep(RETRY_INTERVAL).await;
        let Some(inner) = weak.upgrade() else { return };
        let Some(l2) = inner.l2.clone() else { return };
        let instance = inner.instance.clone();
        drop(inner);
        l2.retry_pending(|key| message(&instance, key)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trip() {
        let text = message("abc", "user:42");
        assert_eq!(parse(&text), Some(("abc", "user:42")));
    }
}
