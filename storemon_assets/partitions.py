"""The store partitions: one dynamic partition per store id any feed has named."""

import dagster as dg

STORE_PARTITIONS_NAME = "stores"
store_partitions = dg.DynamicPartitionsDefinition(name=STORE_PARTITIONS_NAME)
