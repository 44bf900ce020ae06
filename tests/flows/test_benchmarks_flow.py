"""The end-to-end and scaling benchmarks' measured runs, on small frames: they finish and report."""

from __future__ import annotations

import pytest

from benchmarks import e2e, scale

pytestmark = pytest.mark.integration
TINY = {"render": {"resolution": 90, "fps": 10, "preset": "ultrafast"}}


def test_e2e_child_makes_a_video_and_reports_its_memory(prefect_api, pagereel_env, http_server) -> None:
    report = e2e.child(http_server.url("/pages/garden-sensor.html"), 10.0, 4, TINY)
    assert report["video_s"] > 5 and report["scenes"] >= 4
    assert 0 < report["wall_s"] < 120
    assert 50 < report["rss_mib"] < 4096
    assert "render" in report["stages"]


@pytest.mark.slow  # a Dask cluster and a batch: `make soak`
def test_scale_child_runs_a_batch_on_a_dask_cluster(prefect_api, pagereel_env, http_server) -> None:
    urls = [http_server.url(f"/pages/{name}") for name in ("garden-sensor.html", "photo-essay.html")]
    report = scale.child(urls, 1, 10.0, TINY)
    assert report["videos"] == 2 and report["video_s"] > 10
    # Where the serial time goes: each run's start and its flow process's stages.
    runs = report["runs"]
    assert len(runs) == 2 and all("fetch" in r["stages"] and r["end_s"] > r["start_s"] for r in runs)
    assert isinstance(report["refused"], int)  # writes the Prefect API refused as busy
    (worker,) = report["workers"].values()  # the one worker process, seen through the scheduler
    assert 0 < worker["busy_s"] < report["wall_s"] and worker["first_s"] < worker["last_s"]
    # The CPU each process took over the batch: the flow process and the worker did the work.
    cpu = report["processes"]
    assert cpu["flow process"] > 0 and cpu["workers"] > 1 and cpu["scheduler"] >= 0 and cpu["nannies"] >= 0


def test_cache_benchmark_times_the_whole_command_and_its_imports(prefect_api, pagereel_env) -> None:
    import os

    from benchmarks import cache

    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PAGEREEL_RENDER__RESOLUTION": "90",
           "PAGEREEL_RENDER__FPS": "10", "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "10"}
    url = str(cache.ROOT / "examples" / "article.html")
    seconds, cpu, state = cache.run_command(url, env)
    again, _, cached = cache.run_command(url, env)
    assert state["status"] == cached["status"] == "completed"
    assert cached["metrics"]["cache_misses"] == 0 and cached["metrics"]["cache_hits"] > 0
    assert seconds > 0 and again > 0 and cpu > 0
    total, by_package = cache.import_breakdown("flows.cli", env)
    assert total > 0 and by_package["typer"] > 0 and "optuna" not in by_package
