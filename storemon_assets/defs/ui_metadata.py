"""Turning storemon's own descriptions into what the Dagster UI shows."""

from __future__ import annotations

import dagster as dg
import polars as pl

from storemon_assets.core.tables import Table

_TYPE_NAMES = {
    pl.String: "text",
    pl.Int64: "int64",
    pl.Int32: "int32",
    pl.Int8: "int8",
    pl.Float64: "float64",
    pl.Boolean: "bool",
}


def table_schema(spec: Table) -> dg.TableSchema:
    """The UI's column schema, from the one declaration in schema.py."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=_TYPE_NAMES.get(type(c.dtype), str(c.dtype)),
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=c.nullable and not c.primary_key),
            )
            for c in spec.columns
        ]
    )


def markdown_table(frame: pl.DataFrame, max_rows: int = 10) -> dg.MetadataValue:
    """A small markdown preview of a frame."""
    head = frame.head(max_rows)
    if head.width == 0:
        return dg.MetadataValue.md("_(empty)_")
    lines = ["| " + " | ".join(head.columns) + " |", "| " + " | ".join("---" for _ in head.columns) + " |"]
    for values in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v) for v in values) + " |")
    if frame.height > max_rows:
        lines.append(f"\n_{max_rows} of {frame.height} rows_")
    return dg.MetadataValue.md("\n".join(lines))
