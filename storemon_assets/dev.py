"""`storemon dev`: the Dagster webserver and daemon (`dagster dev`) and the HTTP API, started
and stopped as one foreground command (what `make run` and `make dev` serve).

Without DAGSTER_HOME, Dagster's instance lives in `<data folder>/dagster_home` with the shipped
settings (`with_dagster_home`), as under make: `storemon dev` is the same command outside it.

One Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything it started within STOP_GRACE_SECONDS
plus a moment. Each service runs in a process group of its own, so the supervisor alone decides
how it is stopped: each service's own process gets SIGINT, on which `dagster dev` stops its
webserver and daemon in order (through the pipes it keeps to them) and then its code servers,
and uvicorn finishes its requests; whatever is still alive after the grace period gets SIGKILL.
Most of a stop used to be interpreters tearing down the modules they imported after their
shutdown is done; the API skips that part (`storemon api` ends with
os._exit once uvicorn has stopped), and so do Dagster's processes (QUICK_EXIT). Signals that were ignored when the supervisor started (a shell
starting it in the background) are restored for the services, so they always stop.
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
DAGSTER_HOME = "DAGSTER_HOME"  # Dagster's own variable: where its instance (runs, events, settings) lives
LOCAL_INSTANCE_SETTINGS = CHECKOUT / "deploy" / "local" / "dagster.yaml"
# Dagster 1.13 marks `dagster dev` as superseded by `dg dev` (a separate package, dagster-dg-cli)
# and says so on every start; the message is about Dagster's tooling, not about storemon, and the
# command is still supported. Only that one message is filtered (start of the message, literal).
DAGSTER_DEV_WARNING_FILTER = "ignore:Function `dev_command` is superseded"
# Its sitecustomize.py ends Dagster's webserver, daemon, code server and `dagster dev` once their own
# shutdown is done, without freeing their modules one by one (that file says why).
QUICK_EXIT = Path(__file__).resolve().parent / "dev_quick_exit"


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
    """The environment `dagster dev` runs in: the caller's, plus the one warning filter above and
    QUICK_EXIT first on PYTHONPATH (Dagster's service processes skip their interpreter's teardown)."""
    filters = [f for f in (env.get("PYTHONWARNINGS", ""), DAGSTER_DEV_WARNING_FILTER) if f]
    path = [p for p in (str(QUICK_EXIT), env.get("PYTHONPATH", "")) if p]
    return {**env, "PYTHONWARNINGS": ",".join(filters), "PYTHONPATH": os.pathsep.join(path)}


def with_dagster_home(env: dict[str, str]) -> dict[str, str]:
    """The environment with DAGSTER_HOME: the caller's, else a persistent one under the data folder
    (`make dev`'s too), holding the shipped instance settings (deploy/local/dagster.yaml: no
    telemetry, no first-visit prompt). Without it, `dagster dev` would make a throw-away
    `.tmp_dagster_home_*` in the checkout, forgetting every run at each start, and ask both."""
    if env.get(DAGSTER_HOME, "").strip():
        return env
    home = settings.data_home() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if LOCAL_INSTANCE_SETTINGS.exists():  # an installed package has no deploy/: Dagster's defaults then
        kept = install_instance_settings(home, LOCAL_INSTANCE_SETTINGS)
        if kept:
            _say(kept)
    return {**env, DAGSTER_HOME: str(home)}


def install_instance_settings(home: Path, shipped: Path) -> str | None:
    """Put the shipped dagster.yaml into `home` unless someone edited the copy there; then keep
    theirs and say so (the message). The copy last written is kept beside it (`.shipped`): a
    dagster.yaml equal to it (or older than that record) was written here, not edited, and follows
    the shipped file when a new release changes it."""
    target, record = home / "dagster.yaml", home / "dagster.yaml.shipped"
    current, written = shipped.read_bytes(), record.read_bytes() if record.exists() else None
    if target.exists() and written is not None and target.read_bytes() not in (written, current):
        return f"keeping {target}: edited here, it differs from the shipped {shipped.name} (delete it to take that)"
    for path in (target, record):
        path.write_bytes(current)
    return None


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

    def signal_leader(self, sig: int) -> None:
        """Signal the service's own process only: it stops what it started, in its own order."""
        try:
            self.process.send_signal(sig)
        except ProcessLookupError:
            pass

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def start_service(name: str, command: list[str], env: dict[str, str], cwd: Path) -> Service:
    process = subprocess.Popen(command, env=env, cwd=cwd, preexec_fn=_as_service_child)
    return Service(name, process)


def stop_services(services: list[Service], grace: float = STOP_GRACE_SECONDS) -> list[str]:
    """SIGINT to each service's leader, then SIGKILL to what is left of its group after `grace` s;
    returns the names of the services that had to be killed.

    Only the leader: `dagster dev` then stops its webserver and daemon itself, through the pipes it
    keeps to them for that, and waits for them. A SIGINT to the whole group would interrupt each of
    them wherever it was, beside that orderly shutdown, and slow it down."""
    for service in services:
        service.signal_leader(signal.SIGINT)
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
    env = with_dagster_home(dict(os.environ))
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
