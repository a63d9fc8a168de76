"""The store partitions: one dynamic partition per store id any feed has named, up to
STOREMON_MAX_STORE_PARTITIONS (docs/performance.md)."""

import logging

import dagster as dg

from storemon_assets.settings import max_store_partitions

STORE_PARTITIONS_NAME = "stores"
store_partitions = dg.DynamicPartitionsDefinition(name=STORE_PARTITIONS_NAME)

log = logging.getLogger(__name__)


def new_store_partitions(instance: dg.DagsterInstance, store_ids: set[str]) -> list[str]:
    """Store ids without a partition yet, sorted, within the partition limit."""
    existing = set(instance.get_dynamic_partitions(STORE_PARTITIONS_NAME))
    new = sorted(store_ids - existing)
    room = max(0, max_store_partitions() - len(existing))
    if len(new) > room:
        log.warning(
            "store partition limit %d reached: %d stores get no partition (they are still reported)",
            max_store_partitions(),
            len(new) - room,
        )
    return new[:room]


def partition_range_request(run_key: str, first: str, last: str) -> dg.RunRequest:
    """One run over the partitions `first` to `last` (the asset's single-run backfill policy)."""
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.RunRequest(run_key=run_key, tags=tags)
