"""Typed Python values out of polars aggregates.

polars types `Series.min()`, `.max()` and `.sum()` as any Python literal (int, float, Decimal,
date, str, list or None), since a column's dtype is only known when the code runs. These say
which one the caller expects and check it, so the type checker can follow the arithmetic after
them and a wrong column fails loudly here rather than as a strange number later.
"""

from __future__ import annotations


def as_int(value: object) -> int:
    """`value` if it is an integer (a bool is not: a count of flags is summed first)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def as_optional_int(value: object) -> int | None:
    """`value` if it is an integer or None (the min/max of no rows)."""
    return None if value is None else as_int(value)
