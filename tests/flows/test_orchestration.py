"""Runners, batches and the Python API: same storyboard, same video, whichever way it runs."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from flows.api import create_workflow_engine
from flows.batch_flow import app as batch_app
from flows.batch_flow import run_batch
from flows.runners import make_task_runner
from flows.settings import RunnerSettings
from flows.video_flow import run_video

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "pagereel_env")]


@pytest.fixture
def tiny_video(monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    monkeypatch.setenv("PAGEREEL_RENDER__RESOLUTION", "96")
    monkeypatch.setenv("PAGEREEL_RENDER__FPS", "8")
    monkeypatch.setenv("PAGEREEL_RENDER__PRESET", "ultrafast")
    monkeypatch.setenv("PAGEREEL_STORYBOARD__TARGET_DURATION_S", "15")
    # Workers in other processes (process pool, Dask, Ray) must report to this session's API.
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)


def frame_count(path: str) -> int:
    with av.open(path) as c:
        return sum(1 for _ in c.decode(video=0))


# The process and Dask runners are also run from the command line by test_cli_runners.py on every
# `make test`; here they run in `make soak`.
@pytest.mark.parametrize("kind", ["thread", pytest.param("process", marks=pytest.mark.slow),
                                  pytest.param("dask", marks=pytest.mark.slow), "ray"])
def test_every_runner_gives_the_same_video(http_server, tiny_video, monkeypatch, kind: str) -> None:
    url = http_server.url("/pages/garden-sensor.html")
    reference = run_video(url, workflow_id="ref", overrides={"runner": {"kind": "thread"}})
    monkeypatch.setenv("PAGEREEL_CACHE__ENABLED", "false")  # make the other runner really render
    state = run_video(url, workflow_id=f"on-{kind}", overrides={"runner": {"kind": kind, "max_workers": 2}})
    assert f"runner:{kind}" in state.optimizations_used
    assert state.scenes == reference.scenes
    assert frame_count(state.video_path) == frame_count(reference.video_path)


def test_unavailable_runner_falls_back_to_threads(caplog, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name.startswith("prefect_ray"):
            raise ImportError("No module named 'prefect_ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with caplog.at_level(logging.WARNING, logger="pagereel"):
        runner, name = make_task_runner(RunnerSettings(kind="ray"))
    assert name == "thread" and type(runner).__name__ == "ThreadPoolTaskRunner"
    assert sum("not available" in r.message for r in caplog.records) == 1


def test_batch_of_five_with_one_broken(http_server, tiny_video, tmp_path: Path) -> None:
    pages = ["garden-sensor.html", "photo-essay.html", "short-note.html", "sourdough-steps.html"]
    urls = [http_server.url(f"/pages/{p}") for p in pages]
    urls.insert(2, http_server.url("/status/404"))
    result = run_batch(urls, concurrency=2)
    assert [i.url for i in result.items] == urls
    assert [i.status for i in result.items] == ["completed", "completed", "failed", "completed", "completed"]
    broken = result.items[2]
    assert "404" in broken.error and broken.video_path is None
    for item in result.items:
        if item.status == "completed":
            assert Path(item.video_path).is_file()
    assert len({i.workflow_id for i in result.items}) == 5


def test_batch_cli_with_a_url_file(http_server, tiny_video, tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# today\n{http_server.url('/pages/garden-sensor.html')}\n\n{http_server.url('/pdf')}\n")
    result = CliRunner().invoke(batch_app, ["--file", str(listing), "--json", "--dry-run"])
    assert result.exit_code == 1  # one of them failed
    items = json.loads(result.stdout)["items"]
    assert [i["status"] for i in items] == ["storyboard", "failed"]
    assert "application/pdf" in items[1]["error"]


def test_engine_api(http_server, tiny_video) -> None:
    engine = create_workflow_engine({"storyboard": {"target_duration_s": 15}})

    async def main():
        one = await engine.execute_workflow(http_server.url("/pages/photo-essay.html"), "api-one", dry_run=True)
        many = await engine.execute_batch_workflows([
            {"url": http_server.url("/pages/garden-sensor.html"), "workflow_id": "api-a", "dry_run": True},
            {"url": http_server.url("/status/410"), "workflow_id": "api-b"},
        ])
        return one, many

    one, many = asyncio.run(main())
    assert one.status == "storyboard" and one.workflow_id == "api-one"
    assert [s.status for s in many] == ["storyboard", "failed"]
    assert "410" in many[1].error
