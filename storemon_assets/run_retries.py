"""Has a run ended for good, or may the instance's run retries still run it again? One answer,
in plain Python, for every reader: the landing sensor (a batch whose run failed for good has its
files moved to failed/), the report's shard clean-up (a retry from failure reads its parent's
step results) and the sweep at a report run's start.

Dagster stores a run's failure first and tags it `dagster/will_retry` ("true" or "false") a
moment later, when the instance has run retries on; the retry daemon tags, on its next pass, any
failure that was stored but not tagged. So a failed run without the tag on such an instance may
still be retried, but not forever: see UNTAGGED_FAILURE_SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from storemon_assets.names import AUTO_RETRY_RUN_TAG, WILL_RETRY_TAG

FINISHED_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})  # Dagster's run status names
UNTAGGED_FAILURE_SECONDS = 60.0
"""How long a failed run without `dagster/will_retry`, on an instance with run retries on, counts
as "may still be retried". The tag normally follows the failure within milliseconds (the same
call stores both), and the retry daemon tags what it missed every 5 s by default: a minute
covers both with a wide margin, while a failure whose process died before tagging it (and no
daemon to tag it) does not hold the landing folder's files, or a report's shards, for ever."""


def ended_for_good(
    status: str, tags: Mapping[str, str], retries_enabled: bool, ended_at: float | None, now: float | None = None
) -> bool:
    """Whether a run with this Dagster status name and these tags, on an instance with run retries
    on or off, has finished with no retry to come.

    Not while it is queued or running. A failed run tagged `dagster/will_retry` "true" will be run
    again (a re-run of it is a new run) until that re-run is launched (then also tagged
    `dagster/auto_retry_run_id`: the chain goes on in the new run); one tagged "false" will not.
    Untagged, it has failed for good on an instance without run retries, and on one with them once
    UNTAGGED_FAILURE_SECONDS have passed since it ended (`ended_at`, a Unix time; None, a run
    storage that records no end time, counts as long ago: the tag is then the only word). Success
    and cancellation are final.
    """
    if status not in FINISHED_STATUSES:
        return False
    if status != "FAILURE":
        return True
    will_retry = tags.get(WILL_RETRY_TAG)
    if will_retry is not None:
        return will_retry != "true" or AUTO_RETRY_RUN_TAG in tags
    if not retries_enabled or ended_at is None:
        return True
    return (time.time() if now is None else now) - ended_at >= UNTAGGED_FAILURE_SECONDS
