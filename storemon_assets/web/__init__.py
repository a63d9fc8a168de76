"""The store pages of the HTTP API and the web page at `/` (no Dagster here)."""

from urllib.parse import quote


def timeline_path(store_id: str) -> str:
    """Where the API draws a store's week: the id percent-encoded, as ids are opaque text (a `/`,
    a space or a `#` in one must not change the path)."""
    return f"/stores/{quote(store_id, safe='')}/timeline.svg"
