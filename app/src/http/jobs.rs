//! Routes of the job system, mounted under `/api/v1`: reports (`POST /reports` -> 202 + job id,
//! `GET /reports/{id}`), jobs (`GET /jobs/{id}`, `GET /jobs?state=dead`, `POST /jobs/{id}/retry`)
//! and the email outbox (`GET /outbox`, `GET /outbox/{id}`).
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    error::{ApiError, Problem},
    extract::{Json as JsonBody, Path, Query},
    pagination,
};
use crate::jobs::{JobId, JobQueue, JobRecord, JobState, JobsError, NewJob, Queue, ledger, report};

/// What a failure of the job system means to a client: a state that cannot be listed is the
/// request's fault (422), the database is answered like everywhere else, anything of Redis is a
/// 503 with `Retry-After` (logged, never shown).
impl From<JobsError> for ApiError {
    fn from(err: JobsError) -> Self {
        match err {
            JobsError::NotListable(state) => ApiError::validation(
                "state",
                format!("jobs in state {state} cannot be listed; fetch them by id"),
            ),
            JobsError::Database(err) => ApiError::from(err),
            other => {
                tracing::warn!(error = %other, "job queue unavailable");
                ApiError::QueueUnavailable
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The routes, relative to `/api/v1`, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_report))
        .routes(routes!(get_report))
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(retry_job))
        .routes(routes!(list_outbox))
        .routes(routes!(get_outbox))
}

fn queue_of(state: &AppState) -> ApiResult<&JobQueue> {
    state.jobs.as_ref().ok_or(ApiError::QueueUnavailable)
}

fn parse_job_id(text: &str) -> ApiResult<JobId> {
    JobId::parse(text).ok_or(ApiError::NotFound("job"))
}

/// Answer of `POST /reports`: the job that computes the report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    job_id: JobId,
    state: JobState,
    href: String,
}

/// What the slow-query log shows for the transaction that accepts a report request.
const ACCEPT_REPORT: &str = "BEGIN; INSERT INTO jobs (...); <enqueue in Redis>; COMMIT";

/// Request a report; it is computed in the background by the `report` queue.
#[utoipa::path(post, path = "/api/v1/reports", tag = "jobs", request_body = report::ReportRequest,
    responses(
        (status = 202, description = "Accepted; `Location` names the job", body = Accepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The report's subject does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many report requests from this caller; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No job queue (Redis) available", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    JsonBody(request): JsonBody<report::ReportRequest>,
) -> ApiResult<Response> {
    state
        .report_limiter
        .admit(&super::rate_limit::caller(&headers, caller.map(|c| (c.0).0)))?;
    let jobs = queue_of(&state)?;
    let (sql, subject_id, field, what) = request.subject();
    let exists: bool = state
        .db
        .fetch_scalar("reports.subject_exists", sqlx::query_scalar(sql).bind(subject_id))
        .await?;
    if !exists {
        return Err(ApiError::conflict(
            Some(field),
            format!("{what} {subject_id} does not exist"),
        ));
    }
    let payload = serde_json::to_value(&request).map_err(ApiError::Encode)?;
    let job = jobs.new_job(Queue::Report, &payload);
    // The ledger row commits only once Redis has the job: a Redis failure rolls it back (503, no
    // job), and from the commit on the job survives a loss of Redis' data.
    let mut tx = state.db.begin("reports.accept", ACCEPT_REPORT).await?;
    ledger::accept(tx.conn(), &job).await?;
    jobs.store.enqueue(&job, 0).await?;
    tx.commit().await?;
    let id = job.id;
    let href = format!("/api/v1/jobs/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            job_id: id,
            state: JobState::Queued,
            href: href.clone(),
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&href) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A computed report.
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses(
        (status = 200, body = report::StoredReport),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_report(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Response> {
    let found = report::fetch(&state.db, id).await?;
    found
        .map(|r| Json(r).into_response())
        .ok_or(ApiError::NotFound("report"))
}

/// A job: state, attempts, last error and where its result is.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id (UUID)")),
    responses(
        (status = 200, description = "From Redis, or from PostgreSQL's record when Redis does not know the job or does not answer", body = JobRecord),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis does not answer and PostgreSQL has no record of the job", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_job(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_job_id(&id)?;
    let in_redis = match queue_of(&state) {
        Ok(jobs) => jobs.store.get(&id).await.map_err(ApiError::from),
        Err(err) => Err(err),
    };
    let job = match in_redis {
        Ok(Some(job)) => job,
        // Redis does not know the id (finished and forgotten, or lost with Redis' data) or does
        // not answer: the PostgreSQL record, else the answer Redis gave.
        Ok(None) => ledger::get(&state.db, &id)
            .await?
            .ok_or(ApiError::NotFound("job"))?,
        Err(err) => ledger::get(&state.db, &id).await.ok().flatten().ok_or(err)?,
    };
    Ok(Json(job).into_response())
}

/// Give a dead job a fresh set of attempts.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path)),
    responses(
        (status = 202, description = "Queued again", body = JobRecord),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not dead", body = Problem, content_type = "application/problem+json"),
    ))]
async fn retry_job(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_job_id(&id)?;
    let jobs = queue_of(&state)?;
    let store = &jobs.store;
    if !store.revive(&id).await? {
        let job = match store.get(&id).await? {
            Some(job) => job,
            None => ledger::get(&state.db, &id)
                .await?
                .ok_or(ApiError::NotFound("job"))?,
        };
        if job.state != JobState::Dead {
            return Err(ApiError::conflict(
                None,
                format!("only dead jobs can be retried; this one is {}", job.state),
            ));
        }
        // Dead in the ledger, gone from Redis with its data: enqueued again from the ledger.
        store.enqueue(&revived_from(job), 0).await?;
    }
    ledger::revived(&state.db, &id).await?;
    let job = store.get(&id).await?.ok_or(ApiError::NotFound("job"))?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A dead job known only to the ledger, to enqueue again with fresh attempts.
fn revived_from(job: JobRecord) -> NewJob {
    NewJob {
        id: job.id,
        queue: job.queue,
        payload: job.payload,
        max_attempts: job.max_attempts,
        traceparent: None,
    }
}

/// Filters of `GET /jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct JobListQuery {
    /// `queued`, `running`, `failed` or `dead` (default: the dead-letter view).
    #[param(pattern = "^(queued|running|failed|dead)$")]
    state: Option<String>,
    /// `email` or `report` (default: both).
    #[param(pattern = "^(email|report)$")]
    queue: Option<String>,
    /// Clamped to 1..=100, default 20.
    #[param(minimum = 0)]
    limit: Option<i32>,
}

const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 20;

/// Lists jobs of one state (default `dead`: the dead-letter view), per queue or of both.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobListQuery),
    responses(
        (status = 200, description = "`{data: [Job], pagination: {limit}}`", body = Object),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_jobs(State(state): State<AppState>, Query(q): Query<JobListQuery>) -> ApiResult<Response> {
    let job_state = match q.state.as_deref() {
        None => JobState::Dead,
        Some(text) => JobState::parse(text)
            .ok_or_else(|| ApiError::validation("state", "expected one of queued, running, failed, dead"))?,
    };
    let queues = match q.queue.as_deref() {
        None => Queue::ALL.to_vec(),
        Some(text) => vec![
            Queue::parse(text).ok_or_else(|| ApiError::validation("queue", "expected email or report"))?,
        ],
    };
    let limit = match q.limit {
        Some(limit) if limit < 0 => {
            return Err(ApiError::bad_request(
                Some("limit".to_owned()),
                "limit must not be negative",
            ));
        }
        Some(limit) => usize::try_from(limit).unwrap_or(MAX_LIMIT),
        None => DEFAULT_LIMIT,
    }
    .clamp(1, MAX_LIMIT);
    let store = &queue_of(&state)?.store;
    let mut data = Vec::new();
    for queue in queues {
        data.extend(store.list(queue, job_state, limit).await?);
    }
    data.truncate(limit);
    Ok(Json(serde_json::json!({ "data": data, "pagination": { "limit": limit } })).into_response())
}

/// One email as the outbox lists it.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEmail {
    pub id: i64,
    pub job_id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub transport: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    page: Option<i64>,
    limit: Option<i64>,
}

/// Emails written instead of sent (no SMTP configured) or recorded after sending; newest first.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "jobs", params(PageQuery),
    responses((status = 200, description = "`{data: [OutboxEmail], pagination}`", body = Object)))]
