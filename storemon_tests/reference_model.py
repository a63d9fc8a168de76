"""A slow, literal reading of SPEC §2-§5 and §4a, for cross-checking the vectorised code.

Written independently of storemon_assets: plain Python loops, the standard library's
zoneinfo for time zones (storemon uses polars' chrono-tz), and exact Fractions. Suitable for
a handful of stores only.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable
from fractions import Fraction
from zoneinfo import ZoneInfo

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def to_us(moment: dt.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def local_to_utc(naive: dt.datetime, zone: str) -> dt.datetime:
    """SPEC §4: ambiguous -> earlier instant; non-existent -> the instant the clocks jump."""
    tz = ZoneInfo(zone)
    valid = []
    for fold in (0, 1):
        aware = naive.replace(tzinfo=tz, fold=fold)
        utc = aware.astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == naive:
            valid.append(utc)
    if valid:
        return min(valid)
    probe = naive.replace(second=0, microsecond=0)
    while True:  # walk forward a minute at a time to the first local time that exists
        probe += dt.timedelta(minutes=1)
        aware = probe.replace(tzinfo=tz)
        utc = aware.astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == probe:
            return min(utc, probe.replace(tzinfo=tz, fold=1).astimezone(UTC))


def business_intervals(rows, zone, first_date: dt.date, last_date: dt.date, special=None) -> list[tuple[int, int]]:
    """Merged UTC [open, close) in µs for local dates first..last. rows: (day, start_us, end_us).

    special (SPEC §4a): {local date: [(start_us, end_us), ...]}, (None, None) = closed; a date
    listed there opens exactly its own rows instead of its weekday's.
    """
    special = special or {}
    if not rows:
        rows = [(day, 0, 0) for day in range(7)]
    raw = []
    date = first_date
    while date <= last_date:
        midnight = dt.datetime(date.year, date.month, date.day)
        if date in special:
            todays = [(start, end) for start, end in special[date] if start is not None and end is not None]
        else:
            todays = [(start, end) for day, start, end in rows if day == date.weekday()]
        for start_us, end_us in todays:
            open_local = midnight + dt.timedelta(microseconds=start_us)
            close_local = midnight + dt.timedelta(microseconds=end_us)
            if end_us <= start_us:
                close_local += dt.timedelta(days=1)
            open_us, close_us = to_us(local_to_utc(open_local, zone)), to_us(local_to_utc(close_local, zone))
            if close_us > open_us:
                raw.append((open_us, close_us))
        date += dt.timedelta(days=1)
    merged: list[list[int]] = []
    for open_us, close_us in sorted(raw):
        if merged and open_us <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], close_us)
        else:
            merged.append([open_us, close_us])
    return [(a, b) for a, b in merged]


def _local_date(at_us: int, zone: str) -> dt.date:
    return (EPOCH + dt.timedelta(microseconds=at_us)).astimezone(ZoneInfo(zone)).date()


def _observations(polls, rows, zone, as_of_us: int, special=None) -> dict[int, bool]:
    """The polls up to T that fall in business time, by instant: True (active) unless a poll of
    that instant says inactive (a same-instant conflict)."""
    observed: dict[int, bool] = {}
    around: dict[dt.date, list[tuple[int, int]]] = {}  # a local date's business intervals, computed once
    for at_us, status in polls:
        if at_us > as_of_us:
            continue
        day = _local_date(at_us, zone)
        if day not in around:
            around[day] = business_intervals(
                rows, zone, day - dt.timedelta(days=2), day + dt.timedelta(days=1), special
            )
        if any(a <= at_us < b for a, b in around[day]):
            observed[at_us] = observed.get(at_us, True) and status == "active"
    return observed


def _nearest_status(observed: dict[int, bool]) -> Callable[[Fraction], bool]:
    """The status at a point: that of the nearest observation (ties: the earlier poll)."""
    instants = sorted(observed)

    def status_at(point: Fraction) -> bool:
        # The nearest is one of the two observations around the point (the sorted instants'
        # neighbours of its insertion place): the same as min() over all of them by (distance,
        # instant), without scanning every poll for every piece of every interval.
        after = bisect.bisect_left(instants, point)
        candidates = instants[max(after - 1, 0) : after + 1]
        return observed[min(candidates, key=lambda t: (abs(point - t), t))]

    return status_at


def store_sums(polls, rows, zone, as_of_us: int, window_us: int, special=None):
    """(business, up, down) as Fractions of µs for one store and window [T - w, T).

    polls: list of (at_us, status). rows: list of (day, start_us, end_us) ([] = 24x7).
    special: as for `business_intervals`.
    Returns None when the store has no observation at all.
    """
    observed = _observations(polls, rows, zone, as_of_us, special)
    if not observed:
        return None
    instants = sorted(observed)
    status_at = _nearest_status(observed)
    start_us = as_of_us - window_us
    intervals = business_intervals(
        rows,
        zone,
        _local_date(start_us, zone) - dt.timedelta(days=2),
        _local_date(as_of_us, zone) + dt.timedelta(days=1),
        special,
    )
    business = up = Fraction(0)
    midpoints = [Fraction(a + b, 2) for a, b in zip(instants, instants[1:], strict=False)]
    for a, b in intervals:
        lo, hi = max(a, start_us), min(b, as_of_us)
        if hi <= lo:
            continue
        cuts = [Fraction(lo)] + [m for m in midpoints if lo < m < hi] + [Fraction(hi)]
        for x, y in zip(cuts, cuts[1:], strict=False):
            business += y - x
            if status_at((x + y) / 2):
                up += y - x
    return business, up, business - up


def store_daily(polls, rows, zone, as_of_us: int, dates: list[dt.date]) -> dict[dt.date, tuple]:
    """SPEC §8, literally: per local date, (business, up, down) as Fractions of µs of the part of
    the day [local midnight D, local midnight D + 1) before T. Stores without an observation get
    up = down = 0 (business still counts)."""
    observed = _observations(polls, rows, zone, as_of_us)
    instants = sorted(observed)
    midpoints = [Fraction(a + b, 2) for a, b in zip(instants, instants[1:], strict=False)]
    status_at = _nearest_status(observed)

    result = {}
    for date in dates:
        midnight = dt.datetime(date.year, date.month, date.day)
        day_start = to_us(local_to_utc(midnight, zone))
        day_end = to_us(local_to_utc(midnight + dt.timedelta(days=1), zone))
        business = up = down = Fraction(0)
        for a, b in business_intervals(rows, zone, date - dt.timedelta(days=2), date + dt.timedelta(days=1)):
            lo, hi = max(a, day_start), min(b, day_end, as_of_us)
            if hi <= lo:
                continue
            cuts = [Fraction(lo)] + [m for m in midpoints if lo < m < hi] + [Fraction(hi)]
            for x, y in zip(cuts, cuts[1:], strict=False):
                business += y - x
                if instants:
                    if status_at((x + y) / 2):
                        up += y - x
                    else:
                        down += y - x
        result[date] = (business, up, down)
    return result
