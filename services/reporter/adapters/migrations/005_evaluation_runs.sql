-- A row of `evaluations` is a run: an evaluation and its sightings until its target's next change
-- (`domain.sightings`). The row keeps the evaluation as first seen (`evaluated_at`, `days_remaining`, the jsonb),
-- how many times it was seen, and the volatile fields of its last sighting. A run seen once leaves the `last_*`
-- columns null, so this migration rewrites no row of an existing history, and a row written before it (no
-- `content_hash`) is never extended: the next evaluation of its target starts a run.
ALTER TABLE evaluations
    ADD COLUMN content_hash bytea,
    ADD COLUMN seen_count integer NOT NULL DEFAULT 1,
    ADD COLUMN last_seen_at timestamptz,
    ADD COLUMN last_observed_at timestamptz,
    ADD COLUMN last_days_remaining double precision;

-- The last sighting before `moment` of a run of `n` sightings from `first` to `last` (null: seen once), read as
-- evenly spaced; null if the run starts at or after `moment`. `domain.sightings.Run.sighting_before` in SQL.
CREATE FUNCTION sighting_before(first timestamptz, last timestamptz, n integer, moment timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN first >= moment THEN NULL
        WHEN coalesce(last, first) < moment THEN coalesce(last, first)
        ELSE first + (last - first) / (n - 1)
            * (ceil(extract(epoch FROM moment - first) / extract(epoch FROM (last - first) / (n - 1))) - 1)
    END
$$;

-- Pruning deletes runs last seen before the retention and reads the per-day levels of a period by it.
CREATE INDEX evaluations_seen_until ON evaluations ((coalesce(last_seen_at, evaluated_at)));
-- Deleting a run checks that `latest` does not point at it: without this index, a scan of `latest` per run.
CREATE INDEX latest_event ON latest (event_id);
-- Pruning deletes alarms resolved before the retention, with their transitions and deliveries.
CREATE INDEX alarms_resolved ON alarms (updated_at) WHERE state = 'resolved';