async fn list_outbox(State(state): State<AppState>, Query(q): Query<PageQuery>) -> ApiResult<Response> {
    let page = q.page.unwrap_or(1).max(1);
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let offset = (page - 1).saturating_mul(limit);
    // A page past every row is empty; its `hasNext` must not overflow on the way.
    let next_start = offset.saturating_add(limit);
    // language=PostgreSQL
    let sql = "SELECT id, job_id, recipient, subject, body, transport, created_at
               FROM outbox ORDER BY id DESC LIMIT $1 OFFSET $2";
    let data: Vec<OutboxEmail> = state
        .db
        .fetch_all("outbox.list", sqlx::query_as(sql).bind(limit).bind(offset))
        .await?;
    // language=PostgreSQL
    let total: i64 = state
        .db
        .fetch_value("outbox.count", "SELECT count(*) FROM outbox")
        .await?;
    Ok(Json(serde_json::json!({
        "data": data,
        "pagination": {
            "page": page, "limit": limit, "total": total,
            "totalPages": pagination::total_pages(total, limit),
            "hasNext": next_start < total, "hasPrev": page > 1,
        }
    }))
    .into_response())
}

/// One email of the outbox.
#[utoipa::path(get, path = "/api/v1/outbox/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses(
        (status = 200, body = OutboxEmail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_outbox(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Response> {
    // language=PostgreSQL
    let sql = "SELECT id, job_id, recipient, subject, body, transport, created_at FROM outbox WHERE id = $1";
    let found: Option<OutboxEmail> = state
        .db
        .fetch_optional("outbox.get", sqlx::query_as(sql).bind(id))
        .await?;
    found
        .map(|e| Json(e).into_response())
        .ok_or(ApiError::NotFound("email"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_system_answers_like_the_rest_of_the_api() {
        let busy = ApiError::from(JobsError::Database(sqlx::Error::PoolTimedOut)).into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let gone = ApiError::from(JobsError::NotConnected).into_response();
        assert_eq!(gone.status(), StatusCode::SERVICE_UNAVAILABLE);
        let listed = ApiError::from(JobsError::NotListable(JobState::Succeeded));
        assert_eq!(listed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
