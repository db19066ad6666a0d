-- Custom reports share a kind (`custom`) and may share a period, so a report is once per (kind, name, period);
-- the built-in kinds have the empty name.
ALTER TABLE reports ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE reports DROP CONSTRAINT reports_kind_period_start_period_end_key;
ALTER TABLE reports ADD CONSTRAINT reports_once_per_period UNIQUE (kind, name, period_start, period_end);
