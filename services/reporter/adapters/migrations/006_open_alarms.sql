-- The alarms not resolved, most severe first, then latest change: the overview's open alarms are the first rows of
-- this index instead of a sort of every open alarm, and the status reports read the open alarms by it. Resolved
-- alarms, most of the table as it ages, are not in it.
CREATE INDEX alarms_open_by_severity ON alarms (urgency, updated_at DESC, alarm_id DESC)
    WHERE state IN ('open', 'acknowledged');
