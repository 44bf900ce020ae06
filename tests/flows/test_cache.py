"""Result storage: a local folder by default, the real Redis when configured, the folder again when Redis is down."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prefect import flow, task
from prefect.cache_policies import INPUTS
from prefect.filesystems import LocalFileSystem
from prefect_redis import RedisDatabase

from flows import cache
from flows.settings import Settings, load_settings
from tasks.stages import fetch_page_task
from tests.conftest import redis_url

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
@pytest.fixture(autouse=True)
def _fresh_probes() -> Iterator[None]:
    cache.reset_probes()
    yield
    cache.reset_probes()


@pytest.fixture
def redis_db(empty_redis: redis.Redis) -> redis.Redis:
    """An empty database of the session's own redis-server (tests/conftest.py)."""
    return empty_redis


@pytest.fixture
def redis_settings(prefect_api: str, pagereel_env: Path, redis_db: redis.Redis,
                   monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", redis_url(redis_db))
    return load_settings()


_calls: list[int] = []
_calls_lock = threading.Lock()


@task(cache_policy=INPUTS, persist_result=True, result_serializer="json")
def square(x: int, pause_s: float = 0.0) -> dict[str, int]:
    """A cached task that counts how often it really runs."""
    with _calls_lock:
        _calls.append(x)
    time.sleep(pause_s)
    return {"x": x, "square": x * x}


def _run_twice(settings: Settings, x: int) -> tuple[str, str, str | None]:
    """Run ``square(x)`` twice in one flow; the names of both states and the result's key."""
    storage = cache.result_storage(settings)
    cached_square = square.with_options(result_storage=storage)

    @flow
    def two_squares() -> tuple[str, str, str | None]:
        first = cached_square(x, return_state=True)
        second = cached_square(x, return_state=True)
        assert first.result() == second.result() == {"x": x, "square": x * x}
        return first.name, second.name, cache.result_key(first)

    return two_squares()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- local folder


def test_local_folder_by_default(prefect_api: str, pagereel_env: Path) -> None:
    settings = load_settings()
    store = cache.cache_store(settings)
    assert store.backend == cache.cache_backend(settings) == "local"
    assert isinstance(store.storage, LocalFileSystem) and store.storage._block_document_id is not None
    assert Path(store.where) == pagereel_env / "cache"
    assert cache.configure_policy(INPUTS, settings) is INPUTS

    first, second, key = _run_twice(settings, 7)
    assert (first, second) == ("Completed", "Cached")
    record = json.loads((pagereel_env / "cache" / key).read_bytes())
    assert record["metadata"]["serializer"]["type"] == "json"
    assert json.loads(record["result"]) == {"x": 7, "square": 49}

    (pagereel_env / "cache" / "notes.txt").write_text("not a result")
    assert cache.clear_cache(settings) == 1
    assert not (pagereel_env / "cache" / key).exists()
    assert (pagereel_env / "cache" / "notes.txt").exists()  # only result records are removed


def test_runs_beginning_together_register_the_result_folder_once(prefect_api: str, pagereel_env: Path) -> None:
    """A batch's first runs begin their work together. On an API that does not know pagereel's result
    folder yet, each run's first save would register its block type: one would, the others fail with
    ObjectAlreadyExists. The first saves take turns, so every run gets the one saved folder."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.records import CheckedLocalFileSystem

    with get_client(sync_client=True) as client:
        try:
            client.delete_block_type(client.read_block_type_by_slug(CheckedLocalFileSystem._block_type_slug).id)
        except ObjectNotFound:
            pass
    settings = load_settings()
    together = threading.Barrier(4)
    saved: list[object] = []

    def begin() -> None:
        together.wait(timeout=30)
        try:
            saved.append(cache.cache_store(settings).storage._block_document_id)
        except Exception as exc:  # noqa: BLE001 - the failure is what the assertion reports
            saved.append(exc)

    threads = [threading.Thread(target=begin) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(saved) == 4 and not [s for s in saved if isinstance(s, Exception)], saved
    assert len(set(saved)) == 1 and saved[0] is not None


# --------------------------------------------------------------------------- Redis


def test_results_land_in_redis_as_json(redis_settings: Settings, redis_db: redis.Redis) -> None:
    store = cache.cache_store(redis_settings)
    assert store.backend == cache.cache_backend(redis_settings) == "redis"
    assert isinstance(store.storage, RedisDatabase) and store.storage._block_document_id is not None
    port = redis_db.connection_pool.connection_kwargs["port"]
    assert (store.storage.host, store.storage.port, store.storage.db) == ("127.0.0.1", port, 0)
    assert store.where == f"127.0.0.1:{port}/0"

    first, second, key = _run_twice(redis_settings, 12)
    assert (first, second) == ("Completed", "Cached")
    assert redis_db.keys("*") == [key.encode()]  # prefect-redis stores the bare cache key
    record = json.loads(redis_db.get(key))
    assert record["metadata"]["storage_key"] == key
    assert record["metadata"]["serializer"]["type"] == "json"  # never pickle
    assert json.loads(record["result"]) == {"x": 12, "square": 144}
    local = redis_settings.cache.dir
    assert not local.exists() or not any(local.iterdir())


_SECOND_PROCESS = textwrap.dedent(
    """
    import json, sys
    from prefect import flow, task
    from prefect.cache_policies import INPUTS

    from flows.cache import result_storage
    from flows.settings import load_settings


    @task(name="square", cache_policy=INPUTS, persist_result=True, result_serializer="json")
    def square(x, pause_s=0.0):
        raise SystemExit("recomputed: the cached result was not reused")


    @flow
    def reuse(x):
        state = square.with_options(result_storage=result_storage(load_settings()))(x, return_state=True)
        return state.name, state.result()


    print(json.dumps(reuse(int(sys.argv[1]))))
    """
)


def test_second_process_reuses_redis_results(redis_settings: Settings, prefect_api: str, tmp_path: Path) -> None:
    _run_twice(redis_settings, 21)
    script = tmp_path / "second_process.py"
    script.write_text(_SECOND_PROCESS)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT),
           "PAGEREEL_CACHE__DIR": str(tmp_path / "other-cache")}
    done = subprocess.run([sys.executable, str(script), "21"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    name, result = json.loads(done.stdout.strip().splitlines()[-1])
    assert name == "Cached"
    assert result == {"x": 21, "square": 441}


def test_clear_cache_removes_only_result_records(redis_settings: Settings, redis_db: redis.Redis) -> None:
    keys = {_run_twice(redis_settings, x)[2] for x in (1, 2, 3)}
    redis_db.set("someone-else:key", b"not ours")
    redis_db.set("a" * 32, b'{"metadata": "looks alike but is not a record"}')
    redis_db.rpush("someone-else:list", b"x")

    assert cache.clear_cache(redis_settings) == 3
    remaining = {k.decode() for k in redis_db.keys("*")}
    assert remaining == {"someone-else:key", "a" * 32, "someone-else:list"}
    assert not keys & remaining
    assert cache.clear_cache(redis_settings) == 0
    # Cleared means recomputed.
    assert _run_twice(redis_settings, 1)[:2] == ("Completed", "Cached")


def test_clear_cache_for_one_url(redis_settings: Settings, redis_db: redis.Redis, http_server) -> None:
    storage = cache.result_storage(redis_settings)
    fetch = fetch_page_task.with_options(result_storage=storage, retries=0)
    urls = [http_server.url("/pages/harbour-lights.html"), http_server.url("/pages/never-fetched.html")]

    @flow
    def fetch_page() -> str | None:
        return cache.result_key(fetch(urls[0], redis_settings.fetch, return_state=True))

    page_key = fetch_page()
    # The key clear_cache computes for a URL is the one Prefect gave its fetch.
    assert cache.fetch_key(redis_settings, urls[0]) == page_key
    derived = _run_twice(redis_settings, 5)[2]  # stands in for a result derived from the page
    other = _run_twice(redis_settings, 6)[2]
    cache.remember_keys(redis_settings, urls[0], [page_key, derived, None])

    assert cache.clear_cache(redis_settings, urls[1]) == 0
    assert cache.clear_cache(redis_settings, urls[0]) == 2
    assert set(redis_db.keys("*")) == {other.encode()}
    assert fetch_page() == page_key  # fetched again
    assert cache.clear_cache(redis_settings, urls[0]) == 1  # the index is gone; the page key is still computed


def test_concurrent_runs_compute_once_with_redis_locks(redis_settings: Settings, redis_db: redis.Redis) -> None:
    storage = cache.result_storage(redis_settings)

    def race(policy: object, x: int) -> list[str]:
        racer = square.with_options(result_storage=storage, cache_policy=policy)

        @flow
        def twice_at_once() -> list[str]:
            futures = [racer.submit(x, pause_s=1.0) for _ in range(2)]
            for future in futures:
                future.wait()
            return sorted(future.state.name for future in futures)

        _calls.clear()
        return twice_at_once()

    # Without locks both runs miss the cache and compute: the reason for the lock manager.
    assert race(INPUTS, 30) == ["Completed", "Completed"] and _calls == [30, 30]
    locked = cache.configure_policy(INPUTS, redis_settings)
    assert locked.lock_manager is not None and str(locked.isolation_level).endswith("SERIALIZABLE")
    assert race(locked, 31) == ["Cached", "Completed"] and _calls == [31]
    assert not redis_db.keys("lock:*")  # released


def test_locks_expire_so_a_killed_run_cannot_block_others(redis_settings: Settings, redis_db: redis.Redis) -> None:
    manager = cache.cache_store(redis_settings).lock_manager
    assert manager.acquire_lock("k1", holder="run-a")
    assert 0 < redis_db.pttl("lock:k1") <= cache.LOCK_HOLD_S * 1000
    manager.release_lock("k1", holder="run-a")
    assert manager.acquire_lock("k2", holder="run-b", hold_timeout=0.1)
    time.sleep(0.3)
    manager.release_lock("k2", holder="run-b")  # expired meanwhile: no error
    assert not redis_db.keys("lock:*")


# --------------------------------------------------------------------------- degradation


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A private redis-server with a password, on a free port, killed after the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--requirepass", "s3cret-pw", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password="s3cret-pw", socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                break
            except (redis.ConnectionError, OSError):
                time.sleep(0.05)
        yield proc, port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_unreachable_redis_warns_once_and_falls_back(prefect_api: str, pagereel_env: Path, own_redis,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    proc, port = own_redis
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    settings = load_settings()
    assert cache.cache_backend(settings) == "redis"
    key = _run_twice(settings, 40)[2]
    assert redis.Redis(port=port, password="s3cret-pw").exists(key)

    proc.kill()
    proc.wait(timeout=10)
    cache.reset_probes()
    caplog.set_level(logging.WARNING, logger="pagereel")
    started = time.monotonic()
    assert cache.cache_backend(settings) == "local"
    store = cache.cache_store(settings)
    assert time.monotonic() - started < 3 * cache.PING_TIMEOUT_S
    assert store.backend == "local" and isinstance(store.storage, LocalFileSystem)
    assert cache.configure_policy(INPUTS, settings) is INPUTS
    assert _run_twice(settings, 41)[:2] == ("Completed", "Cached")  # the run succeeds, on the local folder
    assert any((pagereel_env / "cache").iterdir())
    assert cache.clear_cache(settings) == 1

    warnings = [r for r in caplog.records if r.name == "pagereel.cache" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert f"Redis at 127.0.0.1:{port}/0 is unreachable" in message
    assert str(pagereel_env / "cache") in message
    assert "s3cret-pw" not in caplog.text


def test_wrong_password_is_reported_without_the_password(pagereel_env: Path, own_redis,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    _, port = own_redis
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", f"redis://:wrong-pw@127.0.0.1:{port}/2")
    caplog.set_level(logging.WARNING, logger="pagereel")
    assert cache.cache_backend(load_settings()) == "local"
    assert "authentication failed" in caplog.text and "wrong-pw" not in caplog.text


# --------------------------------------------------------------------------- clusters


def test_a_remote_cluster_without_a_shared_store_warns_once(prefect_api: str, pagereel_env: Path, own_redis,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pagereel")
    remote = {"kind": "dask", "address": "tcp://10.1.2.3:8786"}
    for _ in range(3):  # a run asks for its storage several times
        assert cache.cache_store(load_settings(runner=remote)).backend == "local"
    cache.cache_store(load_settings(runner={"kind": "dask"}))  # a local cluster shares this machine's disk
    _, port = own_redis
    shared = load_settings(runner=remote, cache={"redis_url": f"redis://:s3cret-pw@127.0.0.1:{port}/0"})
    assert cache.cache_store(shared).backend == "redis"

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "tcp://10.1.2.3:8786" in warnings[0] and "own disk" in warnings[0] and "cache.redis_url" in warnings[0]


@pytest.mark.parametrize("store", ["local", "redis"])
def test_cache_clear_command_clears_the_configured_store(store: str, prefect_api: str, pagereel_env: Path,
                                                         own_redis, monkeypatch: pytest.MonkeyPatch) -> None:
    if store == "redis":
        monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", f"redis://:s3cret-pw@127.0.0.1:{own_redis[1]}/0")
    settings = load_settings()
    assert cache.cache_backend(settings) == store
    key = _run_twice(settings, 50)[2]
    client = redis.Redis(port=own_redis[1], password="s3cret-pw")
    stored = (lambda: client.exists(key)) if store == "redis" else (lambda: (pagereel_env / "cache" / key).exists())
    assert stored()

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_api}
    done = subprocess.run([sys.executable, "-m", "flows", "cache", "clear"], env=env, cwd=pagereel_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "removed 1 cached result"
    assert not stored()
