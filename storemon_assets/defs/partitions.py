"""The partitions: one per store id any feed has named, up to STOREMON_MAX_STORE_PARTITIONS
(docs/performance.md), and one per local date of the daily values; and runs over their ranges."""

import warnings

import dagster as dg

# `backfill_policy` is what lets one run refresh any range of either partitioned asset. Dagster
# 1.13 still labels the parameter beta and warns about it on every load of the code (webserver,
# daemon, each run): a warning about our deliberate choice that the user can do nothing about.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset`", category=dg.BetaWarning)

STORE_PARTITIONS_NAME = "stores"
store_partitions = dg.DynamicPartitionsDefinition(name=STORE_PARTITIONS_NAME)

# The first local date with a partition: the real feed starts in January 2023. Dates before it
# are still computed by `storemon daily` and the API; they only have no partition to click.
DAILY_PARTITIONS_START = "2023-01-01"
# end_offset=1: today's (UTC) date has a partition too, so the current day can be refreshed;
# stores east of UTC already live in tomorrow for a few hours, and the refresh clips to this.
daily_partitions = dg.DailyPartitionsDefinition(start_date=DAILY_PARTITIONS_START, end_offset=1)


def partition_range_request(run_key: str, first: str, last: str) -> dg.RunRequest:
    """One run over the partitions `first` to `last` (the asset's single-run backfill policy)."""
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.RunRequest(run_key=run_key, tags=tags)
