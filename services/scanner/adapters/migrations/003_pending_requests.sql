-- At most one scan request per target in flight, and the claim as one statement.
--
-- pending_due_at: the slot (`due_at`) of the target's scan request not yet observed; NULL when none is pending.
-- pending_until: when that request counts as lost (dead-lettered, its scanner killed) and the target may be
--   claimed again; NULL when none is pending. The claim sets both, recording the observation of that very
--   request clears them.
-- jitter: the target's fixed offset after each interval (`domain.schedule.jitter`), written by sync and
--   discovery from the key and interval, so the claim computes the next due time in SQL. Existing rows get
--   theirs at the next sync (every start, right after this migration) or sweep; until then they have none.
ALTER TABLE targets
    ADD COLUMN IF NOT EXISTS pending_due_at timestamptz,
    ADD COLUMN IF NOT EXISTS pending_until timestamptz,
    ADD COLUMN IF NOT EXISTS jitter interval NOT NULL DEFAULT '0';

-- A target is claimable once it is due and any pending request's lease has run out (GREATEST ignores NULL);
-- the claim reads this index in that order, so targets waiting on their request are never walked over.
CREATE INDEX IF NOT EXISTS targets_claimable ON targets (GREATEST(next_due, pending_until), key) WHERE enabled;
DROP INDEX IF EXISTS targets_due;
-- The scheduler counts the pending requests at each tick to keep them under its bound.
CREATE INDEX IF NOT EXISTS targets_pending ON targets (pending_until) WHERE pending_due_at IS NOT NULL;
