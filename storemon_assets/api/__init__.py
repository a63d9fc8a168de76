"""The HTTP API served by `storemon api` (SPEC §7), one router per concern:

- `reports.py`: POST /trigger_report, GET /get_report — a report is a Dagster run (`runs.py`
  talks to Dagster's GraphQL endpoint);
- `web/routes.py` (outside this package): the store pages and the web page at `/`, read from
  the storemon database, never from Dagster;
- `app.py`: `create_app`, the lifespan that opens the database, the request bounds.

Nothing here imports Dagster: job and tag names come from `storemon_assets.names`.
"""

from storemon_assets.api.app import create_app

__all__ = ["create_app"]
