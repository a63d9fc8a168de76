-- The schema of storemon 0.1.0 (commit c4255c6, unchanged up to 52907bb) as its create_all emitted it
-- on sqlite: the starting point of the upgrade test (test_migrations.py).

CREATE TABLE business_hours (
	store_id TEXT NOT NULL,
	day_of_week SMALLINT NOT NULL,
	start_time_us BIGINT NOT NULL,
	end_time_us BIGINT NOT NULL,
	source_file TEXT NOT NULL,
	PRIMARY KEY (store_id, day_of_week, start_time_us, end_time_us)
);

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

CREATE TABLE store_schedules (
	store_id TEXT NOT NULL,
	day_of_week SMALLINT NOT NULL,
	start_time_us BIGINT NOT NULL,
	end_time_us BIGINT NOT NULL,
	timezone TEXT NOT NULL,
	PRIMARY KEY (store_id, day_of_week, start_time_us, end_time_us)
);

CREATE TABLE store_status_polls (
	store_id TEXT NOT NULL,
	polled_at_us BIGINT NOT NULL,
	status TEXT NOT NULL,
	PRIMARY KEY (store_id, polled_at_us, status)
);

CREATE TABLE store_timezones (
	store_id TEXT NOT NULL,
	timezone_str TEXT NOT NULL,
	source_file TEXT NOT NULL,
	PRIMARY KEY (store_id)
);
