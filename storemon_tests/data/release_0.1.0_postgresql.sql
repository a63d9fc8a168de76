-- The schema of storemon 0.1.0 (commit c4255c6, unchanged up to 52907bb) as its create_all emitted it
-- on postgresql: the starting point of the upgrade test (test_migrations.py).

CREATE TABLE business_hours (
	store_id TEXT NOT NULL,
	day_of_week SMALLINT NOT NULL,
	start_time_us BIGINT NOT NULL,
	end_time_us BIGINT NOT NULL,
	source_file TEXT NOT NULL,
	PRIMARY KEY (store_id, day_of_week, start_time_us, end_time_us)
);

COMMENT ON TABLE business_hours IS 'Opening intervals in local wall-clock time. A hours file is authoritative for the stores it names: their earlier rows are replaced.';

COMMENT ON COLUMN business_hours.store_id IS 'Opaque store identifier.';

COMMENT ON COLUMN business_hours.day_of_week IS '0 = Monday ... 6 = Sunday.';

COMMENT ON COLUMN business_hours.start_time_us IS 'Opening time, microseconds after local midnight.';

COMMENT ON COLUMN business_hours.end_time_us IS 'Closing time, microseconds after local midnight (<= start: next day).';

COMMENT ON COLUMN business_hours.source_file IS 'Name of the file these rows came from.';

CREATE TABLE ingested_files (
	file_sha256 TEXT NOT NULL,
	file_name TEXT NOT NULL,
	kind TEXT NOT NULL,
	ingested_at_us BIGINT NOT NULL,
	rows_read BIGINT NOT NULL,
	rows_loaded BIGINT NOT NULL,
	rows_rejected BIGINT NOT NULL,
	PRIMARY KEY (file_sha256)
);

COMMENT ON TABLE ingested_files IS 'Ledger of every file loaded, keyed by content hash, so a file is never loaded twice.';

COMMENT ON COLUMN ingested_files.file_sha256 IS 'SHA-256 of the file''s bytes.';

COMMENT ON COLUMN ingested_files.file_name IS 'Name of the file when it was loaded.';

COMMENT ON COLUMN ingested_files.kind IS 'Feed kind: polls, hours or timezones.';

COMMENT ON COLUMN ingested_files.ingested_at_us IS 'When it was loaded, microseconds since 1970-01-01 UTC.';

COMMENT ON COLUMN ingested_files.rows_read IS 'Data rows in the file (blank lines excluded).';

COMMENT ON COLUMN ingested_files.rows_loaded IS 'Rows accepted (before de-duplication against earlier loads).';

COMMENT ON COLUMN ingested_files.rows_rejected IS 'Rows sent to rejected_rows.';

CREATE TABLE rejected_rows (
	file_sha256 TEXT NOT NULL,
	line_number BIGINT NOT NULL,
	file_name TEXT NOT NULL,
	kind TEXT NOT NULL,
	store_id TEXT,
	raw_text TEXT NOT NULL,
	reason TEXT NOT NULL,
	PRIMARY KEY (file_sha256, line_number)
);

COMMENT ON TABLE rejected_rows IS 'Input rows that could not be parsed, kept with their origin and the reason.';

COMMENT ON COLUMN rejected_rows.file_sha256 IS 'Content hash of the file the row came from.';

COMMENT ON COLUMN rejected_rows.line_number IS '1-based line number in that file (the header is line 1).';

COMMENT ON COLUMN rejected_rows.file_name IS 'Name of the file the row came from.';

COMMENT ON COLUMN rejected_rows.kind IS 'Feed kind: polls, hours or timezones.';

COMMENT ON COLUMN rejected_rows.store_id IS 'The row''s store_id where one could be read.';

COMMENT ON COLUMN rejected_rows.raw_text IS 'The line exactly as it appeared.';

COMMENT ON COLUMN rejected_rows.reason IS 'Why the row was rejected.';

CREATE TABLE store_schedules (
	store_id TEXT NOT NULL,
	day_of_week SMALLINT NOT NULL,
	start_time_us BIGINT NOT NULL,
	end_time_us BIGINT NOT NULL,
	timezone TEXT NOT NULL,
	PRIMARY KEY (store_id, day_of_week, start_time_us, end_time_us)
);

COMMENT ON TABLE store_schedules IS 'Each store''s normalised weekly schedule, as last materialised for its store partition: defaults applied (no rows = open around the clock) and timezone resolved.';

COMMENT ON COLUMN store_schedules.store_id IS 'Opaque store identifier.';

COMMENT ON COLUMN store_schedules.day_of_week IS '0 = Monday ... 6 = Sunday.';

COMMENT ON COLUMN store_schedules.start_time_us IS 'Opening time, microseconds after local midnight.';

COMMENT ON COLUMN store_schedules.end_time_us IS 'Closing time, microseconds after local midnight (<= start: next day).';

COMMENT ON COLUMN store_schedules.timezone IS 'IANA timezone used (America/Chicago when the store has none).';

CREATE TABLE store_status_polls (
	store_id TEXT NOT NULL,
	polled_at_us BIGINT NOT NULL,
	status TEXT NOT NULL,
	PRIMARY KEY (store_id, polled_at_us, status)
);

COMMENT ON TABLE store_status_polls IS 'Every distinct status poll ever loaded (exact duplicates count once).';

COMMENT ON COLUMN store_status_polls.store_id IS 'Opaque store identifier (never parsed as a number).';

COMMENT ON COLUMN store_status_polls.polled_at_us IS 'Poll instant, microseconds since 1970-01-01 UTC.';

COMMENT ON COLUMN store_status_polls.status IS '''active'' or ''inactive''.';

CREATE TABLE store_timezones (
	store_id TEXT NOT NULL,
	timezone_str TEXT NOT NULL,
	source_file TEXT NOT NULL,
	PRIMARY KEY (store_id)
);

COMMENT ON TABLE store_timezones IS 'Each store''s IANA timezone; the last row loaded for a store wins.';

COMMENT ON COLUMN store_timezones.store_id IS 'Opaque store identifier.';

COMMENT ON COLUMN store_timezones.timezone_str IS 'IANA timezone name, e.g. America/Chicago.';

COMMENT ON COLUMN store_timezones.source_file IS 'Name of the file this row came from.';
