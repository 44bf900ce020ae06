"""pagereel's log records in the Prefect UI: inside a flow or task run, ``pagereel.*`` records join its logs.

Every module logs to ``logging.getLogger("pagereel.<module>")``. Prefect attaches its API log
handler to the loggers named in ``PREFECT_LOGGING_EXTRA_LOGGERS`` when it sets up logging, and
reads its settings once, when first imported. So :func:`route_to_prefect` sets the variables for
this process before Prefect loads (and for every process it starts: Dask and Ray workers, the runs
of ``prefect serve``), and attaches the handler itself when Prefect was imported first (a worker
running a deployment, a test session). Records made outside any run (``python -m flows status``,
``cache clear``) stay on the console only.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

#: The parent of every pagereel logger.
LOGGER = "pagereel"
EXTRA_LOGGERS = "PREFECT_LOGGING_EXTRA_LOGGERS"
WHEN_MISSING_FLOW = "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"


def prefect_logging_env(environ: Any = os.environ) -> None:
    """Name ``pagereel`` among Prefect's extra loggers in ``environ``; records outside a run are not an error."""
    named = [n.strip() for n in environ.get(EXTRA_LOGGERS, "").split(",") if n.strip()]
    if LOGGER not in named:
        environ[EXTRA_LOGGERS] = ",".join([*named, LOGGER])
    # Prefect's default ("warn") would print a warning for every record made outside a run.
    environ.setdefault(WHEN_MISSING_FLOW, "ignore")


def _run_log_handler() -> logging.Handler:
    from prefect.context import get_run_context
    from prefect.exceptions import MissingContextError
    from prefect.logging.handlers import APILogHandler

    class RunLogHandler(APILogHandler):
        """Prefect's API handler for records made inside a run; others are left to the console."""

        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "flow_run_id", None) is None:
                try:
                    get_run_context()
                except MissingContextError:
                    return
            super().emit(record)

    return RunLogHandler()


def route_to_prefect() -> None:
    """Send ``pagereel.*`` records made inside flow and task runs to the run's logs, here and in child processes."""
    prefect_logging_env()
    if "prefect" not in sys.modules:
        return  # Prefect reads the variables when it loads, and attaches its own handler
    from prefect.context import get_settings_context
    from prefect.logging.handlers import APILogHandler

    if LOGGER in (get_settings_context().settings.logging.extra_loggers or ()):
        return  # read before Prefect loaded: it attaches its handler when it sets up logging
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        logger.addHandler(_run_log_handler())


__all__ = ["LOGGER", "prefect_logging_env", "route_to_prefect"]
