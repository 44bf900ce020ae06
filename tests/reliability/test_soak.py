"""Soak: 30 short videos on one Dask cluster, with the Redis cache restarted halfway; every video comes out whole.

Slow (a few minutes): run with ``make soak``; ``make test`` leaves it out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import cache
from flows.batch_flow import run_batch
from tests.reliability.helpers import PrivateRedis, assert_valid_video

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.integration]
VIDEOS = 30
#: How long Redis stays down: long enough that runs in flight need it while it is gone.
OUTAGE_S = 3.0


@pytest.fixture
def dask_cluster(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from distributed import LocalCluster

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)  # workers are processes: they read it from the environment
    # ":0": a free port; None would mean 8787, which another cluster on this machine may hold.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_thirty_videos_on_dask_survive_a_redis_restart(http_server, pagereel_env: Path, private_redis: PrivateRedis,
                                                        dask_cluster: str, sample_pages: list[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "PAGEREEL_RENDER__RESOLUTION": "144",
        "PAGEREEL_RENDER__FPS": "12",
        "PAGEREEL_RENDER__PRESET": "ultrafast",
        "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "12",
        "PAGEREEL_RUNNER__KIND": "dask",
        "PAGEREEL_RUNNER__ADDRESS": dask_cluster,
        "PAGEREEL_CACHE__REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0",
    }.items():
        monkeypatch.setenv(name, value)
    cache.reset_probes()
    # Every sample page, then again under other URLs: the second round reads what the first cached (or, after
    # the restart, finds it gone).
    urls = [http_server.url(f"/pages/{sample_pages[i % len(sample_pages)]}?round={i // len(sample_pages)}")
            for i in range(VIDEOS)]
    out = pagereel_env / "out"

    def restart_halfway() -> None:
        while len(list(out.glob("*/manifest.json"))) < VIDEOS // 2:
            if done.wait(0.2):
                return
        private_redis.restart(OUTAGE_S)

    done = threading.Event()
    restarter = threading.Thread(target=restart_halfway, daemon=True)
    restarter.start()
    started = time.monotonic()
    try:
        result = run_batch(urls, concurrency=2)
    finally:
        done.set()
        restarter.join(timeout=30)
    print(f"\n{VIDEOS} videos in {time.monotonic() - started:.0f} s, Redis restarted {private_redis.restarts} time(s)")

    assert private_redis.restarts == 1, "the batch ended before Redis could be restarted"
    assert not result.failed, [(i.url, i.error) for i in result.failed]
    assert len(result.items) == VIDEOS
    for item in result.items:
        manifest = assert_valid_video(Path(item.video_path).parent)
        assert "runner:dask" in manifest["optimizations_used"]
