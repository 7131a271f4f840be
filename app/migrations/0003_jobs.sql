-- Effects of background jobs. Each row carries the id of the job that produced it, unique, so a job
-- that runs twice (at-least-once delivery after a crash) takes effect once: handlers insert with
-- ON CONFLICT (job_id) DO NOTHING in the same transaction as the rest of their work.

-- Emails: written here when no SMTP server is configured (the local "outbox"), and recorded here after
-- an SMTP delivery so that a retried job does not send twice.
CREATE TABLE outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    transport   TEXT NOT NULL CHECK (transport IN ('outbox', 'smtp')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT outbox_job_id_key UNIQUE (job_id)
);

-- Reports computed by the `report` queue from the tasks tables.
CREATE TABLE reports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    parameters  JSONB NOT NULL,
    result      JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT reports_job_id_key UNIQUE (job_id)
);

-- Jobs requested inside a database transaction (the email for a task assignment), committed with
-- the change that caused them and moved to Redis by the workers' relay. A Redis outage or a crash
-- right after the commit therefore cannot lose them; the relay enqueues by job id, which Redis
-- ignores when the job exists, so moving a request twice enqueues it once.
CREATE TABLE job_requests (
    job_id      TEXT PRIMARY KEY,
    queue       TEXT NOT NULL CHECK (queue IN ('email', 'report')),
    payload     JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
