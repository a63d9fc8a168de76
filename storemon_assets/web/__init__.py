"""The store pages of the HTTP API and the web page at `/` (no Dagster here)."""

from urllib.parse import quote

PATH_ID_MAX_CHARS = 200  # a store id in a path (/stores/<id>); any longer one has the query form
QUERY_ID_MAX_CHARS = 4000  # in a query (/store?store_id=<id>); encoded, it stays inside a request line's 16 KiB


def _needs_query_form(store_id: str) -> bool:
    return (
        store_id in (".", "..")
        or store_id.endswith("/timeline.svg")
        or "%" in store_id
        or len(store_id) > PATH_ID_MAX_CHARS
    )


def store_path(store_id: str) -> str:
    """A store's page (its JSON, or its HTML for a browser): `/stores/<id>` percent-encoded, or the
    query form for an id no path can carry (see `timeline_path`)."""
    if _needs_query_form(store_id):
        return f"/store?store_id={quote(store_id, safe='')}"
    return f"/stores/{quote(store_id, safe='')}"


def timeline_path(store_id: str) -> str:
    """Where the API draws a store's week: the id percent-encoded, as ids are opaque text (a `/`,
    a space or a `#` in one must not change the path). An id no path can carry has the query
    form: `.` and `..` (a client resolves them as dot segments), one ending in `/timeline.svg`
    (it would name another store's picture), one holding a `%` (some clients and proxies decode a
    path twice), and one longer than a path takes."""
    if _needs_query_form(store_id):
        return f"/store/timeline.svg?store_id={quote(store_id, safe='')}"
    return f"/stores/{quote(store_id, safe='')}/timeline.svg"
