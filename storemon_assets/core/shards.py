"""Store shards: how the report's work is split over steps, and how the parts are put back.

A shard is a range of store keys `[first, last]` (the integer key of the stores table). Ranges
cut at keys taken in order from the stores table split the stores into runs of equal size and
tile every possible key (the first starts at the smallest, the last ends at the largest
integer), so each store falls in exactly one shard, even one added after the cuts were chosen.
A shard's reads are index range scans on the store_key-led keys of the polls.

Every number in the report is a function of one store's polls and schedule and of T alone, so
computing shard by shard with one T and concatenating gives exactly the unsharded result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

FIRST_KEY, LAST_KEY = -(2**63), 2**63 - 1  # the whole range of a 64-bit key


@dataclass(frozen=True)
class StoreShard:
    index: int
    count: int
    first: int = FIRST_KEY  # inclusive
    last: int = LAST_KEY  # inclusive

    @property
    def mapping_key(self) -> str:
        """A name Dagster accepts for the shard's step (letters, digits, underscores)."""
        return f"shard_{self.index:03d}_of_{self.count:03d}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict) -> StoreShard:
        return cls(**value)


def shards_from_cuts(cuts: list[int]) -> list[StoreShard]:
    """Shards between consecutive cut keys (strictly increasing): [FIRST, c1 - 1], [c1, c2 - 1], ..."""
    firsts = [FIRST_KEY, *cuts]
    lasts = [cut - 1 for cut in cuts] + [LAST_KEY]
    return [StoreShard(i, len(firsts), first, last) for i, (first, last) in enumerate(zip(firsts, lasts, strict=True))]


def cut_points(sorted_keys: list[int], shards: int) -> list[int]:
    """Up to `shards - 1` keys that split `sorted_keys` (distinct, ascending) into equal runs."""
    n = len(sorted_keys)
    shards = max(1, min(shards, n))
    return [sorted_keys[i * n // shards] for i in range(1, shards)]


def combine_parts(parts: list[pl.DataFrame], empty: pl.DataFrame) -> pl.DataFrame:
    """The shards' per-store frames as one, sorted by store_id (empty shards skipped; `empty`
    when every shard was)."""
    non_empty = [part for part in parts if part.width and part.height]
    if not non_empty:
        return empty
    return pl.concat(non_empty, how="vertical").sort("store_id", maintain_order=True)
