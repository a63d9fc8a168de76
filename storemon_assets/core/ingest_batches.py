"""Which landing files go into the next ingestion run, and how long a retry waits.

A run reads a bounded amount of data, so a backlog drains over several runs, and no file waits
behind a large backlog for long:

- *small* files (each within the byte budget) go oldest first until the budget is used up;
- with them goes the oldest *large* file (larger than the budget on its own), one per run.

So a run reads at most the budget plus one large file; large files drain one per run in
arrival order; a small file goes into the next run unless more than a budget's worth of small
files arrived before it. Neither kind can starve the other.
"""

from __future__ import annotations

from collections.abc import Sequence


def choose_batch(pending: Sequence[tuple[str, int]], budget_bytes: int, max_files: int) -> list[str]:
    """Names for the next run from `pending` (name, size in bytes), given oldest first."""
    batch: list[str] = []
    used = 0
    large = next((name for name, size in pending if size > budget_bytes), None)
    if large is not None:
        batch.append(large)
    for name, size in pending:
        if len(batch) >= max_files:
            break
        if size <= budget_bytes and used + size <= budget_bytes:
            batch.append(name)
            used += size
    # Small files first: if the large one fails, they are in already.
    return batch[1:] + batch[:1] if large is not None else batch


def retry_delay_seconds(failed_attempts: int, first_delay_seconds: float) -> float:
    """Wait before the next attempt after `failed_attempts` failures, doubling each time: with
    30 s, five attempts span 30 s + 1 + 2 + 4 min, about 7.5 minutes."""
    return first_delay_seconds * 2 ** max(0, failed_attempts - 1)
