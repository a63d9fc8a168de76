"""Turning storemon's own descriptions and figures into what the Dagster UI shows."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import polars as pl

from storemon_assets.core.quality import Finding
from storemon_assets.core.summaries import Markdown, markdown_table
from storemon_assets.core.tables import Table


def table_schema(spec: Table) -> dg.TableSchema:
    """The UI's column schema, from the one declaration in core/tables.py (polars' type names)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=str(c.dtype),
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=c.nullable and not c.primary_key),
            )
            for c in spec.columns
        ]
    )


def table_metadata(spec: Table, stored_in: Table | None = None) -> dict[str, object]:
    """An asset's column schema (table_schema) and the table that holds it (default: its own)."""
    return {"dagster/column_schema": table_schema(spec), "table": (stored_in or spec).name}


def ui_metadata(figures: Mapping[str, object]) -> dict[str, object]:
    """Plain figures as the UI shows them: Markdown rendered, a frame as a markdown table of its
    first rows (core.summaries.markdown_table), a path as a path; anything else as it is."""
    return {name: _shown(value) for name, value in figures.items()}


def _shown(value: object) -> object:
    if isinstance(value, pl.DataFrame):
        value = markdown_table(value)
    if isinstance(value, Markdown):
        return dg.MetadataValue.md(value)
    return dg.MetadataValue.path(str(value)) if isinstance(value, Path) else value


def row_count(frame: pl.DataFrame) -> dict[str, int]:
    """The row count the UI shows beside an asset's column schema."""
    return {"dagster/row_count": frame.height}


def check_result(
    finding: Finding,
    *,
    blocking: bool = False,
    asset_key: dg.AssetKey | None = None,
    check_name: str | None = None,
    **metadata,
) -> dg.AssetCheckResult:
    """An asset check's result from what core.quality found: its verdict and summary, and the
    metadata given to help fix it (ui_metadata). A failure of a non-blocking check only warns."""
    return dg.AssetCheckResult(asset_key=asset_key, check_name=check_name, **_verdict(finding, blocking, metadata))


def check_evaluation(asset_key: dg.AssetKey, check_name: str, finding: Finding, **metadata) -> dg.AssetCheckEvaluation:
    """A warning check's verdict as a sensor records it: check_result's, outside a run."""
    return dg.AssetCheckEvaluation(asset_key=asset_key, check_name=check_name, **_verdict(finding, False, metadata))


def _verdict(finding: Finding, blocking: bool, metadata: Mapping[str, object]) -> dict[str, object]:
    return {
        "passed": finding.passed,
        "severity": dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        "description": finding.summary,
        "metadata": {"summary": finding.summary, **ui_metadata(metadata)},
    }


@contextmanager
def user_errors() -> Iterator[None]:
    """A ValueError (a setting or a T that cannot be used) fails the run with its message alone."""
    try:
        yield
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
