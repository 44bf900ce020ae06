"""Where task results are kept, how concurrent runs share them, and how to clear them.

Results go to a local folder by default, and to Redis (prefect-redis) when ``cache.redis_url``
is set and answers a ping. A configured Redis that does not answer logs one warning and the
run keeps its results in the local folder instead. Results stay JSON (the tasks say so), and
both storages read back only records that pass :func:`flows.records.check_record`.

prefect-redis writes each result under its bare cache key (a hex digest, no prefix), so the
keys pagereel owns are told apart from anything else in the database by their content: a
Prefect result record whose ``storage_key`` is the key itself.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from prefect.cache_policies import CachePolicy
from prefect.filesystems import WritableFileSystem
from prefect.transactions import IsolationLevel
from pydantic import SecretStr

from flows.records import CheckedLocalFileSystem
from flows.settings import Settings

if TYPE_CHECKING:  # Redis's client is imported where a run uses Redis: most runs never do
    import redis

    from flows.redis_store import ExpiringRedisLockManager

log = logging.getLogger("pagereel.cache")

#: Longest wait for Redis to answer a ping before falling back to the local folder.
PING_TIMEOUT_S = 1.0
#: How long a probe's answer is trusted; one run asks several times and must get one answer.
PROBE_TTL_S = 30.0
#: A cache lock expires after this long, so a run killed while holding one cannot block others forever.
LOCK_HOLD_S = 900.0

# How a serialized ResultRecord starts: pydantic dumps fields in declaration order.
_RECORD_HEAD = b'{"metadata":{"storage_key":"'
_URL_INDEX_PREFIX = "pagereel:url:"
_URL_INDEX_DIR = ".url-index"

Backend = Literal["redis", "local"]


@dataclass(frozen=True)
class CacheStore:
    """The result storage a run uses, and where it really is."""

    backend: Backend
    storage: WritableFileSystem
    where: str  # host:port/db or a folder; never a password
    lock_manager: ExpiringRedisLockManager | None = None  # set when backend == "redis"


@dataclass(frozen=True)
class RedisProbe:
    """What one ping of a Redis server found."""

    where: str
    live: bool
    version: str | None = None
    reason: str | None = None


# --------------------------------------------------------------------------- Redis reachability


def redis_where(url: str) -> str:
    """``host:port/db`` (or ``socket/db``) of a Redis URL, without user or password."""
    from redis.connection import parse_url

    try:
        parts = parse_url(url)
    except (ValueError, TypeError):
        return "<malformed redis URL>"
    db = parts.get("db", 0)
    if "path" in parts:
        return f"{parts['path']}/{db}"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 6379)}/{db}"


def _redis_client(url: str) -> redis.Redis:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=PING_TIMEOUT_S, socket_timeout=PING_TIMEOUT_S)


def _ping(url: str) -> RedisProbe:
    import redis

    where = redis_where(url)
    try:
        client = _redis_client(url)
    except (ValueError, TypeError) as exc:
        # redis-py's messages for a bad URL do not echo it, so no password can leak here.
        return RedisProbe(where, False, reason=f"invalid URL: {exc}")
    try:
        client.ping()
        version = str(client.info("server").get("redis_version") or "") or None
        return RedisProbe(where, True, version=version)
    except redis.AuthenticationError:
        return RedisProbe(where, False, reason="authentication failed; check the password in the URL")
    except (redis.RedisError, OSError) as exc:
        return RedisProbe(where, False, reason=" ".join(str(exc).split()) or type(exc).__name__)
    finally:
        client.close()


_probes: dict[str, tuple[float, RedisProbe]] = {}
_warned: set[str] = set()
_probe_lock = threading.Lock()


def probe_redis(url: str, *, fresh: bool = False) -> RedisProbe:
    """Ping Redis at ``url`` (at most :data:`PING_TIMEOUT_S`); the answer is reused for :data:`PROBE_TTL_S`."""
    now = time.monotonic()
    with _probe_lock:
        known = _probes.get(url)
    if known is not None and not fresh and now - known[0] < PROBE_TTL_S:
        return known[1]
    probe = _ping(url)
    with _probe_lock:
        _probes[url] = (time.monotonic(), probe)
    return probe


def reset_probes() -> None:
    """Forget what is known about Redis servers, so the next call pings again (and may warn again)."""
    with _probe_lock:
        _probes.clear()
        _warned.clear()
        _warned_per_worker.clear()


def _redis_is_live(settings: Settings) -> bool:
    url = settings.cache.redis_url
    if not url:
        return False
    probe = probe_redis(url)
    with _probe_lock:
        if probe.live:
            _warned.discard(url)  # warn again if it goes away later
            return True
        first = url not in _warned
        _warned.add(url)
    if first:
        log.warning("Redis at %s is unreachable (%s); task results go to the local folder %s instead",
                    probe.where, probe.reason, _local_dir(settings))
    return False


# --------------------------------------------------------------------------- storage blocks


def _local_dir(settings: Settings) -> Path:
    return settings.cache.dir.expanduser().resolve()


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def _saved_once(save: Any) -> Any:
    """``functools.cache`` for a block saved to the API, whose first calls take turns.

    Two threads saving the first block of a type at once both find the type missing and both
    register it: the second fails with ObjectAlreadyExists (a batch's runs begin together).
    """
    cached = functools.cache(save)
    turn = threading.Lock()

    @functools.wraps(save)
    def saved(*args: Any) -> Any:
        with turn:
            return cached(*args)

    return saved


@_saved_once
def _saved_local(path: str, api_url: str | None) -> CheckedLocalFileSystem:
    block = CheckedLocalFileSystem(basepath=path)
    # Tasks find their storage through the API, so the block must be saved first.
    block.save(f"pagereel-results-{hashlib.sha256(path.encode()).hexdigest()[:12]}", overwrite=True)
    return block


@_saved_once
def _saved_redis(url: str, api_url: str | None) -> WritableFileSystem:
    from flows.redis_store import CheckedRedisDatabase

    if url.startswith("unix://"):
        block = CheckedRedisDatabase(connection_url=SecretStr(url))
    else:
        block = CheckedRedisDatabase.from_connection_string(SecretStr(url))
    # Named by where it points, never by its password. Prefect keeps the password as a secret field
    # of the block: a worker that loads the block by id (Dask, Ray) needs it to read results.
    block.save(f"pagereel-redis-{hashlib.sha256(redis_where(url).encode()).hexdigest()[:12]}", overwrite=True)
    return block


@functools.cache
def _lock_manager(url: str) -> ExpiringRedisLockManager:
    from flows.redis_store import ExpiringRedisLockManager

    return ExpiringRedisLockManager(connection_url=url)


def __getattr__(name: str) -> Any:
    # Redis's client and prefect-redis are imported by runs that use Redis, not by every run.
    if name == "ExpiringRedisLockManager":
        from flows.redis_store import ExpiringRedisLockManager

        return ExpiringRedisLockManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- the public choice


def cache_store(settings: Settings) -> CacheStore:
    """The storage this run's results go to: Redis when configured and reachable, else the local folder."""
    url = settings.cache.redis_url
    if url and _redis_is_live(settings):
        return CacheStore("redis", _saved_redis(url, _api_url()), redis_where(url), _lock_manager(url))
    path = _local_dir(settings)
    path.mkdir(parents=True, exist_ok=True)
    _warn_if_per_worker(settings, path)
    return CacheStore("local", _saved_local(str(path), _api_url()), str(path))


def _warn_if_per_worker(settings: Settings, path: Path) -> None:
    """One warning when scenes run on a remote cluster but results go to a local folder: each worker keeps its own."""
    runner = settings.runner
    if runner.kind not in ("dask", "ray") or not runner.address:
        return
    with _probe_lock:
        first = runner.address not in _warned_per_worker
        _warned_per_worker.add(runner.address)
    if first:
        log.warning("scenes run on the %s cluster at %s but no shared result store is configured: each worker "
                    "caches results on its own disk under %s, which other machines and `cache clear` here do not "
                    "see; set cache.redis_url to share them", runner.kind, runner.address, path)


_warned_per_worker: set[str] = set()


def result_storage(settings: Settings) -> WritableFileSystem | None:
    """The saved storage block for ``result_storage=`` on every cached task."""
    return cache_store(settings).storage


def cache_backend(settings: Settings) -> Backend:
    """``"redis"`` or ``"local"``: where results of a run with these settings go (for ``cache:<backend>``)."""
    url = settings.cache.redis_url
    return "redis" if url and _redis_is_live(settings) else "local"


def configure_policy(policy: Any, settings: Settings) -> Any:
    """``policy`` with SERIALIZABLE isolation and a Redis lock manager when Redis is live; else unchanged.

    With it, two runs that need the same result at once compute it once: the second waits for the
    first's lock, then reads its result.
    """
    url = settings.cache.redis_url
    if not isinstance(policy, CachePolicy) or not url or not _redis_is_live(settings):
        return policy
    return policy.configure(isolation_level=IsolationLevel.SERIALIZABLE, lock_manager=_lock_manager(url))


# --------------------------------------------------------------------------- invalidation


def result_key(state: Any) -> str | None:
    """The storage key of a finished task state's persisted result (its cache key), or None."""
    data = getattr(state, "data", None)
    metadata = getattr(data, "metadata", data)  # a ResultRecord, or only its metadata
    key = getattr(metadata, "storage_key", None)
    return Path(key).name if isinstance(key, str) and key else None


def _url_id(url: str) -> str:
    return hashlib.sha256(url.strip().encode()).hexdigest()[:32]


def remember_keys(settings: Settings, url: str, keys: Iterable[str | None]) -> None:
    """Record that the results under ``keys`` were derived from ``url``, for ``cache clear --url``."""
    wanted = sorted({k for k in keys if k})
    if not wanted:
        return
    if cache_backend(settings) == "redis":
        import redis

        client = _redis_client(settings.cache.redis_url or "")
        try:
            client.sadd(_URL_INDEX_PREFIX + _url_id(url), *wanted)
        except (redis.RedisError, OSError) as exc:  # the index only narrows `cache clear --url`: never fail a run
            log.debug("could not record the cache keys of %s: %s", url, exc)
        finally:
            client.close()
        return
    index = _local_dir(settings) / _URL_INDEX_DIR
    index.mkdir(parents=True, exist_ok=True)
    # One short append per run: concurrent runs interleave whole lines.
    with open(index / _url_id(url), "a", encoding="utf-8") as f:
        f.write("".join(k + "\n" for k in wanted))


def fetch_key(settings: Settings, url: str) -> str | None:
    """The cache key ``fetch_page`` gets for ``url`` with these settings' fetch options."""
    from tasks.stages import fetch_page_task

    policy = fetch_page_task.cache_policy
    return policy.compute_key(task_ctx=SimpleNamespace(task=fetch_page_task),  # StageCode reads task.fn
                              inputs={"url": url, "options": settings.fetch}, flow_parameters={})


def _is_record(head: bytes, key: str) -> bool:
    if not head.startswith(_RECORD_HEAD):
        return False
    stored = head[len(_RECORD_HEAD):].split(b'"', 1)[0].decode("utf-8", "replace")
    return stored == key or Path(stored).name == key


def _clear_local(folder: Path, keys: set[str] | None) -> int:
    if not folder.is_dir():
        return 0
    removed = 0
    names = sorted(keys) if keys is not None else [p.name for p in folder.iterdir()]
    for name in names:
        path = folder / name
        if "/" in name or not path.is_file():
            continue
        try:
            with open(path, "rb") as f:
                head = f.read(len(_RECORD_HEAD) + len(str(path)) + 1)
            # Only files that are Prefect result records: the folder may be one a user also uses.
            if _is_record(head, name):
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another clear got there first
            continue
    return removed


def _clear_redis(url: str, keys: set[str] | None) -> int:
    client = _redis_client(url)
    try:
        if keys is None:
            candidates = [k.decode() for k in client.scan_iter(count=1000, _type="STRING")]
        else:
            candidates = sorted(keys)
        removed = 0
        for start in range(0, len(candidates), 500):
            batch = candidates[start:start + 500]
            pipe = client.pipeline(transaction=False)
            for key in batch:
                pipe.getrange(key, 0, len(_RECORD_HEAD) + len(key))
            heads = pipe.execute(raise_on_error=False)
            doomed = [k for k, h in zip(batch, heads, strict=True) if isinstance(h, bytes) and _is_record(h, k)]
            if doomed:
                removed += int(client.delete(*doomed))
        return removed
    finally:
        client.close()


def _forget_index(settings: Settings, url: str | None, redis_live: bool) -> set[str]:
    """Drop the URL index (one URL's, or all of it) and return the keys it listed."""
    keys: set[str] = set()
    folder = _local_dir(settings) / _URL_INDEX_DIR
    files = [folder / _url_id(url)] if url else (list(folder.iterdir()) if folder.is_dir() else [])
    for path in files:
        if path.is_file():
            keys.update(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
            path.unlink(missing_ok=True)
    if redis_live and settings.cache.redis_url:
        client = _redis_client(settings.cache.redis_url)
        try:
            names = [_URL_INDEX_PREFIX + _url_id(url)] if url else list(client.scan_iter(
                match=_URL_INDEX_PREFIX + "*", count=1000))
            for name in names:
                keys.update(k.decode() for k in client.smembers(name))
            if names:
                client.delete(*names)
        finally:
            client.close()
    return keys


def _clear_blobs(settings: Settings, redis_live: bool) -> None:
    """Delete every stored scene's bytes (:mod:`tasks.blobs`): locally and, when live, in Redis."""
    from tasks import blobs

    blobs.clear_local(_local_dir(settings))
    if redis_live and settings.cache.redis_url:
        client = _redis_client(settings.cache.redis_url)
        try:
            names = list(client.scan_iter(match=blobs.REDIS_PREFIX + "*", count=1000))
            for start in range(0, len(names), 500):
                client.delete(*names[start:start + 500])
        finally:
            client.close()


def clear_cache(settings: Settings, url: str | None = None) -> int:
    """Delete cached results and return how many were removed.

    Without ``url``: every result record in the local folder and, when configured and reachable,
    in the Redis database (other keys in that database are left alone). With ``url``: the
    results recorded for it by :func:`remember_keys`, and its fetched page (so the next run
    fetches it again; results derived from unchanged content are reused, being content-addressed).
    Without ``url`` the scenes' stored bytes (:mod:`tasks.blobs`) go too; with it they stay, as other
    URLs' results may name the same bytes (a result whose bytes are gone is computed again).
    """
    redis_url = settings.cache.redis_url
    redis_live = bool(redis_url) and _redis_is_live(settings)
    keys: set[str] | None = None
    if url is not None:
        keys = _forget_index(settings, url, redis_live)
        key = fetch_key(settings, url)
        if key:
            keys.add(key)
    else:
        _forget_index(settings, None, redis_live)
        _clear_blobs(settings, redis_live)
    removed = _clear_local(_local_dir(settings), keys)
    if redis_live and redis_url:
        removed += _clear_redis(redis_url, keys)
    log.info("removed %d cached result(s)%s", removed, f" for {url}" if url else "")
    return removed


__all__ = [
    "LOCK_HOLD_S",
    "PING_TIMEOUT_S",
    "CacheStore",
    "ExpiringRedisLockManager",
    "RedisProbe",
    "cache_backend",
    "cache_store",
    "clear_cache",
    "configure_policy",
    "fetch_key",
    "probe_redis",
    "redis_where",
    "remember_keys",
    "reset_probes",
    "result_key",
    "result_storage",
]
