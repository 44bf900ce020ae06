"""Fixtures of the reliability tests: one Prefect API per session, shared with the flow tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from flows import cache
from tests.conftest import redis_url
from tests.flows.conftest import pagereel_env  # noqa: F401 - a fixture, found by name
from tests.reliability.helpers import PrivateRedis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prefect_api(_quiet_prefect_home: None) -> Iterator[str]:
    """The session's Prefect API: the flow tests' one when it is already up, else one started here."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    running = PREFECT_API_URL.value()
    if running:  # a second test server would cost its start-up time and memory for nothing
        yield str(running)
        return
    with prefect_test_harness(server_startup_timeout=90):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own on a free port, which the test may stop and start again."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_db(request: pytest.FixtureRequest, empty_redis: redis.Redis,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """An empty database of the session's own redis-server, set as this test's result cache."""
    request.getfixturevalue("pagereel_env")  # first: it clears every PAGEREEL_* variable
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", redis_url(empty_redis))
    try:
        yield empty_redis
    finally:
        cache.reset_probes()


def cli_env(prefect_api: str, **extra: str) -> dict[str, str]:
    """The environment for a pagereel CLI in a child process: this session's API and settings, plus ``extra``."""
    env = dict(os.environ)  # the test's PAGEREEL_* settings travel with it
    env.update(PREFECT_API_URL=prefect_api, PYTHONPATH=str(ROOT), PREFECT_LOGGING_LEVEL="WARNING", **extra)
    return env


PYTHON = sys.executable
