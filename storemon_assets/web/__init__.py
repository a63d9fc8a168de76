"""The store pages of the HTTP API and the web page at `/` (no Dagster here)."""
