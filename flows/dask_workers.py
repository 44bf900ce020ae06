"""The Dask task runner pagereel uses: Prefect's, plus a check on every worker that it reaches the Prefect API.

Each task carries the flow's Prefect settings to its worker, the API URL among them: that URL,
not the worker's own PREFECT_API_URL, is where the worker records its task runs. A worker that
cannot reach it would fail every task with a connection error, so each worker checks once when
it joins and logs one warning naming itself and the URL.
"""

from __future__ import annotations

import logging
import socket
from typing import Any
from urllib.parse import urlsplit

from distributed.diagnostics.plugin import WorkerPlugin
from prefect_dask import DaskTaskRunner

log = logging.getLogger("pagereel.dask_workers")

#: Longest a worker waits for the API's TCP port when it joins.
CONNECT_TIMEOUT_S = 2.0


def api_unreachable(api_url: str) -> str | None:
    """Why a TCP connection to the API at ``api_url`` cannot be opened from here, or None when it can."""
    parts = urlsplit(api_url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "not a URL"
    if not parts.hostname:
        return "not a URL"
    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


class PrefectApiCheck(WorkerPlugin):
    """On each worker, once: can it reach the Prefect API the flow's tasks will report to?"""

    name = "pagereel-prefect-api"

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def setup(self, worker: Any) -> None:
        why = api_unreachable(self.api_url)
        if why is not None:
            log.warning("this Dask worker (%s on host %s) cannot reach the Prefect API at %s (%s): its task runs "
                        "will fail; set PREFECT_API_URL where the flow runs to a server every worker reaches",
                        getattr(worker, "address", "?"), socket.gethostname(), self.api_url, why)


class PagereelDaskTaskRunner(DaskTaskRunner):
    """Prefect's Dask task runner; each worker of the cluster checks that it reaches the flow's Prefect API."""

    @property
    def client(self) -> Any:
        fresh = self._client is None
        client = super().client
        if fresh and not _inside_a_worker():
            from prefect.settings import PREFECT_API_URL

            api = PREFECT_API_URL.value()
            if api:
                client.register_plugin(PrefectApiCheck(api))
        return client


def _inside_a_worker() -> bool:
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True
