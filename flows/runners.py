"""One factory from ``settings.runner`` to a Prefect task runner, with a thread fallback.

Apply it with ``video_flow.with_options(task_runner=runner)``. A runner whose library is not
installed falls back to threads with one warning; the name of what actually runs is returned so
it can be recorded in ``optimizations_used``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from flows.settings import RunnerSettings

log = logging.getLogger("pagereel.runners")


def default_workers() -> int:
    """Workers for a local pool: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def make_task_runner(runner: RunnerSettings) -> tuple[Any, str]:
    """The task runner ``runner`` asks for, and the name of the one that will really run."""
    workers = runner.max_workers or default_workers()
    if runner.kind == "process":
        return ProcessPoolTaskRunner(max_workers=workers), "process"
    if runner.kind == "dask":
        try:
            from flows.dask_workers import PagereelDaskTaskRunner  # Prefect's DaskTaskRunner, plus worker checks
        except ImportError:
            return _fallback("dask", "prefect-dask is not installed")
        if runner.address:
            return PagereelDaskTaskRunner(address=runner.address), "dask"
        # One thread per worker: kernels release the GIL, but x264 and NumPy use their own threads.
        # ":0": the scheduler always serves HTTP, and a fixed port (8787) clashes with any other cluster.
        cluster = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}
        return PagereelDaskTaskRunner(cluster_kwargs=cluster), "dask"
    if runner.kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError:
            return _fallback("ray", "prefect-ray is not installed")
        if runner.address:
            # Ray refuses num_cpus (and a dashboard choice) when joining a cluster that already runs.
            return RayTaskRunner(address=runner.address, init_kwargs={"log_to_driver": False}), "ray"
        init = {"num_cpus": workers, "include_dashboard": False, "log_to_driver": False}
        return RayTaskRunner(init_kwargs=init), "ray"
    return ThreadPoolTaskRunner(max_workers=workers), "thread"


def _fallback(kind: str, why: str) -> tuple[Any, str]:
    log.warning("runner %r is not available (%s); running scenes on threads instead", kind, why)
    return ThreadPoolTaskRunner(max_workers=default_workers()), "thread"


@contextmanager
def prefect_api_for_workers(runner: RunnerSettings) -> Iterator[str | None]:
    """Make sure the workers of ``runner`` report to this process's Prefect API, never to servers of their own.

    Each task carries the flow's Prefect settings to its worker, and a worker whose settings name no
    API starts a temporary Prefect server of its own (one per worker process, recording its task
    runs where nobody looks). Without PREFECT_API_URL this process starts its temporary server
    before the workers start and names it in the settings they receive; one warning says when
    workers on other machines cannot reach it.
    """
    if runner.kind == "thread":
        yield None
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api = PREFECT_API_URL.value()
    if api:
        if runner.address and _is_loopback(api) and not _is_loopback(runner.address):
            log.warning("the Prefect API %s is on this machine only: workers of %s on other machines cannot report "
                        "to it; set PREFECT_API_URL to an address every machine reaches", api, runner.address)
        yield api
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    if runner.address and not _is_loopback(runner.address):
        log.warning("PREFECT_API_URL is not set: workers of %s report to this machine's temporary Prefect API "
                    "(%s), which other machines cannot reach; set PREFECT_API_URL to a server every machine "
                    "reaches (prefect server start --host 0.0.0.0)", runner.address, server.api_url)
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield server.api_url


def _is_loopback(address: str) -> bool:
    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
