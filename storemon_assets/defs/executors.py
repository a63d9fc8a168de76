"""Where a run's steps execute, chosen by `STOREMON_EXECUTOR` (settings.py).

- `in_process` (default): every step in the run's own process; cheapest for short steps.
- `multiprocess`: a child process per step, so the report's shard steps run in parallel on
  the cores of one machine (each child pays Dagster's start-up, ~2-3 s here).
- `celery`: each step is a task on the Celery broker (`STOREMON_CELERY_BROKER`) and runs on
  whichever `storemon worker` takes it, on any machine that reaches the broker, the Dagster
  instance and the storemon database.

Celery is configured so that a step whose worker dies is not lost: a task is acknowledged only
after it ran (`task_acks_late`), a task whose pool process was killed goes back to the queue
(`task_reject_on_worker_lost`), and a task whose whole worker vanished is handed to another
worker once `visibility_timeout` has passed. That timeout must be longer than the longest
step, or a slow step would be run twice (harmless here: shard results are written atomically
under the run's id, but wasteful).
"""

from __future__ import annotations

import dagster as dg

from storemon_assets import settings

CELERY_QUEUE = "dagster"  # the queue dagster-celery submits steps to by default
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 3600


def celery_app_settings(visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS) -> dict:
    """The Celery settings both sides use: the executor that submits steps, the workers that run them."""
    return {
        "broker": settings.celery_broker(),
        "backend": settings.celery_broker(),
        "config_source": {
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "broker_transport_options": {
                # dagster-celery's defaults for publishing, plus when an unacknowledged task
                # of a dead worker is handed out again (checked every few seconds).
                "max_retries": 3,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
                "visibility_timeout": visibility_timeout,
                "unacked_restore_interval": max(1, min(10, visibility_timeout // 4)),
                "unacked_restore_throttle": 1,
            },
            "result_backend_transport_options": {"visibility_timeout": visibility_timeout},
        },
    }


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
