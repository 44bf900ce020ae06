"""A command's process ends once its work is done, without the interpreter's slow teardown.

After a video run, tearing the interpreter down (every module's objects freed one by one: PyAV,
NumPy, pydantic's schemas, Prefect's clients) takes 0.3-0.9 s, a sixth of a cached re-run, and
nobody sees its result. :func:`run_then_exit` keeps what a normal exit does that matters, in the
same order: threads' exit hooks run and non-daemon threads are joined (Prefect's log and event
queues drain to the API there), then atexit handlers (a temporary Prefect server stops, logging
flushes its handlers), then the standard streams flush; then the process ends with the command's
exit status.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn


def exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` ends a process with; a message other than a number is printed first."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run_then_exit(command: Callable[[], object]) -> NoReturn:
    """Run ``command`` (a Typer app) as this process's command, then end the process at once."""
    try:
        command()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    status = exit_status(code)
    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter itself calls first at exit
    if shutdown is None:  # pragma: no cover - a Python without it exits the ordinary way
        sys.exit(status)
    shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a reader that went away
            pass
    os._exit(status)
