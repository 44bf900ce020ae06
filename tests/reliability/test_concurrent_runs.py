"""Two processes rendering the same URL at once share one Redis: both finish, each scene is rendered once."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import redis

from tests.conftest import redis_url
from tests.reliability.conftest import PYTHON, cli_env
from tests.reliability.helpers import ARTICLE, SMALL_VIDEO, assert_valid_video, render_states

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
# Renders long enough that both runs reach the same scenes at the same time.
RACE_VIDEO = {"PAGEREEL_RENDER__RESOLUTION": "360", "PAGEREEL_RENDER__FPS": "24", "PAGEREEL_RUNNER__MAX_WORKERS": "1",
              "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "40"}


@pytest.fixture
def shared_redis(pagereel_env: Path, redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in {**SMALL_VIDEO, **RACE_VIDEO}.items():
        monkeypatch.setenv(name, value)
    return redis_url(redis_db)


def test_two_runs_at_once_render_each_scene_once(http_server, shared_redis: str, pagereel_env: Path,
                                                 prefect_api: str) -> None:
    url = http_server.url(ARTICLE)
    ids = [f"race-{n}-{uuid.uuid4().hex[:8]}" for n in (1, 2)]
    children = [
        subprocess.Popen([PYTHON, "-m", "flows.video_flow", url, "--workflow-id", workflow_id, "--json"],
                         env=cli_env(prefect_api, PAGEREEL_CACHE__DIR=str(pagereel_env / f"cache-{n}")),
                         cwd=pagereel_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n, workflow_id in enumerate(ids)
    ]
    outputs = [child.communicate(timeout=240) for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err[-3000:]
    states = [json.loads(out) for out, _ in outputs]
    assert all("cache:redis" in s["optimizations_used"] for s in states)

    manifests = [assert_valid_video(pagereel_env / "out" / workflow_id) for workflow_id in ids]
    assert manifests[0]["scenes"] == manifests[1]["scenes"]  # identical scene times
    scenes = len(manifests[0]["scenes"])

    # Across both runs, every scene was rendered once and served from the cache once.
    totals: dict[str, int] = {}
    for workflow_id in ids:
        for name, count in render_states(f"video {workflow_id}", expected=scenes).items():
            totals[name] = totals.get(name, 0) + count
    assert totals == {"Completed": scenes, "Cached": scenes}, totals
