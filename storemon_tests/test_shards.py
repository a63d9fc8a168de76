"""Store shards: the report computed shard by shard is byte-identical to the unsharded report."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from storemon_assets.core.generate import generate_feeds
from storemon_assets.core.shards import FIRST_KEY, LAST_KEY, StoreShard, combine_parts, cut_points, shards_from_cuts
from storemon_assets.core.uptime import report_csv
from storemon_assets.db.engine import open_database
from storemon_assets.db.queries import store_shards
from storemon_assets.defs.raw import ingest_landing_files
from storemon_assets.defs.report import uptime_report
from storemon_assets.publication import shard_folder
from storemon_assets.service import (
    COMBINED_REPORT_NAME,
    build_report,
    build_report_shard,
    combine_report_shards,
    ingest_files,
    report_time_us,
)
from storemon_assets.settings import sqlite_url
from storemon_tests.conftest import fresh_postgres_engine

# Weeks with a daylight-saving change inside the report window (US and EU rules):
# US spring forward 2023-03-12, EU spring forward 2023-03-26, US fall back 2023-11-05.
DST_WEEK_ENDS = [dt.datetime(2023, 3, 14, 9, 30), dt.datetime(2023, 3, 28, 1, 0), dt.datetime(2023, 11, 7, 18, 13)]

# Store ids that sort differently as text and as the numbers they look like, and in byte order
# and a linguistic collation: shards are ranges of integer store keys, so none of that matters.
ODD_IDS = ["007", "7", "A_2", "a-1", "b 3", "B.4", "z"]


def test_cut_points_split_sorted_keys_into_equal_runs():
    keys = [3, 5, 8, 9, 12, 13, 20, 21, 22, 30]  # 10 keys, 3 shards: runs of 3, 3, 4 start at positions 0, 3, 6
    assert cut_points(keys, 3) == [9, 20]
    assert cut_points(keys, 1) == []
    assert cut_points(keys, 50) == keys[1:]  # never more shards than keys: one each
    assert cut_points([], 4) == []


def test_shards_between_cuts_tile_every_key():
    assert shards_from_cuts([9, 20]) == [
        StoreShard(0, 3, FIRST_KEY, 8),
        StoreShard(1, 3, 9, 19),
        StoreShard(2, 3, 20, LAST_KEY),
    ]
    assert shards_from_cuts([]) == [StoreShard(0, 1, FIRST_KEY, LAST_KEY)]
    assert StoreShard.from_dict(StoreShard(1, 3, 9, 19).to_dict()) == StoreShard(1, 3, 9, 19)


def test_combining_skips_empty_shards_and_sorts_by_store():
    part = pl.DataFrame({"store_id": ["b", "a", "a"], "x": [3, 1, 2]})
    empty = part.head(0)
    assert combine_parts([pl.DataFrame(), empty, part], empty).get_column("x").to_list() == [1, 2, 3]
    assert combine_parts([pl.DataFrame(), empty], empty) is empty


def load_dst_feeds(engine, folder, end: dt.datetime, stores: int = 150) -> None:
    paths = generate_feeds(stores=stores, days=9, seed=end.month, end=end).write(folder)
    odd = folder / "odd_ids.csv"
    stamp = (end - dt.timedelta(hours=30)).strftime("%Y-%m-%d %H:%M:%S UTC")
    odd.write_text(
        "store_id,status,timestamp_utc\n"
        + "".join(f"{s},{'active' if i % 2 else 'inactive'},{stamp}\n" for i, s in enumerate(ODD_IDS))
    )
    ingest_files(engine, [*paths.values(), odd])


def sharded_report(engine, shards: int):
    as_of_us = report_time_us(engine, None)
    plan = store_shards(engine, shards)
    parts = [build_report_shard(engine, as_of_us, shard).uptime for shard in plan]
    combined = combine_report_shards(engine, as_of_us, [p.exact for p in parts], [p.intervals for p in parts])
    return plan, [p.exact for p in parts], combined


def assert_sharding_changes_nothing(engine, shard_counts=(1, 3, 8)):
    unsharded = build_report(engine)
    expected = report_csv(unsharded.report)
    assert expected.count("\n") > 150  # the data made a real report
    for shards in shard_counts:
        plan, parts, combined = sharded_report(engine, shards)
        assert len(plan) == shards
        # Each store is computed by exactly one shard, and every shard did work.
        assert sum(part.height for part in parts) == unsharded.store_count
        assert all(part.height for part in parts)
        assert report_csv(combined.report) == expected, f"{shards} shards"
        assert combined.uptime.exact.equals(unsharded.uptime.exact.sort("store_id"))  # to the half-microsecond
        assert combined.uptime.intervals.equals(unsharded.uptime.intervals.sort("store_id", maintain_order=True))


@pytest.mark.parametrize("end", DST_WEEK_ENDS, ids=lambda d: d.strftime("%Y-%m-%d"))
def test_sharded_report_is_byte_identical_on_sqlite(tmp_path, end):
    engine = open_database(sqlite_url(tmp_path / "storemon.db"))
    load_dst_feeds(engine, tmp_path / "feeds", end)
    assert_sharding_changes_nothing(engine)


def test_sharded_report_is_byte_identical_on_postgres(tmp_path):
    engine = fresh_postgres_engine()
    try:
        load_dst_feeds(engine, tmp_path / "feeds", DST_WEEK_ENDS[2])
        assert_sharding_changes_nothing(engine)
    finally:
        engine.dispose()


def test_the_report_asset_fans_out_one_step_per_shard(home, tmp_path, instance):
    engine = home.database.engine()
    load_dst_feeds(engine, tmp_path / "feeds", DST_WEEK_ENDS[0])
    expected = report_csv(build_report(engine).report)
    result = dg.materialize(
        [ingest_landing_files, uptime_report],
        resources=home.resources,
        instance=instance,
        run_config={"ops": {"uptime_report": {"config": {"shards": 3}}}},
        selection=list(uptime_report.keys),
    )
    shard_steps = sorted(
        e.step_key for e in result.all_events if e.is_step_success and "compute_report_shard" in (e.step_key or "")
    )
    assert shard_steps == [f"uptime_report.compute_report_shard[shard_00{i}_of_003]" for i in range(3)]
    assert (home.reports.folder / COMBINED_REPORT_NAME).read_text() == expected
    materialization = result.asset_materializations_for_node("uptime_report")[0]
    assert materialization.metadata["shards"].value == 3
    assert not shard_folder(home.reports.folder, result.run_id).exists()  # intermediate files gone once published
