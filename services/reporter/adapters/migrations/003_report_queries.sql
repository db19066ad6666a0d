-- The weekly and monthly reports read evaluations by time: the per-day level counts of a period scan this
-- index instead of the whole table.
CREATE INDEX evaluations_at ON evaluations (evaluated_at);
