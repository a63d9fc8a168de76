"""Turning storemon's own descriptions into what the Dagster UI shows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import polars as pl

from storemon_assets.core import summaries
from storemon_assets.core.quality import Finding
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
    """A small markdown preview of a frame (values formatted as in core.summaries.markdown_table)."""
    return dg.MetadataValue.md(summaries.markdown_table(frame, max_rows))


def check_result(
    finding: Finding, *, blocking: bool = False, check_name: str | None = None, **metadata
) -> dg.AssetCheckResult:
    """An asset check's result from what core.quality found: its verdict and summary, and the
    metadata given to help fix it. A failure of a non-blocking check only warns."""
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=finding.passed,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        description=finding.summary,
        metadata={"summary": finding.summary, **metadata},
    )


@contextmanager
def user_errors() -> Iterator[None]:
    """A ValueError (a setting or a T that cannot be used) fails the run with its message alone."""
    try:
        yield
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
