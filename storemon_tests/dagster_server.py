"""Moved to storemon_assets/local_servers.py (the benchmark scripts share it); this name stays
for tests written before the move."""

from storemon_assets.local_servers import (  # noqa: F401
    LOCAL_INSTANCE_CONFIG,
    REPO,
    SERVER_INSTANCE_CONFIG,
    dagster_dev,
    free_port,
    stop_process_group,
    storemon_api,
    storemon_workers,
    wait_for,
)
