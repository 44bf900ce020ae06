"""Redis going away mid-run costs the cache lock and the shared results, never the run."""

from __future__ import annotations

import logging

import pytest

from flows.cache import ExpiringRedisLockManager
from tests.reliability.helpers import PrivateRedis

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


def test_locks_go_on_without_redis(private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture) -> None:
    locks = ExpiringRedisLockManager(connection_url=f"redis://127.0.0.1:{private_redis.port}/0")
    assert locks.acquire_lock("held-before", holder="run-1")
    private_redis.stop()
    caplog.set_level(logging.WARNING, logger="pagereel")
    assert locks.acquire_lock("key-a", holder="run-1", acquire_timeout=1)  # computed without the lock
    assert locks.wait_for_lock("key-a", timeout=1)
    assert not locks.is_locked("key-a")
    locks.release_lock("held-before", holder="run-1")  # lost with the server: nothing to release
    assert any("computing without the lock" in r.getMessage() for r in caplog.records)

    private_redis.start()  # back, empty: locks work again
    assert locks.acquire_lock("key-b", holder="run-2")
    assert locks.is_locked("key-b")
    locks.release_lock("key-b", holder="run-2")
    assert not locks.is_locked("key-b")
