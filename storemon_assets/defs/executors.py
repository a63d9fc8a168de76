"""Where a run's steps execute: `STOREMON_EXECUTOR` (settings.py; docs/deployment.md)."""

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
