-- The alarmer's state: open and resolved alarms, every transition, the failure run of each target,
-- the events it has consumed, and the outbox of the alarm events it publishes.

CREATE TABLE alarms (
    id uuid PRIMARY KEY,
    target_key text NOT NULL,
    fingerprint text NOT NULL,          -- SHA-256 hex of the leaf; '' when no certificate was presented
    trigger text NOT NULL CHECK (trigger IN ('expiry', 'security', 'chain', 'validity', 'reachability')),
    level text NOT NULL CHECK (level IN ('critical', 'warning', 'info', 'ok')),
    state text NOT NULL CHECK (state IN ('open', 'resolved')),
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    resolved_at timestamptz,
    last_event jsonb NOT NULL           -- the AlarmEvent of the latest transition
);

-- At most one open alarm per key; a resolved key can open again later as a new alarm.
CREATE UNIQUE INDEX alarms_open_key ON alarms (target_key, fingerprint, trigger) WHERE state = 'open';

CREATE TABLE alarm_history (
    id bigserial PRIMARY KEY,
    alarm_id uuid NOT NULL REFERENCES alarms (id),
    at timestamptz NOT NULL,
    transition text NOT NULL,
    from_level text,
    to_level text NOT NULL,
    cause text NOT NULL,                -- who or what caused it, e.g. 'evaluation <event id>'
    evaluation_id text
);
CREATE INDEX alarm_history_by_alarm ON alarm_history (alarm_id, at);

CREATE TABLE target_health (
    target_key text PRIMARY KEY,
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_observed_at timestamptz
);
