"""Fixtures of the reliability tests: one Prefect API per session, shared with the flow tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from flows import cache
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


#: The Redis database of the reliability tests on the shared server: flushed before and after each test.
REDIS_DB = 13


@pytest.fixture
def redis_db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """A client of an empty :data:`REDIS_DB`, set as this test's result cache (``PAGEREEL_CACHE__REDIS_URL``)."""
    request.getfixturevalue("pagereel_env")  # first: it clears every PAGEREEL_* variable
    client = redis.Redis(db=REDIS_DB)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        pytest.skip("no Redis server at 127.0.0.1:6379")
    client.flushdb()
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
    try:
        yield client
    finally:
        client.flushdb()
        client.close()
        cache.reset_probes()


def cli_env(prefect_api: str, **extra: str) -> dict[str, str]:
    """The environment for a pagereel CLI in a child process: this session's API and settings, plus ``extra``."""
    env = dict(os.environ)  # the test's PAGEREEL_* settings travel with it
    env.update(PREFECT_API_URL=prefect_api, PYTHONPATH=str(ROOT), PREFECT_LOGGING_LEVEL="WARNING", **extra)
    return env


PYTHON = sys.executable
