-- The record of every accepted job: PostgreSQL holds it from the transaction that accepted the job
-- (a report request, a task assignment) until it finished and a while after; Redis is the fast
-- queue. When Redis loses its data the workers' reconciler enqueues the unfinished rows again
-- (same job id, so the handlers' idempotency keeps each effect single), and `GET /jobs/{id}`
-- answers from here. Updated when an attempt ends, not when it starts: `running` is Redis' view.
-- The indexes are built here, not by `migrate`'s concurrent builds: the table is new and empty.
CREATE TABLE jobs (
    job_id       TEXT PRIMARY KEY,
    queue        TEXT NOT NULL CHECK (queue IN ('email', 'report')),
    payload      JSONB NOT NULL,
    state        TEXT NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    last_error   TEXT,
    result       JSONB,
    traceparent  TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ
);
-- The reconciler walks unfinished jobs by id; pruning finds finished ones by age.
CREATE INDEX jobs_unfinished ON jobs (job_id) WHERE finished_at IS NULL;
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
