"""One factory from ``settings.runner`` to a Prefect task runner, with a thread fallback.

Apply it with ``video_flow.with_options(task_runner=runner)``. A runner whose library is not
installed falls back to threads with one warning; the name of what actually runs is returned so
it can be recorded in ``optimizations_used``.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import threading
from collections import OrderedDict
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


#: Prefect settings contexts already serialized for submissions, by identity (the few a process uses).
_SERIALIZED: OrderedDict[tuple[int, bool], tuple[Any, dict[str, Any]]] = OrderedDict()
_SERIALIZED_LOCK = threading.Lock()


def serialize_settings_once() -> None:
    """Serialize each Prefect settings context once per process, not once per task submitted.

    A runner that sends tasks to other processes (process, Dask, Ray) sends the flow's Prefect
    settings with every task, and Prefect dumps the whole settings tree for each one: 24 ms on an
    idle core, 2.5 s of a four-video Dask batch's client time on a busy one. A context's settings
    do not change while it is current (``temporary_settings`` makes a new context), so each
    context's dump is kept and handed out again; callers pickle it and never change it.
    """
    from prefect.context import SettingsContext

    plain = SettingsContext.serialize
    if getattr(plain, "once_per_context", False):
        return

    @functools.wraps(plain)
    def serialize(self: SettingsContext, include_secrets: bool = True) -> dict[str, Any]:
        key = (id(self), include_secrets)
        with _SERIALIZED_LOCK:
            kept = _SERIALIZED.get(key)
            if kept is not None and kept[0] is self:  # the very context, not a new one at a reused address
                _SERIALIZED.move_to_end(key)
                return kept[1]
        dumped = plain(self, include_secrets=include_secrets)
        with _SERIALIZED_LOCK:
            _SERIALIZED[key] = (self, dumped)
            while len(_SERIALIZED) > 8:
                _SERIALIZED.popitem(last=False)
        return dumped

    serialize.once_per_context = True  # type: ignore[attr-defined]
    SettingsContext.serialize = serialize  # type: ignore[method-assign]


@functools.cache
def _tls_context(skip_verify: bool, cafile: str) -> Any:
    """The context Prefect's client would build for these settings, built once per process per pair."""
    import ssl

    if skip_verify:  # as Prefect does with PREFECT_API_TLS_INSECURE_SKIP_VERIFY
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=cafile)


def share_tls_context() -> None:
    """Prefect's API clients in this process share one TLS context instead of building one each.

    Prefect builds a TLS context for every client it makes, reading certifi's CA bundle (28 ms on an
    idle core), whatever the API's scheme, and every task run makes a client: 1.1 s of 30 s of task
    time on a Dask worker. The context depends on two settings only, read at each client's start, so
    one is built per pair of their values and handed to every client (a context serves any number of
    connections and threads). A client given its own ``verify`` keeps it.
    """
    import certifi
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    for cls in (PrefectClient, SyncPrefectClient):
        plain = cls.__init__
        if getattr(plain, "shares_tls_context", False):
            continue

        @functools.wraps(plain)
        def __init__(self: Any, *args: Any, _plain: Any = plain, httpx_settings: dict[str, Any] | None = None,
                     **kwargs: Any) -> None:
            if not httpx_settings or "verify" not in httpx_settings:
                skip = bool(PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value())
                cafile = "" if skip else (PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
                httpx_settings = {**(httpx_settings or {}), "verify": _tls_context(skip, cafile)}
            _plain(self, *args, httpx_settings=httpx_settings, **kwargs)

        __init__.shares_tls_context = True  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[method-assign]


def make_task_runner(runner: RunnerSettings) -> tuple[Any, str]:
    """The task runner ``runner`` asks for, and the name of the one that will really run."""
    workers = runner.max_workers or default_workers()
    share_tls_context()  # the flow's task runs (thread runner) and the flow run itself make clients too
    if runner.kind != "thread":
        serialize_settings_once()
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
