"""Prometheus metrics of pagereel runs, recorded in the flow's own process from task results.

Scenes may render on Dask or Ray workers, but every number here is read from what the tasks
return to the flow (states, segments, files), so workers need no metrics server. Labels are the
stage, the runner and the flow, never the URL: one series per page would grow without bound.

Exposition, per ``settings.metrics``:

- ``pushgateway_url``: the registry is pushed at the end of each flow run, grouped by host and
  process id, so each group's counters only ever grow. A command-line or deployment run ends
  right after its run, before any scrape, so with a Pushgateway no endpoint is started at all.
- ``enabled`` without a Pushgateway: an HTTP endpoint on ``address``:``port`` (127.0.0.1:9108 by
  default; port 0 picks a free one) from the first flow run of a process until the process ends.
  When the port is taken (another run at the same time), the endpoint moves to a free port and
  says which, rather than losing this run's metrics.
- With ``PROMETHEUS_MULTIPROC_DIR`` set (``deployments/serve.py`` does it), flow runs in child
  processes write their values there and the parent serves the sum; children start no server.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway, start_http_server

from flows.settings import Settings

log = logging.getLogger("pagereel.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: pagereel's own registry: nothing else in the process (or another test) registers into it.
REGISTRY = CollectorRegistry(auto_describe=True)

_STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_RUN_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)

STAGE_SECONDS = Histogram("pagereel_stage_seconds", "Seconds a stage took within one run (all its scenes).",
                          ["stage", "runner"], buckets=_STAGE_BUCKETS, registry=REGISTRY)
RUN_SECONDS = Histogram("pagereel_run_seconds", "Seconds a whole flow run took.", ["flow", "runner"],
                        buckets=_RUN_BUCKETS, registry=REGISTRY)
RUNS = Counter("pagereel_runs", "Finished flow runs by outcome (completed, storyboard, failed).",
               ["flow", "outcome", "runner"], registry=REGISTRY)
RUNS_IN_PROGRESS = Gauge("pagereel_runs_in_progress", "Flow runs under way.", ["flow"], registry=REGISTRY,
                         multiprocess_mode="livesum")
CACHE_HITS = Counter("pagereel_cache_hits", "Task results served from the cache.", ["stage", "runner"],
                     registry=REGISTRY)
CACHE_MISSES = Counter("pagereel_cache_misses", "Task results computed afresh.", ["stage", "runner"],
                       registry=REGISTRY)
RETRIES = Counter("pagereel_retries", "Task retries.", ["stage", "runner"], registry=REGISTRY)
FRAMES = Counter("pagereel_frames_rendered", "Video frames in rendered scenes.", ["runner"], registry=REGISTRY)
VIDEO_SECONDS = Counter("pagereel_video_seconds_rendered", "Seconds of video in rendered scenes.", ["runner"],
                        registry=REGISTRY)
BYTES_WRITTEN = Counter("pagereel_bytes_written", "Bytes of output files written.", ["stage", "runner"],
                        registry=REGISTRY)

_server_lock = threading.Lock()
_server: dict[str, Any] = {}
_warned: set[str] = set()


def observe_stage(stage: str, runner: str, seconds: float) -> None:
    STAGE_SECONDS.labels(stage=stage, runner=runner).observe(max(0.0, seconds))


def count_cache(stage: str, runner: str, *, hit: bool) -> None:
    (CACHE_HITS if hit else CACHE_MISSES).labels(stage=stage, runner=runner).inc()


def count_retries(stage: str, runner: str, retries: int) -> None:
    if retries > 0:
        RETRIES.labels(stage=stage, runner=runner).inc(retries)


def count_rendered(runner: str, frames: int, seconds: float) -> None:
    FRAMES.labels(runner=runner).inc(frames)
    VIDEO_SECONDS.labels(runner=runner).inc(seconds)


def count_bytes(stage: str, runner: str, size: int) -> None:
    BYTES_WRITTEN.labels(stage=stage, runner=runner).inc(max(0, size))


def serving_port() -> int | None:
    """The port this process serves metrics on, or None."""
    with _server_lock:
        return _server.get("port")


def serve(settings: Settings) -> int | None:
    """Start this process's metrics endpoint if asked and not yet running; the bound port, or None."""
    metrics = settings.metrics
    if not metrics.enabled or metrics.pushgateway_url or os.environ.get(MULTIPROC_ENV):
        return serving_port()
    with _server_lock:
        if "port" in _server:
            return _server["port"]
        try:
            server = _start(metrics.address, metrics.port)
        except OSError as exc:
            _warn_once("serve", "metrics endpoint not started on %s:%s (%s); the run goes on without it",
                       metrics.address, metrics.port, exc.strerror or exc)
            return None
        _server.update(port=server.server_port, server=server)
        log.info("metrics on http://%s:%s/metrics", metrics.address, server.server_port)
        return server.server_port


def _start(address: str, port: int) -> Any:
    """An endpoint on ``port``, or on a free port when another process (a run at the same time) holds it."""
    try:
        return start_http_server(port, addr=address, registry=REGISTRY)[0]
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port == 0:
            raise
    server = start_http_server(0, addr=address, registry=REGISTRY)[0]
    log.warning("metrics port %s is taken (another run?); this run serves its metrics on http://%s:%s/metrics",
                port, address, server.server_port)
    return server


def stop_serving() -> None:
    """Stop the endpoint (for long-lived hosts that reconfigure; a finished process needs no call)."""
    with _server_lock:
        server = _server.pop("server", None)
        _server.pop("port", None)
    if server is not None:
        server.shutdown()
        server.server_close()


def push(settings: Settings) -> bool:
    """Push the registry to the Pushgateway, if one is configured; False (and a warning) if that fails."""
    url = settings.metrics.pushgateway_url
    if not url:
        return False
    grouping = {"instance": socket.gethostname(), "pid": str(os.getpid())}
    try:
        push_to_gateway(url, job=settings.metrics.push_job, registry=REGISTRY, grouping_key=grouping, timeout=5)
    except OSError as exc:
        _warn_once(f"push:{url}", "could not push metrics to %s (%s); they stay on this process only", url, exc)
        return False
    return True


@dataclass
class RunOutcome:
    """Filled in by the flow: how its run ended (``failed`` unless it says otherwise)."""

    outcome: str = "failed"


@contextmanager
def run_metrics(settings: Settings, flow: str, runner: str) -> Iterator[RunOutcome]:
    """Serve metrics while the block runs, count the run by its outcome and time it; push at the end."""
    serve(settings)
    result = RunOutcome()
    RUNS_IN_PROGRESS.labels(flow=flow).inc()
    t0 = time.perf_counter()
    try:
        yield result
    finally:
        RUNS_IN_PROGRESS.labels(flow=flow).dec()
        RUN_SECONDS.labels(flow=flow, runner=runner).observe(time.perf_counter() - t0)
        RUNS.labels(flow=flow, outcome=result.outcome, runner=runner).inc()
        push(settings)


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)
