//! The spans the API opens around its calls to PostgreSQL and Redis, named and attributed after the
//! OpenTelemetry database conventions (`db.system.name`, `db.operation.name`, `db.query.text`). They
//! are debug spans, opened only inside another span (a request, a job), so that background loops
//! (pool watchers, the reaper) do not start a trace of their own; without trace export their
//! callsites are disabled and they cost nothing.
use tracing::Span;

/// A client span for the database operation `op` (`users.get`, ...). The statement text (with `$n`
/// placeholders, never values) is recorded only while traces are exported.
pub fn database(op: &'static str, sql: &str) -> Span {
    if Span::current().is_none() {
        return Span::none();
    }
    let span = tracing::debug_span!(
        "db",
        otel.name = op,
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = op,
        db.query.text = tracing::field::Empty,
    );
    if perfstack_otel::enabled() && !span.is_disabled() {
        span.record("db.query.text", crate::db::loggable_statement(sql));
    }
    span
}

/// A client span for the Redis exchange `operation` (`get`, `evict`, `enqueue`, ...).
pub fn redis(operation: &'static str) -> Span {
    if Span::current().is_none() {
        return Span::none();
    }
    tracing::debug_span!(
        "redis",
        otel.name = operation,
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = operation,
    )
}
