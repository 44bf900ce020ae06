"""`python -m flows status` and `cache clear`: every backend listed, live ones found, quickly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from flows.settings import load_settings
from flows.status import PROBE_TIMEOUT_S, get_status
from tests.conftest import redis_url

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = {"prefect", "dask", "ray", "redis", "numba", "prometheus", "optuna", "espeak", "piper", "http"}
FIELDS = {"name", "installed", "version", "live", "state", "falls_back_to"}
def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_status_lists_every_backend(pagereel_env: Path) -> None:
    status = get_status(load_settings())
    assert set(status) == BACKENDS
    for row in status.values():
        assert set(row) == FIELDS
        assert row["falls_back_to"]
        assert not row["live"] or row["installed"]
    assert status["numba"]["installed"] and status["numba"]["live"]  # numba is a dependency and compiles here
    assert status["redis"]["state"].startswith("not configured") and not status["redis"]["live"]
    assert status["dask"]["installed"] and status["dask"]["falls_back_to"] == "thread runner"


def test_status_finds_a_real_redis(pagereel_env: Path, empty_redis: redis.Redis,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", redis_url(empty_redis))
    row = get_status(load_settings())["redis"]
    server = empty_redis.info("server")["redis_version"]
    port = empty_redis.connection_pool.connection_kwargs["port"]
    assert row["live"] and row["state"] == f"reachable at 127.0.0.1:{port}/0, server {server}"


def test_status_is_quick_when_servers_are_down(pagereel_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", f"redis://:hidden-pw@127.0.0.1:{port}/0")
    monkeypatch.setenv("PAGEREEL_RUNNER__KIND", "dask")
    monkeypatch.setenv("PAGEREEL_RUNNER__ADDRESS", f"tcp://127.0.0.1:{port}")
    monkeypatch.setenv("PAGEREEL_METRICS__PUSHGATEWAY_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    status = get_status(load_settings())
    assert time.monotonic() - started < 5 * PROBE_TIMEOUT_S + 5  # Numba's first compile included
    assert not status["redis"]["live"] and status["redis"]["state"].startswith(f"unreachable at 127.0.0.1:{port}/0")
    assert status["redis"]["falls_back_to"] == f"local folder {pagereel_env / 'cache'}"
    assert not status["dask"]["live"] and "unreachable" in status["dask"]["state"]
    assert not status["prometheus"]["live"]
    assert "hidden-pw" not in json.dumps(status)


@pytest.mark.integration
def test_cli_status_json_and_table(pagereel_env: Path, prefect_api: str) -> None:
    done = _cli("status", "--json", env={"PREFECT_API_URL": prefect_api}, cwd=pagereel_env)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert set(status) == BACKENDS
    assert status["prefect"]["live"] and status["prefect"]["state"] == f"reachable at {prefect_api}"

    table = _cli("status", cwd=pagereel_env)
    assert table.returncode == 0, table.stderr
    for name in ("Prefect API", "Dask", "Ray", "Redis", "Numba", "Prometheus client", "Optuna", "falls back to",
                 "Voices: espeak", "piper:en_US-joe-medium", "Voices: http"):
        assert name in table.stdout
    # Each Piper voice shows its model card's licence line: the user chooses with it in view.
    piper = status["piper"]
    assert piper["live"] and "piper:en_US-joe-medium (22050 Hz; dataset License: CC0" in piper["state"]
    assert "lessac" in piper["state"]


@pytest.mark.integration
def test_cli_cache_clear(pagereel_env: Path) -> None:
    folder = pagereel_env / "cache"
    folder.mkdir()
    key = "0123456789abcdef0123456789abcdef"
    (folder / key).write_text(json.dumps({"metadata": {"storage_key": key}, "result": "{}"}, separators=(",", ":")))
    config = pagereel_env / "pagereel.toml"
    config.write_text(f'[cache]\ndir = "{folder}"\n')
    done = _cli("cache", "clear", "--config", str(config), cwd=pagereel_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed 1 cached result"
    assert not (folder / key).exists()

    done = _cli("cache", "clear", "--url", "http://example.invalid/story", cwd=pagereel_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "removed 0 cached results for http://example.invalid/story"

    bad = _cli("cache", "clear", "--config", str(pagereel_env / "missing.toml"), cwd=pagereel_env)
    assert bad.returncode == 1 and bad.stderr.startswith("error: config file")


@pytest.mark.integration
def test_cli_status_shows_the_cluster_address_from_name_and_address_variables(pagereel_env: Path) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (pagereel_env / "pagereel.toml").write_text('runner = "ray"\n')
        env = {"PAGEREEL_RUNNER": "dask", "PAGEREEL_RUNNER__ADDRESS": f"tcp://127.0.0.1:{port}"}
        done = _cli("status", "--json", env=env, cwd=pagereel_env)
        assert done.returncode == 0, done.stderr
        dask = json.loads(done.stdout)["dask"]
        assert dask["live"] and dask["state"] == f"reachable at tcp://127.0.0.1:{port}"
    closed = _cli("status", "--json", env=env, cwd=pagereel_env)  # the listener is gone
    dask = json.loads(closed.stdout)["dask"]
    assert not dask["live"] and dask["state"].startswith(f"unreachable at tcp://127.0.0.1:{port} (")
    ray_file = _cli("status", "--json", env={"PAGEREEL_RUNNER__ADDRESS": f"127.0.0.1:{port}"}, cwd=pagereel_env)
    ray = json.loads(ray_file.stdout)["ray"]  # runner = "ray" from the file, the address from the environment
    assert not ray["live"] and ray["state"].startswith(f"unreachable at 127.0.0.1:{port}")
