-- The reporter's history: every evaluation, alarm transition and delivery it has seen, the latest
-- evaluation per target, and the reports it published.

CREATE TABLE evaluations (
    event_id text PRIMARY KEY,
    target_key text NOT NULL,
    fingerprint text,
    evaluated_at timestamptz NOT NULL,
    level text NOT NULL,
    grade text,
    days_remaining double precision,
    evaluation jsonb NOT NULL
);
CREATE INDEX evaluations_target ON evaluations (target_key, evaluated_at DESC);
CREATE INDEX evaluations_fingerprint ON evaluations (fingerprint, evaluated_at DESC);

-- One row per target: the newest evaluation seen, whatever order the events arrived in.
CREATE TABLE latest (
    target_key text PRIMARY KEY,
    event_id text NOT NULL REFERENCES evaluations (event_id),
    evaluated_at timestamptz NOT NULL
);

CREATE TABLE alarm_events (
    event_id text PRIMARY KEY,
    alarm_id text NOT NULL,
    transition text NOT NULL,
    level text NOT NULL,
    fingerprint text NOT NULL,
    at timestamptz NOT NULL,
    event jsonb NOT NULL
);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm_id, at);
CREATE INDEX alarm_events_at ON alarm_events (at);
CREATE INDEX alarm_events_fingerprint ON alarm_events (fingerprint);

CREATE TABLE notifications (
    event_id text PRIMARY KEY,
    alarm_id text NOT NULL,
    channel text NOT NULL,
    recipient text NOT NULL,
    ok boolean NOT NULL,
    at timestamptz NOT NULL,
    event jsonb NOT NULL
);
CREATE INDEX notifications_alarm ON notifications (alarm_id, at);

-- `key` names the report (`daily/2026-11-27`); (kind, period) is unique so racing replicas publish once.
CREATE TABLE reports (
    key text PRIMARY KEY,
    kind text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    location text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    event jsonb NOT NULL,
    UNIQUE (kind, period_start, period_end)
);
