"""Serve pagereel's flows as deployments from this process: no work pool, no worker.

    python deployments/serve.py          # with PREFECT_API_URL pointing at `prefect server start`

The deployments are read from ``prefect.yaml``, the one place they are declared
(``video-flow/from-url``, ``batch-flow/nightly`` with its schedule off, ``tune-flow/tune``): names,
descriptions, tags, parameters and schedules. Each flow run is a child process; with ``metrics.enabled`` this
process serves their metrics, summed, on ``metrics.port`` (Prometheus multiprocess mode), so the
endpoint outlives every run.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from flows.settings import Settings, load_settings  # noqa: E402 - needs ROOT on the path

# Not imported from flows.metrics: prometheus_client must not be loaded before this is set.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve_metrics(settings: Settings, folder: str) -> int:
    """Serve the metrics every child process writes into ``folder``; the bound port."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    server, _ = start_http_server(settings.metrics.port, addr=settings.metrics.address, registry=registry)
    return server.server_port


def declared() -> list[dict[str, Any]]:
    """The deployments ``prefect.yaml`` declares, its YAML anchors resolved."""
    import yaml

    return yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]


def deployments() -> list:
    """Each deployment of ``prefect.yaml``, built from its entrypoint's flow for :func:`prefect.serve`."""
    from prefect.schedules import Cron

    out = []
    for entry in declared():
        path, _, name = entry["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        schedules = [Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
                     for s in entry.get("schedules") or []]
        out.append(getattr(module, name).to_deployment(
            name=entry["name"], description=entry.get("description"), tags=entry.get("tags"),
            parameters=entry.get("parameters") or {}, schedules=schedules or None))
    return out


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
