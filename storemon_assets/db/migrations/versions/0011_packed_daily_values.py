"""Daily values stored packed: `store_daily_packed` holds, per local date and shard of 1,024
store keys (store_key // 1024), one row whose `packed` bytes are the shard's stores' values as
fixed-width little-endian records sorted by key (store_key int32; business_half_us,
up_half_us, down_half_us, final_from_us with -2**63 for null, as_of_us, computed_at_us int64).
It replaces the row-per-(date, store) `store_daily_uptime`: reading 90 days of the real fleet
was 1.2 M rows through the driver, now ~1,300 (docs/history.md). The stored rows are carried
over (a store without a key, which cannot happen, would be left behind: it has no polls).

The record layout is written out here, not imported: a migration keeps doing what it did when
it was written.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06
"""

import datetime as dt

import numpy as np
import polars as pl
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

_FIELDS = (
    ("store_key", "<i4"),
    ("business_half_us", "<i8"),
    ("up_half_us", "<i8"),
    ("down_half_us", "<i8"),
    ("final_from_us", "<i8"),
    ("as_of_us", "<i8"),
    ("computed_at_us", "<i8"),
)
_RECORD = np.dtype(list(_FIELDS))
_NAMES = tuple(name for name, _ in _FIELDS)
_NULL = -(2**63)
_VALUES = _NAMES[1:]


def upgrade() -> None:
    op.create_table(
        "store_daily_packed",
        sa.Column(
            "local_date", sa.Date(), primary_key=True, nullable=False, comment="The stores' local calendar date."
        ),
        sa.Column(
            "shard",
            sa.Integer(),
            primary_key=True,
            nullable=False,
            comment="store_key // 1024: the shard of 1,024 store keys whose values the row holds.",
        ),
        sa.Column("stores", sa.Integer(), nullable=False, comment="How many stores' records `packed` holds."),
        sa.Column(
            "packed",
            sa.LargeBinary(),
            nullable=False,
            comment="Per store, sorted by key: store_key int32, business_half_us, up_half_us, down_half_us, "
            "final_from_us (-2**63: null), as_of_us, computed_at_us int64, little-endian.",
        ),
        comment="The daily values (store_daily_uptime's columns, the store as its key) of one local date and one "
        "shard of store keys (store_key // 1024), packed as fixed-width records sorted by store key.",
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    rows = bind.exec_driver_sql(
        f"SELECT CAST(d.local_date AS TEXT), s.store_key, {', '.join('d.' + name for name in _VALUES)} "
        "FROM store_daily_uptime d JOIN stores s ON s.store_id = d.store_id ORDER BY d.local_date, s.store_key"
    ).all()
    if rows:
        values = pl.DataFrame([tuple(r) for r in rows], schema=["local_date", *_NAMES], orient="row")
        records = np.empty(values.height, dtype=_RECORD)
        for name in _NAMES:
            records[name] = values.get_column(name).fill_null(_NULL).to_numpy()
        raw, width = records.tobytes(), _RECORD.itemsize
        groups = values.group_by("local_date", pl.col("store_key") // 1024, maintain_order=True).len()
        packed, offset = [], 0
        for local_date, shard, count in groups.iter_rows():
            piece = raw[offset * width : (offset + count) * width]
            packed.append({"d": dt.date.fromisoformat(local_date[:10]), "s": shard, "n": count, "p": piece})
            offset += count
        bind.execute(
            sa.text(
                "INSERT INTO store_daily_packed (local_date, shard, stores, packed) VALUES (:d, :s, :n, :p)"
            ).bindparams(sa.bindparam("d", type_=sa.Date()), sa.bindparam("p", type_=sa.LargeBinary())),
            packed,
        )
    op.drop_index("ix_store_daily_uptime_store_id", table_name="store_daily_uptime")
    op.drop_table("store_daily_uptime")


def downgrade() -> None:
    op.create_table(
        "store_daily_uptime",
        sa.Column("local_date", sa.Date(), primary_key=True, nullable=False),
        sa.Column("store_id", sa.Text(), primary_key=True, nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=name == "final_from_us") for name in _VALUES),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_store_daily_uptime_store_id", "store_daily_uptime", ["store_id", "local_date"])
    bind = op.get_bind()
    rows = bind.exec_driver_sql(
        "SELECT CAST(local_date AS TEXT), stores, packed FROM store_daily_packed ORDER BY local_date, shard"
    ).all()
    if rows:
        dates, counts, blobs = zip(*rows, strict=True)
        records = np.frombuffer(b"".join(bytes(b) for b in blobs), dtype=_RECORD)
        day = pl.Series([dt.date.fromisoformat(d[:10]) for d in dates])
        stores = pl.DataFrame(
            [tuple(r) for r in bind.exec_driver_sql("SELECT store_key, store_id FROM stores").all()],
            schema={"store_key": pl.Int32, "store_id": pl.String},
            orient="row",
        )
        values = (
            pl.DataFrame({name: records[name] for name in _NAMES})
            .with_columns(
                day.gather(np.repeat(np.arange(len(dates)), counts)).alias("local_date"),
                pl.when(pl.col("final_from_us") != _NULL).then(pl.col("final_from_us")).alias("final_from_us"),
            )
            .join(stores, on="store_key")
            .select("local_date", "store_id", *_VALUES)
        )
        table = sa.table(
            "store_daily_uptime",
            sa.column("local_date", sa.Date()),
            sa.column("store_id", sa.Text()),
            *(sa.column(name, sa.BigInteger()) for name in _VALUES),
        )
        bind.execute(table.insert(), values.to_dicts())
    op.drop_table("store_daily_packed")
