"""The alert delivery ledger (`alert_deliveries`): claim a notification before sending it, settle it after.

A claim inserts the notification's row as `sending`, or turns a `failed` row back into
`sending`, in one transaction, and returns the rows it won: two evaluations at once (the sensor
and `storemon alerts`) never both send one notification, because the primary key lets only one
of them insert it. After the send, its rows become `sent` or `failed` (with the reason) in one
transaction. A claim left `sending` by a process that died mid-send is never sent again: at most
once, as SPEC §9 asks; it is counted as interrupted.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storemon_assets.core.alerts import FAILED, KEY, SENDING, SENT
from storemon_assets.core.instants import now_us
from storemon_assets.core.tables import ALERT_DELIVERIES
from storemon_assets.db.queries import read_table
from storemon_assets.db.schema import SQL_TABLES

_TABLE = SQL_TABLES[ALERT_DELIVERIES.name]


def read_ledger(engine: sa.Engine) -> pl.DataFrame:
    return read_table(engine, ALERT_DELIVERIES)


def failed_count(engine: sa.Engine) -> int:
    """Alerts whose last delivery failed (they are retried): a count, not the ledger."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(_TABLE).where(_TABLE.c.state == FAILED)).scalar_one()


def claim(engine: sa.Engine, keys: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """Claim these notifications (KEY columns) for sending; returns the KEY rows this call won."""
    if keys.is_empty():
        return keys
    now = now_us()
    rows = [
        {**key, "state": SENDING, "attempts": 0, "first_due_us": now, "updated_us": now, "as_of_us": as_of_us}
        for key in keys.select(KEY).to_dicts()
    ]
    insert = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert
    statement = insert(_TABLE).values(rows)
    claim = statement.on_conflict_do_update(
        index_elements=KEY,
        set_={"state": SENDING, "updated_us": now, "as_of_us": as_of_us},
        where=_TABLE.c.state == FAILED,
    ).returning(*(_TABLE.c[name] for name in KEY))
    with engine.begin() as conn:
        won = conn.execute(claim).all()
    return pl.DataFrame([tuple(r) for r in won], schema=ALERT_DELIVERIES.subset(*KEY), orient="row")


def settle(engine: sa.Engine, keys: pl.DataFrame, error: str | None) -> None:
    """Mark claimed notifications sent (error None) or failed with the reason, in one transaction."""
    if keys.is_empty():
        return
    statement = (
        _TABLE.update()
        .where(*(_TABLE.c[name] == sa.bindparam(f"key_{name}") for name in KEY))
        .values(
            state=SENT if error is None else FAILED,
            attempts=_TABLE.c.attempts + 1,
            updated_us=now_us(),
            last_error=error,
        )
    )
    rows = [{f"key_{name}": value for name, value in key.items()} for key in keys.select(KEY).to_dicts()]
    with engine.begin() as conn:
        conn.execute(statement, rows)
