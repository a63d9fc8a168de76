"""Which notifications are due, and what they say (SPEC §9), as pure functions of the current
incidents, each store's status now and the delivery ledger.

Three kinds, each sent at most once per subject and channel (an Apprise URL):

- `down` (Apprise type failure): an open incident whose down business time reached the minimum,
  of a store inside its business time at T. Its subject is the incident's start, as first
  notified: the incidents are computed over the week before T, so an incident older than the week
  starts "at the week's start", which moves with T; an open incident that starts at the week's
  start and has an unresolved `down` in the ledger that started no later is that same incident.
- `recovered` (type success): a notified incident (its `down` was sent on that channel) that is no
  longer open, once per incident.
- `not_reporting` (type warning): a store inside its business time at T whose newest poll is older
  than the stale limit; its subject is that newest poll, so a store that reports again and then
  falls silent again is told about again.

Nobody is told anything about a store while it is closed at T (special hours included): what is
due waits for its business time. A ledger row that is `sent` or `sending` (claimed by an
evaluation that may have died before it knew the answer) is never sent again; a `failed` one is due
again while what it says is still true. More than `max_per_message` notifications of one kind due
at once on a channel go out as one summary naming every store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from storemon_assets.core.business_time import US_PER_MINUTE, with_wall_clock
from storemon_assets.core.incidents import minutes_2dp
from storemon_assets.core.tables import ALERT_DELIVERIES
from storemon_assets.core.uptime import WEEK

DOWN, RECOVERED, NOT_REPORTING = "down", "recovered", "not_reporting"
KINDS = (DOWN, RECOVERED, NOT_REPORTING)
APPRISE_TYPES = {DOWN: "failure", RECOVERED: "success", NOT_REPORTING: "warning"}
SENDING, SENT, FAILED = "sending", "sent", "failed"
LEDGER_SCHEMA = ALERT_DELIVERIES.polars_schema
KEY = ["store_id", "kind", "subject_us", "channel"]
# What a due notification carries: its ledger key and what its message says.
DUE_SCHEMA = pl.Schema(
    {
        "store_id": pl.String,
        "kind": pl.String,
        "subject_us": pl.Int64,
        "channel": pl.String,
        "since_half_us": pl.Int64,  # down: incident start; recovered: its end; not reporting: newest poll (x2)
        "since_local_us": pl.Int64,
        "timezone": pl.String,
        "downtime_half_us": pl.Int64,
        "status": pl.String,
    }
)


def channel_of(url: str) -> str:
    """A short, stable name for an Apprise URL in the ledger (URLs hold tokens and passwords)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def open_incident_subjects(incidents: pl.DataFrame, ledger: pl.DataFrame, as_of_us: int) -> pl.DataFrame:
    """store_id, subject_us, started_half_us, downtime_half_us of each open incident, its subject
    being the start under which it was first notified (see the module docstring)."""
    open_now = incidents.filter(pl.col("open")).select("store_id", "started_half_us", "downtime_half_us")
    resolved = ledger.filter(pl.col("kind") == RECOVERED).select("store_id", "subject_us").unique()
    unresolved = (
        ledger.filter(pl.col("kind") == DOWN)
        .select("store_id", "subject_us")
        .unique()
        .join(resolved, on=["store_id", "subject_us"], how="anti")
    )
    week_start_half_us = 2 * (as_of_us - WEEK.length_us)
    earlier = (
        open_now.join(unresolved, on="store_id")
        .filter(
            (pl.col("subject_us") == pl.col("started_half_us"))
            | ((pl.col("started_half_us") == week_start_half_us) & (pl.col("subject_us") <= pl.col("started_half_us")))
        )
        .group_by("store_id")
        .agg(pl.col("subject_us").max())
    )
    return open_now.join(earlier, on="store_id", how="left").with_columns(
        pl.coalesce("subject_us", "started_half_us").alias("subject_us")
    )


