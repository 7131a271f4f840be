//! The connection budget: `pods(maxReplicas) * poolMax + reserved <= max_connections`, at every
//! moment, not only at rest.
//!
//! An HPA that scales out while every pod may open `poolMax` connections can exhaust PostgreSQL. And
//! more API pods than `maxReplicas` can be alive at once: a rolling update adds the Deployment's
//! surge, and pods still terminating keep their pools until they exit. [`pods_at_most`] counts them
//! (the builders make the bound true: `minReadySeconds` and the HPA's scale-down policy, see its
//! doc). [`ConnectionBudget::plan`] turns the spec's wishes into bounds that keep the invariant, and
//! says with the numbers what it had to give up (the `ConnectionBudget` condition). A pool change
//! briefly keeps the old pool open beside the new one on every pod: `transition.rs` orders the
//! changes around that.
use std::fmt;

/// The API Deployment's `maxSurge`, percent of its replicas (rounded up, as Kubernetes does).
pub const MAX_SURGE_PERCENT: u32 = 25;
/// The API pods' `terminationGracePeriodSeconds`: a terminating pod holds its pool at most this
/// long. The Deployment's `minReadySeconds` and the HPA's scale-down period equal it, so that the
/// pods one rollout step or one scale-down step removed have exited before the next step removes
/// more.
pub const TERMINATION_GRACE_SECONDS: u32 = 30;

/// The Deployment's surge for `replicas`: `ceil(replicas * 25 %)` pods above them during a rollout.
pub fn surge(replicas: u32) -> u32 {
    replicas.saturating_mul(MAX_SURGE_PERCENT).div_ceil(100)
}

/// The most API pods alive at once under an HPA maximum of `max_replicas`: the replicas, the
/// rollout's surge, the pods of one rollout step still terminating (at most the surge, since
/// `minReadySeconds` = the grace period) and the pods of one scale-down step still terminating (at
/// most the surge, the HPA's scale-down policy removing no more per grace period).
pub fn pods_at_most(max_replicas: u32) -> u32 {
    max_replicas.saturating_add(surge(max_replicas).saturating_mul(3))
}

/// Which processes besides the replicas can hold connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transit {
    /// API pods of a Deployment under an HPA: a rollout's surge and terminating pods
    /// ([`pods_at_most`]).
    #[default]
    Deployment,
    /// One process and nothing else (`perfstack-operator local`).
    None,
}

/// Bounds for the per-pod connection pool (`spec.pool.min` / `spec.pool.max`).
///
/// `min` is the smallest pool maximum the tuner will set (and the pool minimum it keeps);
/// `max` the largest pool maximum it may grow to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolBounds {
    /// Smallest pool size per pod.
    pub min: u32,
    /// Largest pool size per pod.
    pub max: u32,
}

/// Bounds for the app's replicas (`spec.app.replicas`): the HPA floor and ceiling move inside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaBounds {
    /// Lowest HPA `minReplicas` the tuner may set.
    pub min: u32,
    /// Highest HPA `maxReplicas` the tuner may set (the budget can lower it).
    pub max: u32,
}

/// PostgreSQL's connection limit and the share kept for everyone but the app pods
/// (migrations, admins, monitoring, `superuser_reserved_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// `max_connections` of the database (the bundled spec, or `SHOW max_connections`).
    pub max_connections: u32,
    /// Connections the app pods must leave free.
    pub reserved: u32,
    /// Where `max_connections` came from (shown in the condition message).
    pub source: MaxConnectionsSource,
    /// Which processes besides the replicas hold connections.
    pub transit: Transit,
}

/// Where the budget's `max_connections` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxConnectionsSource {
    /// `spec.database.bundled.maxConnections` (the operator configures the server with it).
    #[default]
    Spec,
    /// Reported by the app pods (`perfstack_db_server_max_connections`, from `SHOW max_connections`):
    /// the lowest report of the last interval, so one pod cannot inflate the budget.
    Observed,
    /// An External database no pod has reported yet: a conservative assumption.
    Assumed,
}

