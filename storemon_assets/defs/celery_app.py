"""The Celery app a storemon worker runs: dagster-celery's step task, storemon's settings.

`storemon worker` builds it with `make_worker_app`; `celery -A storemon_assets.defs.celery_app
worker -Q dagster --prefetch-multiplier=1` uses the module-level `app` (default settings).
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from storemon_assets.defs.executors import DEFAULT_VISIBILITY_TIMEOUT_SECONDS, celery_app_settings


def make_worker_app(visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS):
    """A Celery app with dagster-celery's `execute_plan` task registered, configured like the executor."""
    worker_app = make_app(CeleryExecutor.for_cli(**celery_app_settings(visibility_timeout)).app_args())
    create_task(worker_app)
    return worker_app


def __getattr__(name: str):
    # `celery -A storemon_assets.defs.celery_app` looks up `app`; built on first use only, so
    # `storemon worker` (which builds its own, with its options) registers the task once.
    if name == "app":
        return make_worker_app()
    raise AttributeError(name)
