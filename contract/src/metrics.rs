//! The metric families the tuner reads from every API pod's `/metrics` (Prometheus text format).
//!
//! The app registers each [`Family`] under [`Family::name`] with its [`Family::unit`]; the text
//! exposition then carries the sample names in [`samples`] (the registry appends the unit, `_total`
//! to counters and `_bucket`/`_sum`/`_count` to histograms). The tuner matches those sample names.
//! Other families the app exports (cache, queries, jobs, memory) are not part of the contract.

/// What kind of family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic; exposed with `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

/// One family of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// The name the app registers (without unit or `_total`).
    pub name: &'static str,
    /// `seconds` for durations, else none.
    pub unit: Option<&'static str>,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Label names every sample carries (besides `le` on buckets).
    pub labels: &'static [&'static str],
    /// The HELP text.
    pub help: &'static str,
}

impl Family {
    /// The family's name in the exposition: the name and its unit.
    pub fn exposed(&self) -> String {
        match self.unit {
            Some(unit) => format!("{}_{unit}", self.name),
            None => self.name.to_owned(),
        }
    }

    /// The name of the samples the tuner reads: `_total` for counters, `_bucket` for histograms.
    pub fn sample(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.exposed()),
            Kind::Gauge => self.exposed(),
            Kind::Histogram => format!("{}_bucket", self.exposed()),
        }
    }
}

/// Label: the route template (`/api/v1/users/{id}`), never the raw path.
pub const ROUTE: &str = "route";
/// Label: the HTTP method (`GET`, ..., or `other`).
pub const METHOD: &str = "method";
/// Label: `1xx` .. `5xx`.
pub const STATUS_CLASS: &str = "status_class";
/// Label of [`DB_POOL_CONNECTIONS`]: [`STATE_IDLE`] or [`STATE_IN_USE`].
pub const STATE: &str = "state";
/// Value of [`STATE`]: open and idle.
pub const STATE_IDLE: &str = "idle";
/// Value of [`STATE`]: lent to a request.
pub const STATE_IN_USE: &str = "in_use";
/// Value of [`STATUS_CLASS`] counted as server errors.
pub const SERVER_ERROR_CLASS: &str = "5xx";

/// Finished requests by route template, method and status class.
pub const HTTP_REQUESTS: Family = Family {
    name: "perfstack_http_requests",
    unit: None,
    kind: Kind::Counter,
    labels: &[ROUTE, METHOD, STATUS_CLASS],
    help: "Finished HTTP requests by route template, method and status class",
};
/// Request latency by route template and method (buckets 1 ms .. 5 s).
pub const HTTP_REQUEST_DURATION: Family = Family {
    name: "perfstack_http_request_duration",
    unit: Some("seconds"),
    kind: Kind::Histogram,
    labels: &[ROUTE, METHOD],
    help: "HTTP request latency by route template and method",
};
/// Open pool connections by state.
pub const DB_POOL_CONNECTIONS: Family = Family {
    name: "perfstack_db_pool_connections",
    unit: None,
    kind: Kind::Gauge,
    labels: &[STATE],
    help: "Open pool connections by state",
};
/// Pool minimum in force.
pub const DB_POOL_MIN_CONNECTIONS: Family =
    gauge("perfstack_db_pool_min_connections", "Pool minimum in force");
/// Pool maximum in force.
pub const DB_POOL_MAX_CONNECTIONS: Family =
    gauge("perfstack_db_pool_max_connections", "Pool maximum in force");
/// Tasks waiting to acquire a connection.
pub const DB_POOL_WAITING: Family = gauge(
    "perfstack_db_pool_waiting",
    "Tasks waiting to acquire a connection",
);
/// Time to acquire a connection.
pub const DB_POOL_ACQUIRE_DURATION: Family = Family {
    name: "perfstack_db_pool_acquire_duration",
    unit: Some("seconds"),
    kind: Kind::Histogram,
    labels: &[],
    help: "Time to acquire a connection",
};
/// Acquires that timed out.
pub const DB_POOL_ACQUIRE_TIMEOUTS: Family = Family {
    name: "perfstack_db_pool_acquire_timeouts",
    unit: None,
    kind: Kind::Counter,
    labels: &[],
    help: "Acquires that timed out",
};
/// `generation` of the tuning file in force (0: none).
pub const DB_POOL_SETTINGS_GENERATION: Family = gauge(
    "perfstack_db_pool_settings_generation",
    "Generation of the tuning file in force (0: none)",
);
/// The server's `max_connections` (0 until first read).
pub const DB_SERVER_MAX_CONNECTIONS: Family = gauge(
    "perfstack_db_server_max_connections",
    "max_connections of the PostgreSQL server (0 until first read)",
);
/// Server slots ordinary roles cannot use (0 until first read).
pub const DB_SERVER_RESERVED_CONNECTIONS: Family = gauge(
    "perfstack_db_server_reserved_connections",
    "Server connection slots ordinary roles cannot use: superuser_reserved_connections plus reserved_connections (0 until first read)",
);

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        unit: None,
        kind: Kind::Gauge,
        labels: &[],
        help,
    }
}

