"""Where a run's steps execute, chosen by `STOREMON_EXECUTOR` (settings.py).

- `in_process` (default): every step in the run's own process; cheapest for short steps.
- `multiprocess`: a child process per step, so the report's shard steps run in parallel on
  the cores of one machine (each child pays Dagster's start-up, ~2-3 s here).
- `celery`: each step is a task on the Celery broker (`STOREMON_CELERY_BROKER`) and runs on
  whichever `storemon worker` takes it, on any machine that reaches the broker, the Dagster
  instance and the storemon database.
"""

from __future__ import annotations

import dagster as dg

from storemon_assets import settings
from storemon_assets.worker import celery_app_settings


def selected_executor() -> dg.ExecutorDefinition:
    name = settings.executor_name()
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError as exc:  # the `celery` extra is not installed
            raise ImportError(
                f"{settings.EXECUTOR.name}=celery needs dagster-celery: pip install 'storemon[celery]'"
            ) from exc
        return celery_executor.configured(celery_app_settings(), name="storemon_celery")
    # Steps are short; a process per step would cost more than the work.
    return dg.in_process_executor
