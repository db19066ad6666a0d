-- Discovery: one row per configured sweep (its schedule and claim) and every TLS endpoint a sweep has found.

CREATE TABLE IF NOT EXISTS discovery_sweeps (
    name text PRIMARY KEY,
    interval_seconds integer NOT NULL,
    lease_seconds integer NOT NULL,
    next_due timestamptz NOT NULL,
    running_until timestamptz,  -- set while a replica runs the sweep, so no other replica starts it meanwhile
    enabled boolean NOT NULL DEFAULT true,
    last_started_at timestamptz,
    last_finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS discovery_sweeps_due ON discovery_sweeps (next_due) WHERE enabled;

CREATE TABLE IF NOT EXISTS discovered_endpoints (
    sweep text NOT NULL,
    address text NOT NULL,
    port integer NOT NULL,
    target_key text NOT NULL,
    state text NOT NULL CHECK (state IN ('present', 'gone')),
    missing_sweeps integer NOT NULL DEFAULT 0,  -- consecutive sweeps that did not find it
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    state_since timestamptz NOT NULL,
    PRIMARY KEY (sweep, address, port)
);
