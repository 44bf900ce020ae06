"""The Dask task runner pagereel uses: Prefect's, plus a check on every worker that it reaches the Prefect API.

Each task carries the flow's Prefect settings to its worker, the API URL among them: that URL,
not the worker's own PREFECT_API_URL, is where the worker records its task runs. A worker that
cannot reach it would fail every task with a connection error, so each worker checks once when
it joins and logs one warning naming itself and the URL.
"""

from __future__ import annotations

from typing import Any

from prefect_dask import DaskTaskRunner

# The plugin lives in a module that imports nothing heavy: a fresh worker unpickles it before any task.
from flows.dask_preload import PrefectApiCheck


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
