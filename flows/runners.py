"""One factory from ``settings.runner`` to a Prefect task runner, with a thread fallback.

Apply it with ``video_flow.with_options(task_runner=runner)``. A runner whose library is not
installed falls back to threads with one warning; the name of what actually runs is returned so
it can be recorded in ``optimizations_used``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

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
            from prefect_dask import DaskTaskRunner
        except ImportError:
            return _fallback("dask", "prefect-dask is not installed")
        if runner.address:
            return DaskTaskRunner(address=runner.address), "dask"
        # One thread per worker: kernels release the GIL, but x264 and NumPy use their own threads.
        # ":0": the scheduler always serves HTTP, and a fixed port (8787) clashes with any other cluster.
        cluster = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}
        return DaskTaskRunner(cluster_kwargs=cluster), "dask"
    if runner.kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError:
            return _fallback("ray", "prefect-ray is not installed")
        init = {"num_cpus": workers, "include_dashboard": False, "log_to_driver": False}
        return RayTaskRunner(address=runner.address, init_kwargs=init), "ray"
    return ThreadPoolTaskRunner(max_workers=workers), "thread"


def _fallback(kind: str, why: str) -> tuple[Any, str]:
    log.warning("runner %r is not available (%s); running scenes on threads instead", kind, why)
    return ThreadPoolTaskRunner(max_workers=default_workers()), "thread"
