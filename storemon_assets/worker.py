"""The Celery side of STOREMON_EXECUTOR=celery: the executor, the settings it and the workers
share, and the app a `storemon worker` runs (dagster-celery's step task, storemon's settings).

`storemon worker` builds the app with `make_worker_app`; `celery -A storemon_assets.worker worker
-Q dagster --prefetch-multiplier=1` uses the module-level `app` (default settings).

Celery is configured so that a step whose worker dies is not lost: a task is acknowledged only
after it ran (`task_acks_late`), a task whose pool process was killed goes back to the queue
(`task_reject_on_worker_lost`), and a task whose whole worker vanished is handed to another
worker once `visibility_timeout` has passed. That timeout must be longer than the longest
step, or a slow step would be run twice (harmless here: shard results are written atomically
under the run's id, but wasteful).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from storemon_assets import settings

if TYPE_CHECKING:
    import dagster as dg

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


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor with storemon's settings (resources.selected_executor, STOREMON_EXECUTOR=celery)."""
    try:
        from dagster_celery import celery_executor as dagster_celery_executor
    except ImportError as exc:  # the `celery` extra is not installed
        raise ImportError(
            f"{settings.EXECUTOR.name}=celery needs dagster-celery: pip install 'storemon[celery]'"
        ) from exc
    return dagster_celery_executor.configured(celery_app_settings(), name="storemon_celery")


def make_worker_app(visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS):
    """A Celery app with dagster-celery's `execute_plan` task registered, configured like the executor."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    worker_app = make_app(CeleryExecutor.for_cli(**celery_app_settings(visibility_timeout)).app_args())
    create_task(worker_app)
    return worker_app


@functools.cache
def _module_app():
    return make_worker_app()


def __getattr__(name: str):
    # `celery -A storemon_assets.worker` looks up `app`; built on first use only (and then the same
    # app at every look-up), so `storemon worker` (which builds its own, with its options) registers
    # the task once.
    if name == "app":
        return _module_app()
    raise AttributeError(name)
