"""Start the real thing on 127.0.0.1, from a checkout: `dagster dev` (webserver + daemon), the
storemon API, Celery workers; for the end-to-end tests and the benchmark scripts, which share it.
Each server runs in its own process group and is stopped whole."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from storemon_assets import settings
from storemon_assets.dev import dagster_dev_command, dagster_dev_environment

REPO = Path(__file__).resolve().parent.parent
LOCAL_INSTANCE_CONFIG = REPO / "deploy" / "local" / "dagster.yaml"
SERVER_INSTANCE_CONFIG = REPO / "deploy" / "dagster.yaml"  # PostgreSQL-backed, settings from the environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value is not None and value is not False:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def _service(args: list[str], env: dict[str, str], log_path: Path, ready_url: str, what: str, timeout: float):
    """Run a command in its own process group until `ready_url` answers; stop the whole group after."""
    log = log_path.open("wb")
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: process.poll() is not None or _answers(ready_url) or None, timeout, what)
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log_path.read_text()[-2000:]}")
        yield
    finally:
        stop_process_group(process)
        log.close()


@contextmanager
def dagster_dev(home: Path, extra_env: dict[str, str] | None = None, instance_config: Path = LOCAL_INSTANCE_CONFIG):
    """Run `dagster dev -w workspace.yaml` with storemon and Dagster homes under `home`.

    `instance_config` becomes `$DAGSTER_HOME/dagster.yaml`: by default the instance `make run`
    uses. Yields the webserver URL. The server runs in its own process group, which is stopped
    as a whole: signalling only the parent leaves children running.
    """
    port = free_port()
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(instance_config, dagster_home / "dagster.yaml")
    env = {**os.environ, settings.HOME.name: str(home), "DAGSTER_HOME": str(dagster_home), **(extra_env or {})}
    url = f"http://127.0.0.1:{port}"
    # The command line and environment `make run` uses (storemon dev).
    args, env = dagster_dev_command("127.0.0.1", port), dagster_dev_environment(env)
    with _service(args, env, home / "dagster_dev.log", f"{url}/server_info", "the Dagster webserver", 120):
        yield url


@contextmanager
def storemon_api(home: Path, dagster_url: str):
    """Run `storemon api` on a free port in front of `dagster_url`; yields its base URL."""
    port = free_port()
    env = {**os.environ, settings.HOME.name: str(home), settings.DAGSTER_URL.name: dagster_url}
    url = f"http://127.0.0.1:{port}"
    args = [str(Path(sys.executable).parent / "storemon"), "api", "--host", "127.0.0.1", "--port", str(port)]
    with _service(args, env, home / f"api_{port}.log", f"{url}/openapi.json", "the storemon API", 60):
        yield url


@contextmanager
def storemon_workers(count: int, env: dict[str, str], log_dir: Path, visibility_timeout: int = 3600):
    """Start `count` Celery workers (`storemon worker`, one step at a time each) and wait until
    each is ready; yields their processes and log files. Each runs in its own process group, so
    a test can kill one whole worker as a lost machine would."""
    storemon = str(Path(sys.executable).parent / "storemon")
    started: list[tuple[subprocess.Popen, Path]] = []
    try:
        for i in range(count):
            log_path = log_dir / f"worker{i}.log"
            args = [storemon, "worker", "--name", f"worker{i}@%h", "--visibility-timeout", str(visibility_timeout)]
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            started.append((process, log_path))
        for process, log_path in started:
            wait_for(
                lambda p=process, log=log_path: (
                    p.poll() is not None or " ready." in log.read_text(errors="replace") or None
                ),
                60,
                f"Celery worker {log_path.name}",
                interval=0.5,
            )
            if process.poll() is not None:
                raise RuntimeError(f"worker exited: {log_path.read_text()[-2000:]}")
        yield started
    finally:
        for process, _ in started:
            stop_process_group(process, grace=10)


def stop_process_group(process: subprocess.Popen, grace: float = 20) -> None:
    """Stop every process of the group: SIGINT (what `dagster dev` handles, as Ctrl-C; measured
    ~1 s), then SIGTERM, then SIGKILL for whatever is left."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    time.sleep(1)  # children notice the parent's exit
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(10)


def prepared_home(root: Path) -> Path:
    """A storemon home whose database already holds the bundled sample."""
    from storemon_assets.db.engine import open_database
    from storemon_assets.service import ingest_files
    from storemon_assets.settings import SAMPLE_DATA_DIR, sqlite_url

    engine = open_database(sqlite_url(root / "data" / "storemon.db"))
    ingest_files(engine, sorted(SAMPLE_DATA_DIR.glob("*.csv")))
    engine.dispose()
    return root


def poll_report(api: str, report_id: str, timeout: float = 120, headers: dict | None = None):
    """GET /get_report until the report is no longer running; its last answer (an httpx.Response)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{api}/get_report", params={"report_id": report_id}, headers=headers, timeout=30)
        if response.headers["content-type"].startswith("text/csv") or response.json().get("status") != "Running":
            return response
        time.sleep(1)
    raise TimeoutError(f"report {report_id} still running after {timeout} s")
