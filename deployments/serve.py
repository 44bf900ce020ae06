"""Serve pagereel's flows as deployments from this process: no work pool, no worker.

    python deployments/serve.py          # with PREFECT_API_URL pointing at `prefect server start`

The same deployments as ``prefect.yaml`` (``video-flow/from-url``, ``batch-flow/nightly`` with its
schedule off, ``tune-flow/tune``). Each flow run is a child process; with ``metrics.enabled`` this
process serves their metrics, summed, on ``metrics.port`` (Prometheus multiprocess mode), so the
endpoint outlives every run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from flows.settings import Settings, load_settings  # noqa: E402 - needs ROOT on the path

# Not imported from flows.metrics: prometheus_client must not be loaded before this is set.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

URL_LIST = "examples/urls.txt"


def serve_metrics(settings: Settings, folder: str) -> int:
    """Serve the metrics every child process writes into ``folder``; the bound port."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    server, _ = start_http_server(settings.metrics.port, addr=settings.metrics.address, registry=registry)
    return server.server_port


def deployments() -> list:
    from prefect.schedules import Cron

    from flows.batch_flow import batch_flow
    from flows.tune_flow import tune_flow
    from flows.video_flow import video_flow

    return [
        video_flow.to_deployment(name="from-url", tags=["pagereel", "video"],
                                 parameters={"url": "https://example.com/article"}),
        batch_flow.to_deployment(name="nightly", tags=["pagereel", "batch"],
                                 parameters={"url_file": URL_LIST, "concurrency": 2},
                                 schedules=[Cron("0 2 * * *", timezone="UTC", active=False)]),
        tune_flow.to_deployment(name="tune", tags=["pagereel", "tuning"], parameters={"trials": 8, "name": "tuned"}),
    ]


def main() -> None:
    os.chdir(ROOT)  # relative paths in parameters (the URL list) are the repository's
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="pagereel-metrics-") as folder:
        if settings.metrics.enabled:
            # Set before any flow module imports prometheus_client, and inherited by every run's process.
            os.environ.setdefault(MULTIPROC_ENV, folder)
            port = serve_metrics(settings, os.environ[MULTIPROC_ENV])
            print(f"pagereel metrics on http://{settings.metrics.address}:{port}/metrics", file=sys.stderr)
        from prefect import serve

        serve(*deployments())


if __name__ == "__main__":
    main()