impl MaxConnectionsSource {
    /// Words for the condition message.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Spec => "as configured (spec.database.bundled.maxConnections)",
            Self::Observed => "on the external server: the lowest any app pod reported",
            Self::Assumed => "assumed for the external server until the app pods report it",
        }
    }
}

/// The limits of a database server as the app pods report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `max_connections` (`perfstack_db_server_max_connections`).
    pub max_connections: u32,
    /// Slots ordinary roles cannot use (`perfstack_db_server_reserved_connections`).
    pub reserved: u32,
}

/// How the spec fared against the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetVerdict {
    /// `replicas.max * pool.max` fits as asked.
    Fits,
    /// Fits at the pool minimum: the pool ceiling is lowered to what `replicas.max` allows.
    PoolCapped,
    /// Does not fit even at the pool minimum: `maxReplicas` is lowered (pool at its minimum).
    ReplicasCapped,
    /// Not even one pod at the pool minimum fits: a single pod gets what is left.
    Exhausted,
}

impl BudgetVerdict {
    /// The `ConnectionBudget` condition's status: the spec fits (possibly with a lower pool ceiling).
    pub fn satisfied(self) -> bool {
        matches!(self, Self::Fits | Self::PoolCapped)
    }

    /// PascalCase reason for the condition and Events.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Fits => "Fits",
            Self::PoolCapped => "PoolCapped",
            Self::ReplicasCapped => "ReplicasCapped",
            Self::Exhausted => "Exhausted",
        }
    }
}

/// Bounds that keep the invariant, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetPlan {
    /// The budget planned against.
    pub budget: ConnectionBudget,
    /// What the spec asked for.
    pub requested_replicas: ReplicaBounds,
    /// What the spec asked for.
    pub requested_pool: PoolBounds,
    /// Highest `maxReplicas` allowed (>= 1; with its surge and terminating pods, see
    /// [`pods_at_most`]).
    pub replicas_max: u32,
    /// Highest `minReplicas` allowed (<= `replicas_max`).
    pub replicas_min: u32,
    /// Highest pool maximum per pod allowed at `replicas_max` (>= 1).
    pub pool_max: u32,
    /// Pool minimum per pod (<= `pool_max`).
    pub pool_min: u32,
    /// The most one pod may ever get: the spec's pool max, within what one replica with its transit
    /// leaves. The tuner may grow the pool up to here by lowering `maxReplicas` below `replicas_max`.
    pub pool_limit: u32,
    /// The outcome.
    pub verdict: BudgetVerdict,
}

impl ConnectionBudget {
    /// Connections the app pods may share: `max_connections - reserved` (0 when reserved is larger).
    pub fn available(&self) -> u32 {
        self.max_connections.saturating_sub(self.reserved)
    }

    /// The most processes holding connections at once under a maximum of `replicas`.
    pub fn pods(&self, replicas: u32) -> u32 {
        match self.transit {
            Transit::Deployment => pods_at_most(replicas),
            Transit::None => replicas,
        }
    }

    /// Whether an HPA maximum of `replicas` with `pool_max` connections per pod stays within the
    /// budget, every pod that can be alive at once counted ([`Self::pods`]).
    pub fn allows(&self, replicas: u32, pool_max: u32) -> bool {
        u64::from(self.pods(replicas)) * u64::from(pool_max) <= u64::from(self.available())
    }

    /// Largest pool per pod under an HPA maximum of `replicas` (0 when `replicas` is 0).
    pub fn pool_for(&self, replicas: u32) -> u32 {
        self.available().checked_div(self.pods(replicas)).unwrap_or(0)
    }

    /// Largest HPA maximum whose pods' pools of `pool_max` fit (0 when `pool_max` is 0, or when not
    /// even one pod with its transit fits).
    pub fn replicas_for(&self, pool_max: u32) -> u32 {
        let Some(pods) = self.available().checked_div(pool_max) else {
            return 0;
        };
        // `pods(r)` is increasing: the largest r with pods(r) <= pods, from above.
        let mut replicas = pods;
        while replicas > 0 && self.pods(replicas) > pods {
            replicas -= 1;
        }
        replicas
    }

