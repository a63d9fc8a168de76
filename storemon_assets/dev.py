"""`storemon dev`: the Dagster webserver and daemon (`dagster dev`) and the HTTP API, started
and stopped as one foreground command (what `make run` and `make dev` serve).

One Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything it started within STOP_GRACE_SECONDS
plus a moment. Each service runs in a process group of its own, so the supervisor alone decides
how it is stopped: the group gets SIGINT, which `dagster dev` (webserver, daemon, code servers,
run workers) and uvicorn handle as a graceful stop; whatever is still alive after the grace
period gets SIGKILL. What is usually left by then is a Python interpreter garbage-collecting its
way out after its shutdown is done (measured: 2-4 s for the Dagster webserver and daemon on
this 2-core machine), and the code-server processes, which `dagster dev` leaves to notice by
themselves that their parent has gone. Signals that were ignored when the supervisor started
(a shell starting it in the background) are restored for the services, so they always stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from storemon_assets import settings

STOP_GRACE_SECONDS = 3.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CHECKOUT = Path(__file__).resolve().parent.parent
DEFINITIONS_MODULE = "storemon_assets.defs.definitions"
# Dagster 1.13 marks `dagster dev` as superseded by `dg dev` (a separate package, dagster-dg-cli)
# and says so on every start; the message is about Dagster's tooling, not about storemon, and the
# command is still supported. Only that one message is filtered (start of the message, literal).
DAGSTER_DEV_WARNING_FILTER = "ignore:Function `dev_command` is superseded"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def dagster_dev_command(host: str, port: int) -> list[str]:
    """`dagster dev` on the project's workspace (the checkout's workspace.yaml when there is one)."""
    workspace = CHECKOUT / "workspace.yaml"
    target = ["-w", str(workspace)] if workspace.exists() else ["-m", DEFINITIONS_MODULE]
    return [_bin("dagster"), "dev", *target, "-h", host, "-p", str(port)]


def api_command(host: str, port: int) -> list[str]:
    return [_bin("storemon"), "api", "--host", host, "--port", str(port)]


def dagster_dev_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment `dagster dev` runs in: the caller's, plus the one warning filter above."""
    filters = [f for f in (env.get("PYTHONWARNINGS", ""), DAGSTER_DEV_WARNING_FILTER) if f]
    return {**env, "PYTHONWARNINGS": ",".join(filters)}


def _as_service_child() -> None:
    """In the child before exec: a process group of its own, default signal handling."""
    os.setsid()
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


@dataclass
class Service:
    name: str
    process: subprocess.Popen

    @property
    def group_alive(self) -> bool:
        """Whether any process of the service's group is left (its leader is reaped first)."""
        self.process.poll()
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a process of the group is there but no longer ours to signal
            return True
        return True

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def start_service(name: str, command: list[str], env: dict[str, str], cwd: Path) -> Service:
    process = subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=_as_service_child)
    return Service(name, process)


def stop_services(services: list[Service], grace: float = STOP_GRACE_SECONDS) -> list[str]:
    """SIGINT to every group, then SIGKILL to what is left after `grace` s; returns the names of
    the services that had to be killed."""
    for service in services:
        service.signal_group(signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(s.group_alive for s in services):
        time.sleep(0.05)
    killed = [s.name for s in services if s.group_alive]
    for service in services:
        service.signal_group(signal.SIGKILL)
    for service in services:
        service.process.wait()
    return killed


def _say(message: str) -> None:
    """A line on stderr; a closed terminal or pipe (EIO, EPIPE) must not stop the shutdown."""
    try:
        print(f"storemon dev: {message}", file=sys.stderr, flush=True)
    except OSError:
        pass


def serve(host: str, port: int, api_port: int, grace: float = STOP_GRACE_SECONDS) -> int:
    """Run Dagster and the API until a stop signal or until one of them exits on its own."""
    stop_requested: list[int] = []

    def request_stop(signum, _frame):
        stop_requested.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, request_stop)
    env = dict(os.environ)
    services: list[Service] = []
    exited = None
    try:
        services.append(
            start_service("dagster", dagster_dev_command(host, port), dagster_dev_environment(env), CHECKOUT)
        )
        services.append(
            start_service(
                "api",
                api_command(host, api_port),
                {**env, settings.DAGSTER_URL.name: f"http://{host}:{port}"},
                CHECKOUT,
            )
        )
        while not stop_requested and exited is None:
            exited = next((s for s in services if s.process.poll() is not None), None)
            time.sleep(0.1)
    finally:  # whatever happened here (even an exception), nothing that was started stays behind
        started = time.monotonic()
        if stop_requested:
            _say(f"{signal.Signals(stop_requested[0]).name}, stopping Dagster and the API")
        elif exited is not None:
            _say(f"{exited.name} exited with code {exited.process.returncode}, stopping")
        killed = stop_services(services, grace)
        _say(
            f"stopped in {time.monotonic() - started:.1f} s"
            + (f" ({', '.join(killed)}: the rest killed after {grace:g} s)" if killed else "")
        )
    return 0 if stop_requested else 1
