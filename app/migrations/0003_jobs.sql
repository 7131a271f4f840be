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
