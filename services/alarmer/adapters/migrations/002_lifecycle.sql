-- The alarm lifecycle: acknowledged alarms and reminder due times.

ALTER TABLE alarms DROP CONSTRAINT alarms_state_check;
ALTER TABLE alarms ADD CONSTRAINT alarms_state_check CHECK (state IN ('open', 'acknowledged', 'resolved'));

-- When the next reminder is due; NULL once acknowledged or resolved, or when the level's cadence is off.
ALTER TABLE alarms ADD COLUMN next_reminder_at timestamptz;
ALTER TABLE alarms ADD CONSTRAINT alarms_reminder_only_when_open CHECK (next_reminder_at IS NULL OR state = 'open');

-- Alarms opened before reminders existed get the default cadence (critical daily, warning weekly) counted from
-- their last notification; an owner's or rule's cadence applies from their next transition.
UPDATE alarms
SET next_reminder_at = updated_at + CASE level WHEN 'critical' THEN interval '1 day' ELSE interval '7 days' END
WHERE state = 'open' AND level IN ('critical', 'warning');

-- An acknowledged alarm is still the one alarm of its key: only a resolve frees the key.
DROP INDEX alarms_open_key;
CREATE UNIQUE INDEX alarms_open_key ON alarms (target_key, fingerprint, trigger) WHERE state <> 'resolved';

-- The reminder sweep's due selection reads only open alarms, earliest due first.
CREATE INDEX alarms_reminder_due ON alarms (next_reminder_at) WHERE state = 'open' AND next_reminder_at IS NOT NULL;
