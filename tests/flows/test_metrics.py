"""Prometheus metrics scraped over HTTP during and after a real run, the Pushgateway protocol, and UI artifacts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flows import metrics
from flows.settings import load_settings
from flows.video_flow import video_flow
from tests.conftest import ARTICLE_PAGE, HttpServer

pytestmark = [pytest.mark.integration]
ALLOWED_LABELS = {"stage", "runner", "flow", "outcome", "le"}


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every pagereel sample on the endpoint, by name and labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("pagereel_"):
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def delta(after: dict, before: dict, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch, pagereel_env: Path) -> Path:
    monkeypatch.setenv("PAGEREEL_METRICS__ENABLED", "1")
    monkeypatch.setenv("PAGEREEL_METRICS__PORT", "0")
    monkeypatch.setenv("PAGEREEL_METRICS__ADDRESS", "127.0.0.1")
    monkeypatch.setenv("PAGEREEL_RENDER__RESOLUTION", "144")
    monkeypatch.setenv("PAGEREEL_RENDER__FPS", "10")
    monkeypatch.setenv("PAGEREEL_RENDER__PRESET", "ultrafast")
    monkeypatch.setenv("PAGEREEL_STORYBOARD__TARGET_DURATION_S", "15")
    return pagereel_env


class Watcher:
    """Scrapes the endpoint from another thread while the flow runs, keeping what it saw in flight."""

    def __init__(self) -> None:
        self.during: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            port = metrics.serving_port()
            if port is None:
                continue
            samples = scrape(port)
            if total(samples, "pagereel_runs_in_progress", flow="video") >= 1:
                self.during.append(samples)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.mark.usefixtures("prefect_api")
def test_a_run_is_scraped_live_and_shows_its_artifacts(metrics_on: Path, http_server: HttpServer) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    url = http_server.url(f"/pages/{ARTICLE_PAGE}")
    port = metrics.serve(load_settings())
    assert port
    before = scrape(port)
    with Watcher() as watcher:
        final = video_flow(url, workflow_id="Metrics_Run.1", return_state=True)
    state = final.result()
    after = scrape(port)

    # Seen over HTTP while the run was still going, with stages already counted.
    assert watcher.during, "no scrape caught the run in progress"
    assert any(total(s, "pagereel_stage_seconds_count", stage="fetch") > total(before, "pagereel_stage_seconds_count",
                                                                              stage="fetch") for s in watcher.during)

    assert delta(after, before, "pagereel_runs_total", flow="video", outcome="completed", runner="thread") == 1
    for stage in ("fetch", "extract", "suggest", "edits", "narrate", "render", "assemble"):
        assert delta(after, before, "pagereel_stage_seconds_count", stage=stage, runner="thread") == 1, stage
    scenes = len(state.scenes)
    assert delta(after, before, "pagereel_cache_misses_total", stage="render") == scenes
    with av.open(state.video_path) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert delta(after, before, "pagereel_frames_rendered_total", runner="thread") == frames
    assert delta(after, before, "pagereel_video_seconds_rendered_total") == pytest.approx(state.duration_s, abs=0.2)
    folder = Path(state.video_path).parent
    written = sum((folder / n).stat().st_size for n in ("video.mp4", "video.srt", "video.vtt", "thumbnail.png"))
    assert delta(after, before, "pagereel_bytes_written_total", stage="assemble") == written
    assert total(after, "pagereel_runs_in_progress") == 0
    for _name, labels in after:
        assert {k for k, _ in labels} <= ALLOWED_LABELS
        assert not any("127.0.0.1" in v or "http" in v for _, v in labels), labels

    # The same run again is served from the cache, and the counters say so.
    video_flow(url, workflow_id="Metrics_Run.1")
    again = scrape(port)
    assert delta(again, after, "pagereel_cache_hits_total", stage="render") == scenes
    assert delta(again, after, "pagereel_cache_misses_total", stage="render") == 0

    flow_run_id = final.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        run = client.read_flow_run(flow_run_id)
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {"metrics-run-1-storyboard", "metrics-run-1-progress", "metrics-run-1-video"}
    board = by_key["metrics-run-1-storyboard"]
    # Every scene's whole narration, in scene order, readable in a browser (a table cut it short).
    assert board.type == "markdown" and state.storyboard is not None
    places = [board.data.index(f"`{s.id}`: ") for s in state.storyboard.scenes]
    assert places == sorted(places) and all(s.narration in board.data for s in state.storyboard.scenes)
    progress = by_key["metrics-run-1-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0
    video = by_key["metrics-run-1-video"]
    assert video.type == "markdown" and state.video_path in video.data and "thumbnail.png" in video.data
    # The thumbnail is shown with no server; a worker's file:// link, which no browser opens, is not offered.
    assert "![thumbnail](data:image/jpeg;base64," in video.data and "file://" not in video.data
    assert run.name == "video Metrics_Run.1"


class _Gateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Gateway.received = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_runs_push_to_a_pushgateway(gateway: str) -> None:
    settings = load_settings(metrics={"pushgateway_url": gateway})
    with metrics.run_metrics(settings, "video", "thread") as outcome:
        metrics.observe_stage("fetch", "thread", 0.25)
        outcome.outcome = "completed"
    (method, path, body) = _Gateway.received[-1]
    assert method == "PUT" and path.startswith("/metrics/job/pagereel/instance/") and "/pid/" in path
    names = {s.name for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert {"pagereel_runs_total", "pagereel_stage_seconds_count"} <= names


def test_an_unreachable_pushgateway_costs_a_warning_not_the_run(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(metrics={"pushgateway_url": f"http://127.0.0.1:{port}"})
    started = time.monotonic()
    with metrics.run_metrics(settings, "video", "thread") as outcome:
        outcome.outcome = "completed"
    assert time.monotonic() - started < 6
    assert "could not push metrics" in caplog.text


@pytest.mark.usefixtures("prefect_api")
def test_scenes_rendered_on_dask_are_counted_in_the_flow_process(metrics_on: Path, http_server: HttpServer,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 prefect_api: str) -> None:
    from flows.video_flow import run_video

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)  # Dask workers report to this session's API
    monkeypatch.setenv("PAGEREEL_RENDER__RESOLUTION", "96")
    port = metrics.serve(load_settings())
    assert port
    before = scrape(port)
    state = run_video(http_server.url("/pages/garden-sensor.html"), workflow_id="on-dask",
                      overrides={"runner": {"kind": "dask", "max_workers": 2}})
    after = scrape(port)
    assert "runner:dask" in state.optimizations_used
    with av.open(state.video_path) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert delta(after, before, "pagereel_frames_rendered_total", runner="dask") == frames
    assert delta(after, before, "pagereel_stage_seconds_count", stage="render", runner="dask") == 1
    assert delta(after, before, "pagereel_runs_total", flow="video", outcome="completed", runner="dask") == 1


def test_the_endpoint_listens_on_loopback_by_default(pagereel_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_METRICS__ENABLED", "1")
    monkeypatch.setenv("PAGEREEL_METRICS__PORT", "0")
    settings = load_settings()
    assert settings.metrics.address == "127.0.0.1"
    metrics.stop_serving()
    try:
        port = metrics.serve(settings)
        assert port and metrics._server["server"].server_address[0] == "127.0.0.1"
        assert "pagereel_runs_total" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        metrics.stop_serving()


def test_a_taken_port_moves_the_endpoint_rather_than_losing_the_metrics(pagereel_env: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as other_run:  # another run of pagereel serving on the configured port
        other_run.bind(("127.0.0.1", 0))
        other_run.listen()
        taken = other_run.getsockname()[1]
        monkeypatch.setenv("PAGEREEL_METRICS__ENABLED", "1")
        monkeypatch.setenv("PAGEREEL_METRICS__PORT", str(taken))
        metrics.stop_serving()
        try:
            port = metrics.serve(load_settings())
            assert port and port != taken
            with metrics.run_metrics(load_settings(), "video", "thread") as outcome:
                outcome.outcome = "completed"
            assert total(scrape(port), "pagereel_runs_total", flow="video", outcome="completed") >= 1
        finally:
            metrics.stop_serving()


@pytest.mark.usefixtures("prefect_api")
def test_two_runs_at_once_each_push_their_own_metrics(gateway: str, http_server: HttpServer, pagereel_env: Path,
                                                      prefect_api: str) -> None:
    """Two command-line runs at once with a Pushgateway: both runs' metrics arrive, and neither fights for a port."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT), "PREFECT_LOGGING_LEVEL": "WARNING",
           "PAGEREEL_METRICS__ENABLED": "1", "PAGEREEL_METRICS__PUSHGATEWAY_URL": gateway}
    pages = ["/pages/lighthouse-keeper.html", "/pages/sourdough-steps.html"]
    children = [subprocess.Popen([sys.executable, "-m", "flows.video_flow", http_server.url(page), "--dry-run"],
                                 env=env, cwd=pagereel_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True) for page in pages]
    errors = [child.communicate(timeout=180)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0], errors
    assert not any("metrics endpoint not started" in err or "metrics port" in err for err in errors), errors
    pushes = [(path, body) for method, path, body in _Gateway.received if method == "PUT"]
    assert len({path for path, _ in pushes}) == 2  # one group per process: instance and pid
    for _, body in pushes:
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(body.decode()) for s in f.samples}
        assert total(samples, "pagereel_runs_total", flow="video", outcome="storyboard") == 1
