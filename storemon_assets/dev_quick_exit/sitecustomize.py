"""Loaded by every Python process `storemon dev` starts for Dagster (its folder is put first on
PYTHONPATH there, see storemon_assets/dev.py): Dagster's long-running processes end without
tearing down their interpreter.

Once a process's own shutdown is done (its main returned or called sys.exit, its non-daemon threads
joined, every other atexit handler run: logging flushed and closed), what is left is Python
freeing each module it imported, a large cost for Dagster's import graph and nothing that
stops anything: five such processes made a Ctrl-C of `storemon dev` slow (docs/operations.md).
This handler, registered first and so run last, ends the process there with its exit status,
as `storemon api` does for itself (os._exit). A process with children (`dagster dev` and its code
server) first waits a moment for them, so none is left to be reaped by init. One child would
wait for the parent instead: multiprocessing's resource tracker, which the gRPC server starts
when it launches its first run, ends once every holder of its pipe has closed it. The parent's
end is closed first, or each stop after a run waited the whole moment for it.

Only Dagster's service processes are concerned (`dagster dev`, the webserver, the daemon, the code
server and its gRPC server); run and step workers, whose files Dagster may still be writing when
they exit, tear down as usual.
"""

import atexit
import os
import sys
import time

# How Dagster starts its service processes (argv after the interpreter, the script by its name).
SERVICES = (
    ("dagster", "dev"),
    ("-m", "dagster_webserver"),
    ("-m", "dagster._daemon", "run"),
    ("-m", "dagster", "code-server", "start"),
    ("-m", "dagster", "api", "grpc"),
)
CHILDREN_WAIT_SECONDS = 2.0


def _is_dagster_service(argv: list[str]) -> bool:
    args = tuple([os.path.basename(argv[1]), *argv[2:5]]) if len(argv) > 1 else ()
    return any(args[: len(service)] == service for service in SERVICES)


if _is_dagster_service(getattr(sys, "orig_argv", sys.argv)):
    _status = [0]
    _real_exit, _real_excepthook = sys.exit, sys.excepthook

    def _exit(status=None):
        _status[0] = 0 if status is None else status if isinstance(status, int) else 1
        _real_exit(status)

    def _excepthook(kind, value, traceback):
        _status[0] = 1
        _real_excepthook(kind, value, traceback)

    sys.exit, sys.excepthook = _exit, _excepthook
    atexit.register(lambda: end_without_teardown(_status[0]))


def end_without_teardown(status: int) -> None:
    """Flush the output, let the children end (a moment at most), and end with `status`."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    close_resource_tracker_pipe()
    deadline = time.monotonic() + CHILDREN_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.02)
        except ChildProcessError:  # none left
            break
    os._exit(status)


def close_resource_tracker_pipe() -> None:
    """Close this process's end of multiprocessing's pipe to its resource tracker, if it started
    one: the tracker ends once no process holds the pipe, and is reaped with the other children
    (not by multiprocessing's own `_stop`, whose wait has no limit while a run's process that
    inherited the pipe lives on)."""
    tracker = getattr(sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None)
    fd = getattr(tracker, "_fd", None)
    if isinstance(fd, int):
        try:
            os.close(fd)
        except OSError:
            pass
        tracker._fd = None
