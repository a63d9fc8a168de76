"""What stands between POST /trigger_report and a Dagster launch (SPEC §10): coalescing,
a rate limit per caller, and a launch that never loses a run it created.

- **Coalescing.** Two triggers are identical when they ask for the same job and T (an explicit
  as-of instant, or the latest poll) over the same data (`db.queries.data_version`: every
  feed's version from the ingested-file ledger). While a run of an identical trigger is queued or
  running, its id is the answer; no second run starts. The run is found in memory (checked with
  Dagster at most every `RECHECK_SECONDS`, so a run that ended less than that ago may still be
  answered), else in Dagster by its `storemon/trigger_key` tag (so another API process, or one
  restarted, finds it too). Identical triggers wait for each other (a lock per key): 100 at once
  make one launch.
- **Rate limit.** Only a trigger that launches a run spends from its caller's bucket (`burst`
  at once, then `per_minute`): beyond it, 429 with `Retry-After`. Coalesced triggers are free.
- **Idempotent launch.** Each launch carries a fresh `storemon/trigger_id` tag. When Dagster does
  not answer the launch in time (it was sent: `LaunchUnconfirmed`), the run may still have been created: it is looked up by that tag a few
  times before the trigger is reported failed, so a run this trigger created is always answered
  with its id.
- Each run carries `storemon/requested_by`: the token's name, or `open:<client address>`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from storemon_assets.api.runs import RUNNING_STATES, DagsterUnavailable, LaunchUnconfirmed, ReportRuns
from storemon_assets.core.access import Caller, ExpiringCache, RateLimiter, retry_after_header, trigger_key
from storemon_assets.core.instants import as_of_instant
from storemon_assets.names import AS_OF_REPORT_JOB, REPORT_JOB, REQUESTED_BY_TAG, TRIGGER_ID_TAG, TRIGGER_KEY_TAG

RECHECK_SECONDS = 1.0
TRIGGER_BURST = 10
TRIGGERS_PER_MINUTE = 10
# A launch Dagster did not confirm is looked up by its idempotency tag this many times, this far apart.
LOOKUP_ATTEMPTS = 4
LOOKUP_PAUSE_SECONDS = 1.0


class RateLimited(Exception):
    """Beyond the caller's rate: 429, `Retry-After` seconds."""

    def __init__(self, retry_after: float, what: str = "too many reports started"):
        super().__init__(f"{what}: try again in {retry_after_header(retry_after)} s")
        self.retry_after = retry_after


@dataclass
class _Coalesced:
    run_id: str
    checked_at: float


class TriggerDesk:
    """Decides, for each trigger, which run answers it; one per app (`app.state.trigger_desk`)."""

    def __init__(
        self,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.limiter = limiter or RateLimiter(TRIGGER_BURST, TRIGGERS_PER_MINUTE)
        self.clock = clock
        self.sleep = sleep
        self.recheck_seconds = RECHECK_SECONDS
        self._active: ExpiringCache[str, _Coalesced] = ExpiringCache(ttl=24 * 3600, size=10_000, clock=clock)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def trigger(self, runs: ReportRuns, as_of: str | None, caller: Caller, data_version: Callable[[], tuple]) -> str:
        """The id of the run that answers this trigger: a queued or running identical one, or a
        new one. Raises RateLimited, DagsterUnavailable, DagsterRefused; ValueError for a bad T."""
        instant = as_of_instant(as_of) if as_of else None
        job = AS_OF_REPORT_JOB if instant else REPORT_JOB
        key = trigger_key(job, instant, data_version())
        with self._lock_for(key):
            run_id = self._still_active(runs, key)
            if run_id is None:
                run_id = runs.find_run({TRIGGER_KEY_TAG: key}, RUNNING_STATES)
            if run_id is None:
                wait = self.limiter.acquire(caller.name)
                if wait > 0:
                    raise RateLimited(wait)
                run_id = self._launch(runs, instant, {REQUESTED_BY_TAG: caller.name, TRIGGER_KEY_TAG: key})
            self._active.put(key, _Coalesced(run_id, self.clock()))
            return run_id

    def _still_active(self, runs: ReportRuns, key: str) -> str | None:
        known, entry = self._active.get(key)
        if not known:
            return None
        if self.clock() - entry.checked_at < self.recheck_seconds:
            return entry.run_id
        run = runs.run_info(entry.run_id)
        if run is not None and run.status in RUNNING_STATES:
            return entry.run_id
        self._active.discard(key)
        return None

    def _launch(self, runs: ReportRuns, instant: str | None, tags: dict[str, str]) -> str:
        trigger_id = str(uuid.uuid4())
        try:
            return runs.launch_report(instant, {**tags, TRIGGER_ID_TAG: trigger_id})
        except LaunchUnconfirmed:
            # Dagster may have created the run and not answered in time: find it by its tag.
            for attempt in range(LOOKUP_ATTEMPTS):
                if attempt:
                    self.sleep(LOOKUP_PAUSE_SECONDS)
                try:
                    run_id = runs.find_run({TRIGGER_ID_TAG: trigger_id}, None)
                except DagsterUnavailable:
                    continue
                if run_id is not None:
                    return run_id
            raise

    def forget(self) -> None:
        """Drop the runs remembered in memory (as a restarted API would; tests)."""
        self._active.clear()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_lock:
            if len(self._locks) > 10_000:  # forget idle locks now and then
                self._locks = {k: lock for k, lock in self._locks.items() if lock.locked()}
            return self._locks.setdefault(key, threading.Lock())
