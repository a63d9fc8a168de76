"""Which store partitions lag behind the raw feeds, and how to refresh them in few runs.

A store's partition is stale when its stored weekly schedule differs from the schedule the
raw feeds give now (new store, changed hours, changed timezone). Refreshing runs over
contiguous ranges of the partition order, because a run covers a range of partitions.
A store any feed names gets its partition first, up to a limit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import polars as pl

from storemon_assets.core.business_time import SCHEDULE_SCHEMA


def new_store_partitions(known: Iterable[str], existing: Sequence[str], limit: int) -> tuple[list[str], int]:
    """The stores to add as partitions now, sorted: those the feeds name without one, while fewer
    than `limit` partitions exist; and how many of them that leaves without (still reported)."""
    new = sorted(set(known) - set(existing))
    room = max(0, limit - len(existing))
    return new[:room], max(0, len(new) - room)


def stale_store_ids(derived: pl.DataFrame, stored: pl.DataFrame) -> pl.Series:
    """Stores whose derived schedule rows differ from the stored ones (or have none stored)."""
    columns = list(SCHEDULE_SCHEMA)
    derived = derived.select(columns).cast(SCHEDULE_SCHEMA)
    stored = (
        stored.select(columns)
        .cast(SCHEDULE_SCHEMA)
        .join(derived.select("store_id").unique(), on="store_id", how="semi")
    )
    changed = pl.concat(
        [
            derived.join(stored, on=columns, how="anti", nulls_equal=True),
            stored.join(derived, on=columns, how="anti", nulls_equal=True),
        ]
    )
    return changed.get_column("store_id").unique().sort()


def fingerprint(schedule: pl.DataFrame, store_ids: pl.Series) -> str:
    """A short hash of these stores' schedules: the same stale state gives the same run key."""
    rows = schedule.filter(pl.col("store_id").is_in(store_ids.implode())).sort(list(SCHEDULE_SCHEMA))
    digest = hashlib.sha256(rows.write_csv().encode())
    return digest.hexdigest()[:16]


def partition_ranges(ordered_keys: list[str], wanted: set[str], max_ranges: int) -> list[tuple[str, str]]:
    """Cover `wanted` with contiguous ranges of `ordered_keys`, at most `max_ranges` of them.

    When the wanted keys are scattered, the closest ranges are joined (refreshing the few
    partitions between them too) so that the number of runs stays bounded.
    """
    positions = [i for i, key in enumerate(ordered_keys) if key in wanted]
    if not positions:
        return []
    runs: list[list[int]] = [[positions[0], positions[0]]]
    for position in positions[1:]:
        if position == runs[-1][1] + 1:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    if len(runs) > max_ranges:
        # Join across the smallest gaps, keeping the max_ranges - 1 widest ones as cuts.
        gaps = sorted(range(len(runs) - 1), key=lambda i: runs[i + 1][0] - runs[i][1], reverse=True)
        cuts = sorted(gaps[: max_ranges - 1])
        starts = [0] + [i + 1 for i in cuts]
        ends = cuts + [len(runs) - 1]
        runs = [[runs[a][0], runs[b][1]] for a, b in zip(starts, ends, strict=True)]
    return [(ordered_keys[a], ordered_keys[b]) for a, b in runs]


def schedules_state(feed_versions: dict[str, str], partition_count: int) -> str:
    """What the store schedules sensor compares between ticks: the raw feeds' versions and the
    number of store partitions. Stored schedules can only be stale once this changed."""
    return f"{json.dumps(feed_versions, sort_keys=True)}-{partition_count}"


def schedules_check_due(cursor: dict, state: str) -> bool:
    """Whether to compare schedules again: the state changed since the last comparison, or the
    runs it asked for are still pending (the next comparison tells whether they are done)."""
    return cursor.get("state") != state or bool(cursor.get("pending"))
