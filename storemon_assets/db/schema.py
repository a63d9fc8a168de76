"""The SQLAlchemy tables, generated from the declarations in `core/tables.py`."""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from storemon_assets.core.tables import STORED_TABLES, Index, Table

_SQL_TYPES: dict[type[pl.DataType], type[sa.types.TypeEngine]] = {
    pl.String: sa.Text,
    pl.Int64: sa.BigInteger,
    pl.Int32: sa.Integer,
    pl.Int8: sa.SmallInteger,
    pl.Float64: sa.Float,
    pl.Boolean: sa.Boolean,
    pl.Date: sa.Date,
    pl.Binary: sa.LargeBinary,
}

metadata = sa.MetaData()


def _index(spec: Index) -> sa.Index:
    return sa.Index(spec.name, *spec.columns, unique=spec.unique)


def _to_sqlalchemy(table: Table) -> sa.Table:
    return sa.Table(
        table.name,
        metadata,
        *(
            sa.Column(
                c.name,
                _SQL_TYPES[type(c.dtype)](),
                primary_key=c.primary_key,
                nullable=c.nullable,
                comment=c.description,
            )
            for c in table.columns
        ),
        *(_index(index) for index in table.indexes),
        comment=table.description,
        sqlite_with_rowid=not table.clustered,
    )


SQL_TABLES: dict[str, sa.Table] = {table.name: _to_sqlalchemy(table) for table in STORED_TABLES}
