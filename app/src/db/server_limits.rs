//! The database server's connection limits (`max_connections`, and the slots ordinary roles
//! cannot use), read at start and then rarely, and exported as gauges so the operator can keep
//! the connection budget of an External database without connecting to it itself.
use std::time::Duration;

use sqlx::FromRow;

use super::Db;

/// Connection limits of the PostgreSQL server this app talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct ServerLimits {
    /// `max_connections`.
    pub max_connections: i64,
    /// `superuser_reserved_connections` plus, on PostgreSQL 16+, `reserved_connections`: slots the
    /// app's (ordinary) role can never use.
    pub reserved_connections: i64,
}

/// How often [`watch`] reads the limits again (they change only with a server restart).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

// language=PostgreSQL
const LIMITS_SQL: &str = "SELECT current_setting('max_connections')::bigint AS max_connections,
       current_setting('superuser_reserved_connections')::bigint
         + COALESCE(current_setting('reserved_connections', true)::bigint, 0) AS reserved_connections";

impl Db {
    /// Reads the server's connection limits.
    pub async fn server_limits(&self) -> Result<ServerLimits, sqlx::Error> {
        self.fetch_row("server.limits", LIMITS_SQL).await
    }

    /// Reads the limits and puts them into the gauges; a failure is logged and leaves the
    /// gauges as they were (0 until the first successful read).
    pub async fn refresh_server_limits(&self) -> Option<ServerLimits> {
        match self.server_limits().await {
            Ok(limits) => {
                self.telemetry()
                    .server_limits(limits.max_connections, limits.reserved_connections);
                Some(limits)
            }
            Err(error) => {
                tracing::warn!(%error, "could not read the database server's connection limits");
                None
            }
        }
    }
}

/// Refreshes the server-limit gauges now and then every `every`, forever (spawn it).
pub async fn watch(db: Db, every: Duration) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        ticks.tick().await;
        let limits = db.refresh_server_limits().await;
        if limits.is_some() && limits != last {
            if let Some(l) = limits {
                tracing::info!(
                    max_connections = l.max_connections,
                    reserved_connections = l.reserved_connections,
                    "database server connection limits"
                );
            }
            last = limits;
        }
    }
}
