"""Per-run plumbing the flows share: result storage, and a recorder of stage times and cache use."""

from __future__ import annotations

import importlib.util
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect.filesystems import LocalFileSystem

from flows import metrics as run_metrics
from flows.settings import Settings
from tasks.blobs import StoredSegment
from tasks.errors import ConfigurationError
from tasks.models import Segment, WorkflowMetrics

log = logging.getLogger("pagereel.runtime")


@contextmanager
def foreground_run() -> Iterator[None]:
    """Flow runs started in this block (a command, the Python API) send no heartbeats unless asked to.

    Prefect's heartbeat thread sleeps in one-second steps and every flow run waits for it to wake
    when it ends: up to a second at the end of each run (half a second on average, a fifth of a
    cached re-run). Heartbeats feed an automation that marks a run whose process died as Crashed;
    the user of a foreground run sees it die. A heartbeat frequency set in Prefect's settings
    (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, a profile) is kept, and so are deployment runs' heartbeats.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        yield
        return
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def result_storage(settings: Settings) -> LocalFileSystem | None:
    """Where task results persist: Redis when configured and reachable, else a local folder (see flows.cache)."""
    from flows.cache import result_storage as chosen_storage

    return chosen_storage(settings)


def with_run_options(task: Any, settings: Settings, *, fetches: bool = False, locked: bool = False,
                     in_memory: bool = True) -> Any:
    """``task`` with this run's options, the one place they are applied.

    Every stage gets the run's result storage, and a fresh computation when the cache is off. A stage
    that ``fetches`` from the network is retried ``fetch.retries`` times with Prefect's exponential
    backoff from ``fetch.retry_base_s`` (the task's jitter stays) and its result expires after
    ``fetch.cache_ttl_s``. A ``locked`` stage takes a lock per cache key when Redis is live, so two runs
    needing the same result compute it once. Without ``in_memory`` a result is read back from storage
    when needed, not kept in the flow's memory for the whole run.
    """
    from prefect.tasks import exponential_backoff

    options: dict[str, Any] = {}
    storage = result_storage(settings)
    if storage is not None:
        options["result_storage"] = storage
    if not settings.cache.enabled:
        options["refresh_cache"] = True
    if not in_memory:
        options["cache_result_in_memory"] = False
    if fetches:
        options.update(retries=settings.fetch.retries,
                       retry_delay_seconds=exponential_backoff(settings.fetch.retry_base_s),
                       cache_expiration=timedelta(seconds=settings.fetch.cache_ttl_s))
    if locked:
        from flows.cache import configure_policy

        options["cache_policy"] = configure_policy(task.cache_policy, settings)
    return task.with_options(**options)


def active_runner_name() -> str:
    """Which task runner the current flow run really uses: thread, process, dask or ray."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    name = type(ctx.task_runner).__name__ if ctx and ctx.task_runner else "ThreadPoolTaskRunner"
    for kind in ("thread", "process", "dask", "ray"):
        if kind in name.lower():  # PagereelDaskTaskRunner is a Dask runner too
            return kind
    return name


#: How long the end of a run waits for the API to record its task runs' last states (they arrive as events).
SETTLE_S = 5.0


def retries_of(task_runs: dict[str, str], settle_s: float = SETTLE_S) -> dict[str, int]:
    """How many times each task run was retried, by id, from the API (0 for those it cannot tell).

    ``task_runs`` maps each task run's id to the state type this process saw it end in. Prefect
    records task run states from events, a moment after the run: the API's run count is read once
    the API shows every run in that final state (or after ``settle_s``), in one query for them all.
    """
    if not task_runs:
        return {}
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterId

    query = TaskRunFilter(id=TaskRunFilterId(any_=list(task_runs)))
    deadline = time.monotonic() + settle_s
    try:
        with get_client(sync_client=True) as client:
            while True:
                runs = client.read_task_runs(task_run_filter=query, limit=len(task_runs))
                settled = all(str(r.state_type.value if r.state_type else "") == task_runs.get(str(r.id))
                              for r in runs) and len(runs) == len(task_runs)
                if settled or time.monotonic() > deadline:
                    return {str(r.id): max(0, r.run_count - 1) for r in runs}
                time.sleep(0.1)
    except Exception as exc:  # noqa: BLE001 - a metric must never fail a run
        log.debug("could not read the retries of %d task runs: %s", len(task_runs), exc)
        return {}


class _Progress:
    """Where per-scene progress goes: the CLI plugs a progress bar in; flows only report."""

    listener: Callable[[str, int, int], None] | None = None


PROGRESS = _Progress()


class RunRecorder:
    """Runs tasks for a flow and keeps what they cost: seconds per stage, cache hits and misses."""

    def __init__(self, runner: str | None = None) -> None:
        self.metrics = WorkflowMetrics()
        #: The runner label of this run's Prometheus series (see flows.metrics).
        self.runner = runner or active_runner_name()
        #: Called as ``(stage, done, total)`` after each scene of a stage gathered with ``progress``.
        self.on_progress: Callable[[str, int, int], None] | None = None
        #: Storage keys of the results this run used or made, for ``cache clear --url``.
        self.result_keys: list[str] = []
        #: Stages not run because an earlier run's output was taken over (``reused:<stage>`` among the optimizations).
        self.reused_stages: list[str] = []
        self._collected: dict[str, float] = {}
        #: Task runs that ran (not cached), by id: their stage and the state type they ended in.
        self._ran: dict[str, tuple[str, str]] = {}
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()

    def check_runner(self, asked: str) -> None:
        """Warn, in the run's own logs, when the runner that really runs is not the one the settings ask for."""
        if asked != self.runner:
            log.warning("runner %r was asked for but scenes run on %r: see the warning before the run, "
                        "or `python -m flows status`", asked, self.runner)

    def run(self, stage: str, task: Any, *args: Any, cached: bool = True, **kwargs: Any) -> Any:
        """Call ``task`` and return its result, raising its exception if it failed.

        ``cached=False`` marks a task that never uses the cache (it writes files): it is timed
        but not counted as a cache miss.
        """
        t0 = time.perf_counter()
        state = task(*args, return_state=True, **kwargs)
        seconds = time.perf_counter() - t0
        self._count(stage, state if cached else None, seconds)
        run_metrics.observe_stage(stage, self.runner, seconds)
        return state.result()

    def gather(self, stage: str, futures: list[Any], *, progress: bool = False, tolerate: bool = False) -> list[Any]:
        """Wait for submitted tasks in order and return their results, raising the first failure.

        With ``tolerate``, a failed task gives None and one warning instead (a missing picture must
        not cost the whole video).
        """
        t0 = time.perf_counter()
        results = []
        for n, future in enumerate(futures, start=1):
            future.wait()
            state = future.state
            self._count(stage, state, 0.0)
            if tolerate and state.is_failed():
                log.warning("%s failed and is left out: %s", stage, state.message)
                results.append(None)
            else:
                results.append(state.result())
                self._count_output(results[-1])
            if progress:
                for listener in (PROGRESS.listener, self.on_progress):
                    if listener is not None:
                        listener(stage, n, len(futures))
        m = self.metrics
        seconds = time.perf_counter() - t0
        m.stage_seconds[stage] = round(m.stage_seconds.get(stage, 0.0) + seconds, 4)
        run_metrics.observe_stage(stage, self.runner, seconds)
        return results

    def result(self, stage: str, future: Any, *, done: int | None = None, total: int | None = None) -> Any:
        """Wait for one submitted task and return its result, raising its failure; counted like :meth:`gather`.

        With ``done`` and ``total``, progress listeners hear that ``done`` of ``total`` are finished.
        """
        t0 = time.perf_counter()
        future.wait()
        state = future.state
        self._count(stage, state, 0.0)
        result = state.result()
        self._count_output(result)
        if done is not None and total is not None:
            for listener in (PROGRESS.listener, self.on_progress):
                if listener is not None:
                    listener(stage, done, total)
        m = self.metrics
        seconds = time.perf_counter() - t0
        m.stage_seconds[stage] = round(m.stage_seconds.get(stage, 0.0) + seconds, 4)
        self._collected[stage] = self._collected.get(stage, 0.0) + seconds
        return result

    def reused(self, stage: str, seconds: float) -> None:
        """``stage`` did not run: an earlier run's output was taken over, which took ``seconds``."""
        self._count(stage, None, seconds)
        run_metrics.observe_stage(stage, self.runner, seconds)
        self.reused_stages.append(stage)

    def collected(self, stage: str) -> None:
        """Report the seconds spent collecting ``stage`` one :meth:`result` at a time, as one observation."""
        run_metrics.observe_stage(stage, self.runner, self._collected.pop(stage, 0.0))

    def _count_output(self, result: Any) -> None:
        if isinstance(result, Segment | StoredSegment):
            run_metrics.count_rendered(self.runner, result.frames, result.duration_s)

    def wrote(self, stage: str, *paths: str | Path | None) -> None:
        """Count the bytes of files a stage wrote (for the bytes-written metric)."""
        size = 0
        for path in paths:
            if path:
                try:
                    size += Path(path).stat().st_size
                except OSError:
                    continue
        run_metrics.count_bytes(stage, self.runner, size)

    def _count(self, stage: str, state: Any, seconds: float) -> None:
        m = self.metrics
        m.stage_seconds[stage] = round(m.stage_seconds.get(stage, 0.0) + seconds, 4)
        if state is not None and state.is_completed():
            hit = state.name == "Cached"
            if hit:
                m.cache_hits += 1
            else:
                m.cache_misses += 1
            run_metrics.count_cache(stage, self.runner, hit=hit)
        if state is not None:
            from flows.cache import result_key

            key = result_key(state)
            if key:
                self.result_keys.append(key)
        task_run_id = getattr(getattr(state, "state_details", None), "task_run_id", None)
        if task_run_id is not None and state.name != "Cached":
            self._ran[str(task_run_id)] = (stage, state.type.value)

    def _count_retries(self) -> None:
        """Retries per stage, read from the API in one query at the end of the run."""
        ran, self._ran = self._ran, {}
        retries = retries_of({run_id: kind for run_id, (_, kind) in ran.items()})
        m = self.metrics
        for run_id, n in retries.items():
            if n:
                stage = ran[run_id][0]
                m.retries[stage] = m.retries.get(stage, 0) + n
                run_metrics.count_retries(stage, self.runner, n)

    def finish(self) -> WorkflowMetrics:
        self._count_retries()
        m = self.metrics
        m.wall_seconds = round(time.perf_counter() - self._wall0, 3)
        m.cpu_seconds = round(time.process_time() - self._cpu0, 3)
        m.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return m

    def optimizations(self, settings: Settings) -> list[str]:
        used = [f"runner:{active_runner_name()}", *_kernels_used()]
        used += [f"reused:{stage}" for stage in self.reused_stages]
        if settings.cache.enabled:
            from flows.cache import cache_backend

            used.append(f"cache:{cache_backend(settings)}")
        return used


def _kernels_used() -> list[str]:
    """``kernels:<backend>`` and a ``fallback:<kernel>`` per kernel on its NumPy reference.

    A run whose scenes all came from the cache never loads the kernels (nor Numba and LLVM, a third
    of a second): then the backend is read off what is installed and the environment, as
    ``kernels._jit`` would read it, without importing Numba.
    """
    jit = sys.modules.get("kernels._jit")
    if jit is not None:
        return [f"kernels:{jit.kernel_backend()}", *(f"fallback:{name}" for name in jit.kernels_on_fallback())]
    disabled = os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")
    installed = importlib.util.find_spec("numba") is not None
    return [f"kernels:{'numba' if installed and not disabled else 'numpy'}"]


#: What Prefect says when its temporary API server does not come up in time.
_SERVER_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"


def unexpected_failure(exc: BaseException) -> str:
    """The one line a command prints for an error pagereel did not raise itself."""
    if _SERVER_TIMEOUT in str(exc):
        return (
            "Prefect's temporary API server did not start in time (a busy machine?); run `prefect server start` "
            "and set PREFECT_API_URL, or raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
        )
    return f"unexpected {type(exc).__name__}: {exc} (this is a bug in pagereel; please report it)"


def check_prefect_home() -> None:
    """Refuse, before any server starts, a Prefect home the temporary API server cannot keep its database in.

    Without ``PREFECT_API_URL`` each run starts a temporary Prefect server whose database lives in
    ``PREFECT_HOME`` (``~/.prefect``); Prefect creates that folder only where its parent exists. An
    unusable one (``HOME=/nonexistent`` in a service, a read-only home) otherwise shows as a server
    that "did not start" after many seconds.
    """
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, PREFECT_API_URL, PREFECT_HOME

    home = Path(PREFECT_HOME.value()).expanduser()
    if PREFECT_API_URL.value() or str(home) not in str(PREFECT_API_DATABASE_CONNECTION_URL.value() or home):
        return  # a server of its own, or a database elsewhere
    problem = _unusable(home)
    if problem:
        raise ConfigurationError(
            f"Prefect's home folder {home} {problem}: without PREFECT_API_URL each run starts a temporary Prefect "
            "server that keeps its database there. Set HOME or PREFECT_HOME to a writable folder, or PREFECT_API_URL "
            "to a running Prefect server (`prefect server start`)")


def _unusable(home: Path) -> str | None:
    """Why ``home`` cannot hold Prefect's files, or None where it can (or can be created: its parent is writable)."""
    if home.is_dir():
        return None if os.access(home, os.W_OK | os.X_OK) else "is not writable"
    if home.exists():
        return "is not a folder"
    if not home.parent.is_dir():
        return f"cannot be created: {home.parent} does not exist"
    return None if os.access(home.parent, os.W_OK | os.X_OK) else f"cannot be created: {home.parent} is not writable"
