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


def test_scale_child_runs_a_batch_on_a_dask_cluster(prefect_api, pagereel_env, http_server) -> None:
    urls = [http_server.url(f"/pages/{name}") for name in ("garden-sensor.html", "photo-essay.html")]
    report = scale.child(urls, 1, 10.0, TINY)
    assert report["videos"] == 2 and report["video_s"] > 10
    # Where the serial time goes: each run's start and its flow process's stages.
    runs = report["runs"]
    assert len(runs) == 2 and all("fetch" in r["stages"] and r["end_s"] > r["start_s"] for r in runs)
    (worker,) = report["workers"].values()  # the one worker process, seen through the scheduler
    assert 0 < worker["busy_s"] < report["wall_s"] and worker["first_s"] < worker["last_s"]