def due_notifications(
    status: pl.DataFrame,
    incidents: pl.DataFrame,
    ledger: pl.DataFrame,
    channels: list[str],
    as_of_us: int,
    min_down_minutes: int,
) -> pl.DataFrame:
    """Every notification due now, one row per (store, kind, subject, channel): DUE_SCHEMA.

    `status`: STORE_STATUS_NOW rows; `incidents`: STORE_INCIDENTS rows of the same report;
    `ledger`: ALERT_DELIVERIES rows; `channels`: `channel_of` each Apprise URL.
    """
    open_stores = status.filter(pl.col("open_now")).select("store_id", "timezone", "status", "newest_poll_us")
    subjects = open_incident_subjects(incidents, ledger, as_of_us)
    started_local = incidents.select("store_id", "started_half_us", pl.col("started_local_us").alias("since_local_us"))
    down = (
        subjects.filter(pl.col("downtime_half_us") >= 2 * min_down_minutes * US_PER_MINUTE)
        .join(started_local, on=["store_id", "started_half_us"])
        .join(open_stores, on="store_id")
        .select(
            "store_id",
            pl.lit(DOWN).alias("kind"),
            "subject_us",
            pl.col("started_half_us").alias("since_half_us"),
            "since_local_us",
            "timezone",
            "downtime_half_us",
            "status",
        )
    )
    recovered = _recovered(incidents, ledger, subjects, open_stores)
    silent = status.filter(pl.col("not_reporting")).select(
        "store_id",
        pl.lit(NOT_REPORTING).alias("kind"),
        pl.col("newest_poll_us").fill_null(0).alias("subject_us"),
        (pl.col("newest_poll_us") * 2).alias("since_half_us"),
        pl.lit(None, pl.Int64).alias("since_local_us"),
        "timezone",
        pl.lit(None, pl.Int64).alias("downtime_half_us"),
        "status",
    )
    wanted = pl.concat([down, silent], how="diagonal_relaxed").join(
        pl.DataFrame({"channel": channels}, schema={"channel": pl.String}), how="cross"
    )
    wanted = pl.concat([wanted, recovered], how="diagonal_relaxed")
    settled = ledger.filter(pl.col("state").is_in([SENT, SENDING])).select(KEY)
    return (
        wanted.join(settled, on=KEY, how="anti")
        .select(list(DUE_SCHEMA))
        .cast(DUE_SCHEMA)
        .sort("channel", "kind", "store_id", "subject_us")
    )


def _recovered(
    incidents: pl.DataFrame, ledger: pl.DataFrame, subjects: pl.DataFrame, open_stores: pl.DataFrame
) -> pl.DataFrame:
    """Recovered notifications due: per channel, each incident whose down was sent there and which is
    no longer the store's open incident, of a store open at T. What it says comes from the incident
    that started at (or, clipped to the week, after) its subject and has ended, when still in the week."""
    notified = ledger.filter((pl.col("kind") == DOWN) & (pl.col("state") == SENT)).select(
        "store_id", "subject_us", "channel"
    )
    still_open = subjects.select("store_id", "subject_us")
    ended = notified.join(still_open, on=["store_id", "subject_us"], how="anti").join(open_stores, on="store_id")
    closed = incidents.filter(~pl.col("open")).select(
        "store_id",
        pl.col("started_half_us").alias("_started"),
        pl.col("ended_half_us").alias("since_half_us"),
        pl.col("ended_local_us").alias("since_local_us"),
        "downtime_half_us",
    )
    # The first ended incident starting at or after the subject is the one notified (an incident's
    # start only moves later, when the week cut it).
    described = (
        ended.sort("subject_us")
        .join_asof(
            closed.sort("_started"),
            left_on="subject_us",
            right_on="_started",
            by="store_id",
            strategy="forward",
            check_sortedness=False,
        )
        .drop("_started")
    )
    return described.with_columns(pl.lit(RECOVERED).alias("kind"))


