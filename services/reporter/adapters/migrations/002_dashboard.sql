-- The dashboard's lists filter, sort and page in SQL without reading an evaluation's jsonb: each target's latest
-- evaluation carries the columns they need, and every alarm has one row with its state as of its latest
-- transition.

ALTER TABLE latest
    ADD COLUMN level text,
    ADD COLUMN grade text,
    ADD COLUMN owner text,
    ADD COLUMN server text,
    ADD COLUMN fingerprint text,
    ADD COLUMN subject text,
    ADD COLUMN issuer text,
    ADD COLUMN not_after timestamptz,
    ADD COLUMN reachable boolean,
    -- What `q` searches (`domain.estate.searchable_text`): target key, fingerprint, subject, issuer, SANs.
    ADD COLUMN search text;

UPDATE latest l SET
    level = e.level,
    grade = e.grade,
    owner = e.evaluation->>'owner',
    server = e.evaluation#>>'{target,server}',
    fingerprint = e.fingerprint,
    subject = e.evaluation#>>'{certificate,subject}',
    issuer = e.evaluation#>>'{certificate,issuer}',
    not_after = (e.evaluation#>>'{certificate,not_after}')::timestamptz,
    reachable = (e.evaluation->>'reachable')::boolean,
    search = concat_ws(' ', e.target_key, e.fingerprint, e.evaluation#>>'{certificate,subject}',
        e.evaluation#>>'{certificate,issuer}', e.evaluation#>>'{certificate,san}')
FROM evaluations e WHERE e.event_id = l.event_id;

ALTER TABLE latest
    ALTER COLUMN level SET NOT NULL,
    ALTER COLUMN reachable SET NOT NULL,
    ALTER COLUMN search SET NOT NULL,
    -- The sort keys, ascending: the most severe level first, then the soonest expiry, targets without a
    -- certificate last.
    ADD COLUMN urgency smallint NOT NULL GENERATED ALWAYS AS (
        CASE level WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 3 END) STORED,
    ADD COLUMN expiry timestamptz NOT NULL GENERATED ALWAYS AS (coalesce(not_after, 'infinity')) STORED;

CREATE INDEX latest_by_urgency ON latest (urgency, expiry, target_key);
CREATE INDEX latest_by_expiry ON latest (expiry, target_key);
CREATE INDEX latest_level_grade ON latest (level, grade);
CREATE INDEX latest_grade ON latest (grade);
CREATE INDEX latest_owner ON latest (owner);
CREATE INDEX latest_server ON latest (server);
CREATE INDEX latest_issuer ON latest (issuer);
CREATE INDEX latest_fingerprint ON latest (fingerprint);

-- Text search by substring wants trigrams. pg_trgm ships with PostgreSQL's contrib, which the embedded server of
-- a local `certmon run` lacks: there, and where the role may not create it, `q` scans the table instead.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX latest_search ON latest USING gin (search gin_trgm_ops);
    END IF;
EXCEPTION WHEN insufficient_privilege OR undefined_object THEN
    RAISE NOTICE 'pg_trgm unavailable (%): text search scans latest', SQLERRM;
END
$$;

-- One row per alarm: its state as of its latest transition (the last by time, then by event id) and when it was
-- first raised.
CREATE TABLE alarms (
    alarm_id text PRIMARY KEY,
    event_id text NOT NULL,
    state text NOT NULL,
    level text NOT NULL,
    urgency smallint NOT NULL GENERATED ALWAYS AS (
        CASE level WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 3 END) STORED,
    trigger text NOT NULL,
    target_key text NOT NULL,
    fingerprint text NOT NULL,
    owners text[] NOT NULL,
    acknowledged_by text,
    acknowledged_at timestamptz,
    raised_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX alarms_recent ON alarms (updated_at DESC, alarm_id DESC);
CREATE INDEX alarms_state ON alarms (state, updated_at DESC, alarm_id DESC);
CREATE INDEX alarms_level ON alarms (level, updated_at DESC, alarm_id DESC);
CREATE INDEX alarms_owners ON alarms USING gin (owners);

INSERT INTO alarms (alarm_id, event_id, state, level, trigger, target_key, fingerprint, owners, acknowledged_by,
                    acknowledged_at, raised_at, updated_at)
SELECT DISTINCT ON (alarm_id)
    alarm_id, event_id, coalesce(event->>'state', CASE transition WHEN 'resolved' THEN 'resolved' ELSE 'open' END),
    level, event#>>'{key,trigger}', event#>>'{key,target_key}', fingerprint,
    ARRAY(SELECT o->>'name' FROM jsonb_array_elements(coalesce(event->'owners', '[]')) AS o),
    event#>>'{acknowledgement,by}', (event#>>'{acknowledgement,at}')::timestamptz,
    min(at) OVER (PARTITION BY alarm_id), at
FROM alarm_events
ORDER BY alarm_id, at DESC, event_id DESC;
