"""Results and cache locks in Redis: imported only by runs whose settings name a Redis that answers.

:class:`CheckedRedisDatabase` gives Prefect only records :func:`flows.records.check_record` accepts;
:class:`ExpiringRedisLockManager` takes locks that expire, and goes on without one while Redis is away.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect_redis import RedisDatabase, RedisLockManager
from prefect_redis.connection import close_redis_client
from redis.exceptions import LockNotOwnedError

from flows.cache import LOCK_HOLD_S
from flows.records import UntrustedRecord, check_blobs, check_record, refuse_record

log = logging.getLogger("pagereel.cache")
# Compare-and-delete: a fresh record written meanwhile by another run is kept.
_DELETE_IF_SAME = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class CheckedRedisDatabase(RedisDatabase):
    """prefect-redis's result storage, giving Prefect only records :func:`check_record` accepts."""

    _block_type_name = "pagereel checked Redis results"
    _block_type_slug = "pagereel-checked-redis-results"

    async def aread_path(self, path: str) -> bytes:
        return self._vetted(path, await super().aread_path(path))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        return self._vetted(path, super().read_path(path, _sync=True))

    def _vetted(self, path: str, content: bytes | None) -> bytes:
        try:
            check_blobs(self, check_record(content, path))
        except UntrustedRecord as exc:
            if content is None:
                raise
            client = self.get_client()
            try:
                client.eval(_DELETE_IF_SAME, 1, path, content)
            except Exception as drop_exc:  # noqa: BLE001 - the record is refused either way
                log.debug("could not delete refused record %s: %s", path, drop_exc)
            finally:
                close_redis_client(client)
            raise refuse_record("Redis", path, exc) from None
        return content


class ExpiringRedisLockManager(RedisLockManager):
    """prefect-redis's lock manager, with locks that expire after :data:`LOCK_HOLD_S`.

    Prefect takes its locks with no hold timeout, and prefect-redis then sets no TTL: a run killed
    while computing a result would leave its lock in Redis, and every later run of that task would
    wait for it forever.
    """

    def __init__(self, *, hold_timeout_s: float = LOCK_HOLD_S, **kwargs: Any) -> None:
        self.hold_timeout_s = hold_timeout_s
        super().__init__(**kwargs)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "hold_timeout_s": self.hold_timeout_s}

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        try:
            return super().acquire_lock(key, holder, acquire_timeout, hold_timeout or self.hold_timeout_s)
        except _REDIS_DOWN as exc:
            return _unlocked(key, exc)

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        try:
            return await super().aacquire_lock(key, holder, acquire_timeout, hold_timeout or self.hold_timeout_s)
        except _REDIS_DOWN as exc:
            return _unlocked(key, exc)

    def release_lock(self, key: str, holder: str) -> None:
        try:
            super().release_lock(key, holder)
        except (LockNotOwnedError, ValueError, *_REDIS_DOWN):
            # It expired while the task ran, or Redis restarted and forgot it (another run may hold it now).
            self._locks.pop(self._lock_name_for_key(key), None)

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        try:
            return super().wait_for_lock(key, timeout)
        except _REDIS_DOWN as exc:
            return _unlocked(key, exc)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        try:
            return await super().await_for_lock(key, timeout)
        except _REDIS_DOWN as exc:
            return _unlocked(key, exc)

    def is_locked(self, key: str) -> bool:
        try:
            return super().is_locked(key)
        except _REDIS_DOWN:
            return False


# Redis gone mid-run (restarted, network cut): a lock is an optimisation, so the task goes on without it.
_REDIS_DOWN = (redis.RedisError, OSError)


def _unlocked(key: str, exc: BaseException) -> bool:
    log.warning("Redis did not answer for the cache lock of %s (%s); computing without the lock",
                key[:16], " ".join(str(exc).split()) or type(exc).__name__)
    return True
