"""The Celery app `celery -A storemon_assets.worker` runs: built once, configured like the executor
(no broker is contacted here: building an app does not connect)."""

from __future__ import annotations

import storemon_assets.worker as worker


def test_the_module_app_is_built_once_with_the_step_task_and_late_acknowledgement():
    app = worker.app
    assert worker.app is app  # before, each look-up built (and registered the task on) a new app
    assert any(name.endswith("execute_plan") for name in app.tasks)
    assert app.conf.task_acks_late is True and app.conf.task_reject_on_worker_lost is True