    /// Fit the spec's replica and pool bounds into the budget, lowering the pool ceiling first
    /// (the tuner can grow it back within the budget) and `maxReplicas` only when even the pool
    /// minimum does not fit. Bounds given in the wrong order are read as `min <= max`.
    pub fn plan(&self, replicas: ReplicaBounds, pool: PoolBounds) -> BudgetPlan {
        let r_max = replicas.max.max(replicas.min).max(1);
        let r_min = replicas.min.min(r_max).max(1);
        let p_max = pool.max.max(pool.min).max(1);
        let p_min = pool.min.min(p_max).max(1);
        let (replicas_max, pool_max, verdict) = if self.allows(r_max, p_max) {
            (r_max, p_max, BudgetVerdict::Fits)
        } else if self.allows(r_max, p_min) {
            (r_max, self.pool_for(r_max), BudgetVerdict::PoolCapped)
        } else if self.allows(1, p_min) {
            (self.replicas_for(p_min), p_min, BudgetVerdict::ReplicasCapped)
        } else {
            (1, self.pool_for(1).max(1), BudgetVerdict::Exhausted)
        };
        BudgetPlan {
            budget: *self,
            requested_replicas: replicas,
            requested_pool: pool,
            replicas_max,
            replicas_min: r_min.min(replicas_max),
            pool_max,
            pool_min: p_min.min(pool_max),
            pool_limit: p_max.min(self.pool_for(1)).max(pool_max),
            verdict,
        }
    }
}

impl BudgetPlan {
    /// Connections the plan may open at most: every pod alive at once at `replicas_max` times
    /// `pool_max`, plus the reserve.
    pub fn peak_connections(&self) -> u64 {
        u64::from(self.budget.pods(self.replicas_max)) * u64::from(self.pool_max)
            + u64::from(self.budget.reserved)
    }

    /// `maxReplicas N (+T in transit)`: the replicas and the pods a rollout and terminations may add.
    fn replicas_text(&self, replicas: u32) -> String {
        match self.budget.pods(replicas) - replicas {
            0 => format!("maxReplicas {replicas}"),
            transit => format!("maxReplicas {replicas} (+{transit} in transit)"),
        }
    }
}

impl fmt::Display for BudgetPlan {
    /// The condition message: the arithmetic, so a reader can check it, and where
    /// `max_connections` came from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_arithmetic(f)?;
        write!(
            f,
            " (max_connections {} {})",
            self.budget.max_connections,
            self.budget.source.describe()
        )
    }
}

impl BudgetPlan {
    fn fmt_arithmetic(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.budget;
        let (rr, rp) = (self.requested_replicas, self.requested_pool);
        let pods = u64::from(b.pods(rr.max));
        let asked = pods * u64::from(rp.max) + u64::from(b.reserved);
        let at_min = pods * u64::from(rp.min) + u64::from(b.reserved);
        let requested = self.replicas_text(rr.max);
        match self.verdict {
            BudgetVerdict::Fits => write!(
                f,
                "{requested} x pool max {} + reserved {} = {asked} <= max_connections {}",
                rp.max, b.reserved, b.max_connections
            ),
            BudgetVerdict::PoolCapped => write!(
                f,
                "{requested} x pool max {} + reserved {} = {asked} > max_connections {}; \
                 pool max per pod capped at {} ({} total)",
                rp.max,
                b.reserved,
                b.max_connections,
                self.pool_max,
                self.peak_connections()
            ),
            BudgetVerdict::ReplicasCapped => write!(
                f,
                "even at pool min: {requested} x pool min {} + reserved {} = {at_min} > \
                 max_connections {}; maxReplicas lowered to {} ({} total)",
                rp.min,
                b.reserved,
                b.max_connections,
                self.replicas_max,
                self.peak_connections()
            ),
            BudgetVerdict::Exhausted => write!(
                f,
                "max_connections {} - reserved {} leaves {} connections, fewer than pool min {} \
                 for a single pod and its transit ({} pods); 1 replica with pool max {}",
                b.max_connections,
                b.reserved,
                b.available(),
                rp.min,
                b.pods(1),
                self.pool_max
            ),
        }
    }
}

#[cfg(test)]
mod tests;