@dataclass(frozen=True)
class Message:
    """One notification to send to one channel, and the ledger rows it settles."""

    channel: str
    kind: str
    title: str
    body: str
    keys: pl.DataFrame  # KEY columns of the notifications it carries

    @property
    def apprise_type(self) -> str:
        return APPRISE_TYPES[self.kind]


def messages(due: pl.DataFrame, max_per_message: int, link: Callable[[str], str] | None = None) -> list[Message]:
    """The messages that carry the due notifications: one each, or, where more than
    `max_per_message` of one kind are due on one channel, one summary naming every store.
    `link`: the address of a store's page, added under a single store's message."""
    lines = described(due)
    out = []
    for (channel, kind), group in lines.partition_by(["channel", "kind"], as_dict=True, maintain_order=True).items():
        keys = group.select(KEY)
        if group.height > max_per_message:
            out.append(Message(channel, kind, _summary_title(kind, group.height), _summary_body(group), keys))
            continue
        for one in group.iter_slices(1):
            store_id, line = one.item(0, "store_id"), one.item(0, "line")
            body = line + (f"\n{link(store_id)}" if link else "")
            out.append(Message(channel, kind, _title(kind, store_id), body, one.select(KEY)))
    return out


def described(due: pl.DataFrame) -> pl.DataFrame:
    """Due notifications with one line of text each (`line`), sorted by channel, kind and store."""
    local = with_wall_clock(
        due.with_columns(
            pl.col("timezone").fill_null("UTC"),
            pl.when(pl.col("kind") == NOT_REPORTING).then(pl.col("since_half_us") // 2).alias("_poll_us"),
        ),
        {"_poll_us": "_poll_local"},
    )
    since_utc = pl.from_epoch(pl.col("since_half_us") // 2, time_unit="us").dt.strftime("%Y-%m-%d %H:%M UTC")
    since_local = (
        pl.coalesce(
            pl.from_epoch(pl.col("since_local_us"), time_unit="us"),
            pl.col("_poll_local"),
        ).dt.strftime("%Y-%m-%d %H:%M")
        + pl.lit(" ")
        + pl.col("timezone")
    )
    when = pl.concat_str(since_utc, pl.lit(" ("), since_local, pl.lit(")"))
    minutes = minutes_2dp(pl.col("downtime_half_us")).cast(pl.String)
    line = (
        pl.when(pl.col("kind") == DOWN)
        .then(pl.concat_str(pl.lit("down since "), when, pl.lit(", "), minutes, pl.lit(" business minutes down")))
        .when((pl.col("kind") == RECOVERED) & pl.col("since_half_us").is_not_null())
        .then(
            pl.concat_str(pl.lit("up again since "), when, pl.lit(" after "), minutes, pl.lit(" business minutes down"))
        )
        .when(pl.col("kind") == RECOVERED)
        .then(pl.lit("up again"))
        .when(pl.col("since_half_us").is_not_null())
        .then(
            pl.concat_str(
                pl.lit("not reporting: open, newest poll "),
                when,
                pl.lit("; its status ("),
                "status",
                pl.lit(") is a guess"),
            )
        )
        .otherwise(pl.lit("not reporting: open, and no poll yet"))
    )
    return local.with_columns(pl.concat_str(pl.lit("Store "), "store_id", pl.lit(" "), line).alias("line")).sort(
        "channel", "kind", "store_id"
    )


_TITLES = {DOWN: "is down", RECOVERED: "recovered", NOT_REPORTING: "is not reporting"}
_SUMMARY_TITLES = {DOWN: "are down", RECOVERED: "recovered", NOT_REPORTING: "are not reporting"}


def _title(kind: str, store_id: str) -> str:
    return f"storemon: store {store_id} {_TITLES[kind]}"


def _summary_title(kind: str, count: int) -> str:
    return f"storemon: {count} stores {_SUMMARY_TITLES[kind]}"


def _summary_body(group: pl.DataFrame) -> str:
    return "\n".join(group.get_column("line").to_list())