/// Every family the tuner reads.
pub const TUNER_READS: [Family; 11] = [
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    DB_POOL_CONNECTIONS,
    DB_POOL_MIN_CONNECTIONS,
    DB_POOL_MAX_CONNECTIONS,
    DB_POOL_WAITING,
    DB_POOL_ACQUIRE_DURATION,
    DB_POOL_ACQUIRE_TIMEOUTS,
    DB_POOL_SETTINGS_GENERATION,
    DB_SERVER_MAX_CONNECTIONS,
    DB_SERVER_RESERVED_CONNECTIONS,
];

/// Sample names as they appear in the exposition, for matching (each equals
/// `Family::sample()` of its family; a test keeps them in step).
pub mod samples {
    /// [`super::HTTP_REQUESTS`].
    pub const HTTP_REQUESTS_TOTAL: &str = "perfstack_http_requests_total";
    /// [`super::HTTP_REQUEST_DURATION`] buckets.
    pub const HTTP_REQUEST_DURATION_BUCKET: &str = "perfstack_http_request_duration_seconds_bucket";
    /// [`super::DB_POOL_CONNECTIONS`].
    pub const DB_POOL_CONNECTIONS: &str = "perfstack_db_pool_connections";
    /// [`super::DB_POOL_MIN_CONNECTIONS`].
    pub const DB_POOL_MIN_CONNECTIONS: &str = "perfstack_db_pool_min_connections";
    /// [`super::DB_POOL_MAX_CONNECTIONS`].
    pub const DB_POOL_MAX_CONNECTIONS: &str = "perfstack_db_pool_max_connections";
    /// [`super::DB_POOL_WAITING`].
    pub const DB_POOL_WAITING: &str = "perfstack_db_pool_waiting";
    /// [`super::DB_POOL_ACQUIRE_DURATION`] buckets.
    pub const DB_POOL_ACQUIRE_DURATION_BUCKET: &str = "perfstack_db_pool_acquire_duration_seconds_bucket";
    /// [`super::DB_POOL_ACQUIRE_TIMEOUTS`].
    pub const DB_POOL_ACQUIRE_TIMEOUTS_TOTAL: &str = "perfstack_db_pool_acquire_timeouts_total";
    /// [`super::DB_POOL_SETTINGS_GENERATION`].
    pub const DB_POOL_SETTINGS_GENERATION: &str = "perfstack_db_pool_settings_generation";
    /// [`super::DB_SERVER_MAX_CONNECTIONS`].
    pub const DB_SERVER_MAX_CONNECTIONS: &str = "perfstack_db_server_max_connections";
    /// [`super::DB_SERVER_RESERVED_CONNECTIONS`].
    pub const DB_SERVER_RESERVED_CONNECTIONS: &str = "perfstack_db_server_reserved_connections";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_names_follow_from_the_families() {
        let pairs = [
            (HTTP_REQUESTS, samples::HTTP_REQUESTS_TOTAL),
            (HTTP_REQUEST_DURATION, samples::HTTP_REQUEST_DURATION_BUCKET),
            (DB_POOL_CONNECTIONS, samples::DB_POOL_CONNECTIONS),
            (DB_POOL_MIN_CONNECTIONS, samples::DB_POOL_MIN_CONNECTIONS),
            (DB_POOL_MAX_CONNECTIONS, samples::DB_POOL_MAX_CONNECTIONS),
            (DB_POOL_WAITING, samples::DB_POOL_WAITING),
            (DB_POOL_ACQUIRE_DURATION, samples::DB_POOL_ACQUIRE_DURATION_BUCKET),
            (DB_POOL_ACQUIRE_TIMEOUTS, samples::DB_POOL_ACQUIRE_TIMEOUTS_TOTAL),
            (DB_POOL_SETTINGS_GENERATION, samples::DB_POOL_SETTINGS_GENERATION),
            (DB_SERVER_MAX_CONNECTIONS, samples::DB_SERVER_MAX_CONNECTIONS),
            (
                DB_SERVER_RESERVED_CONNECTIONS,
                samples::DB_SERVER_RESERVED_CONNECTIONS,
            ),
        ];
        for (family, sample) in pairs {
            assert_eq!(family.sample(), sample);
            assert!(family.name.starts_with("perfstack_"), "{}", family.name);
        }
        assert!(TUNER_READS.iter().all(|f| pairs.iter().any(|(p, _)| p == f)));
    }
}
