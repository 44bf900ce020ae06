"""How a command-line run ends on SIGTERM (a scheduler, `timeout`, a Prefect cancel): one line, exit 143.

During a flow Prefect's own SIGTERM handler unwinds the run first (its state becomes Crashed,
``finally`` blocks remove temporary files), then hands the signal on to ours, which ends the
process. A thread stuck in a system call could hold that unwinding forever, so a watcher that
hears every signal through ``signal.set_wakeup_fd`` ends the process anyway after a grace period.
Files only ever reach their final names by rename, so nothing half-written is left where a
finished file belongs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("pagereel.stopping")

#: Seconds the run has to unwind after SIGTERM before the process ends regardless.
GRACE_S = 10.0
EXIT_CODE = 128 + signal.SIGTERM
MESSAGE = ("error: stopped by SIGTERM before the run finished; finished files were left as they were; "
           "run the same command again to resume from the cache")

_exiting = threading.Lock()


@contextmanager
def stop_on_sigterm(grace_s: float = GRACE_S) -> Iterator[None]:
    """While this holds, SIGTERM ends the process with :data:`MESSAGE` on stderr and exit status 143."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; a library caller keeps its own
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # pragma: no cover - only the main thread may set it, checked above
        previous_fd = -1
    watcher = threading.Thread(target=_watch, args=(read_fd, grace_s), name="pagereel-sigterm", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGTERM, previous_handler)
        os.close(write_fd)  # the watcher reads the end of the pipe and leaves


def _on_sigterm(signum: int, frame: object) -> None:
    _exit_now()


def _watch(read_fd: int, grace_s: float) -> None:
    try:
        while True:
            data = os.read(read_fd, 512)
            if not data:
                return
            if signal.SIGTERM in data:
                break
    finally:
        os.close(read_fd)
    # The main thread is unwinding the run; should a stuck thread hold it, end the process anyway.
    threading.Event().wait(grace_s)
    logger.warning("the run did not stop within %g s of SIGTERM; ending it", grace_s)
    _exit_now()


def _exit_now() -> None:
    if not _exiting.acquire(blocking=False):
        return  # the other path is already ending the process
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.write(2, (MESSAGE + "\n").encode())
    os._exit(EXIT_CODE)
