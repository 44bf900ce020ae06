"""Per-run plumbing the flows share: result storage, and a recorder of stage times and cache use."""

from __future__ import annotations

import functools
import hashlib
import logging
import resource
import time
from typing import Any

from prefect.filesystems import LocalFileSystem

from flows.settings import Settings
from tasks.models import WorkflowMetrics

log = logging.getLogger("pagereel")


@functools.cache
def _local_storage(path: str) -> LocalFileSystem:
    block = LocalFileSystem(basepath=path)
    # Tasks find their storage through the API, so the block must be saved first.
    block.save(f"pagereel-results-{hashlib.sha256(path.encode()).hexdigest()[:12]}", overwrite=True)
    return block


def result_storage(settings: Settings) -> LocalFileSystem | None:
    """Where task results persist: a local folder (default)."""
    path = settings.cache.dir.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return _local_storage(str(path))


class RunRecorder:
    """Runs tasks for a flow and keeps what they cost: seconds per stage, cache hits and misses."""

    def __init__(self) -> None:
        self.metrics = WorkflowMetrics()
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()

    def run(self, stage: str, task: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``task`` and return its result, raising its exception if it failed."""
        t0 = time.perf_counter()
        state = task(*args, return_state=True, **kwargs)
        self._count(stage, state, time.perf_counter() - t0)
        return state.result()

    def _count(self, stage: str, state: Any, seconds: float) -> None:
        m = self.metrics
        m.stage_seconds[stage] = round(m.stage_seconds.get(stage, 0.0) + seconds, 4)
        if state.is_completed():
            if state.name == "Cached":
                m.cache_hits += 1
            else:
                m.cache_misses += 1

    def finish(self) -> WorkflowMetrics:
        m = self.metrics
        m.wall_seconds = round(time.perf_counter() - self._wall0, 3)
        m.cpu_seconds = round(time.process_time() - self._cpu0, 3)
        m.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return m

    def optimizations(self, settings: Settings) -> list[str]:
        from kernels._jit import kernel_backend

        used = [f"runner:{settings.runner.kind}", f"kernels:{kernel_backend()}"]
        if settings.cache.enabled:
            used.append("cache:local")
        return used
