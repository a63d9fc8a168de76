"""The current report as the JSON routes meet it: read once per request, 404 until one is
published, and every list answer headed by its T and report id. One place, so the fleet, the
worst stores, the incidents and the statuses say "no report yet" and head their answers alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import HTTPException
from pydantic import BaseModel

from storemon_assets.core.instants import format_instant
from storemon_assets.db.queries import current_report_info

NO_REPORT_YET = {404: {"description": "No report has been published yet."}}


class ReportHeading(BaseModel):
    """The first fields of every answer about the current report."""

    as_of: str
    report_id: str


def current_report(engine: sa.Engine) -> dict:
    """The current report's row (`current_report_info`); 404 when none was published yet."""
    info = current_report_info(engine)
    if info is None:
        raise HTTPException(
            status_code=404, detail="no report has been published yet: trigger one (POST /trigger_report)"
        )
    return info


def heading(info: dict) -> dict:
    """The ReportHeading fields of the current report `info`."""
    return {"as_of": format_instant(info["as_of_us"]), "report_id": info["report_id"]}
