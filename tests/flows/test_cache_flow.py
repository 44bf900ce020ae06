"""The flow's cache in Redis: results land there, a second run reuses them, cache clear --url forgets them."""

from __future__ import annotations

import pytest
import redis
from typer.testing import CliRunner

from flows.__main__ import app as flows_app
from flows.video_flow import run_video
from tests.conftest import redis_url

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "pagereel_env")]


@pytest.fixture
def redis_cache(empty_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> redis.Redis:
    client = empty_redis  # the session's own redis-server (tests/conftest.py), never the machine's
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", redis_url(client))
    monkeypatch.setenv("PAGEREEL_RENDER__RESOLUTION", "96")
    monkeypatch.setenv("PAGEREEL_RENDER__FPS", "8")
    monkeypatch.setenv("PAGEREEL_RENDER__PRESET", "ultrafast")
    monkeypatch.setenv("PAGEREEL_STORYBOARD__TARGET_DURATION_S", "15")
    return client


def test_video_results_live_in_redis_and_are_reused(http_server, redis_cache: redis.Redis, tmp_path) -> None:
    url = http_server.url("/pages/garden-sensor.html")
    first = run_video(url, workflow_id="redis-one")
    assert "cache:redis" in first.optimizations_used
    keys_after_first = redis_cache.dbsize()
    assert keys_after_first >= first.metrics.cache_misses

    second = run_video(url, workflow_id="redis-two")
    assert second.metrics.cache_misses == 0 and second.metrics.cache_hits == first.metrics.cache_misses
    assert second.scenes == first.scenes

    result = CliRunner().invoke(flows_app, ["cache", "clear", "--url", url])
    assert result.exit_code == 0, result.output
    assert redis_cache.dbsize() < keys_after_first
    third = run_video(url, workflow_id="redis-three")
    assert third.metrics.cache_misses > 0  # what was derived from that URL is computed again
