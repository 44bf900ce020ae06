"""Fixtures for flow-level tests: a real Prefect API for the session and per-test pagereel settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_api(_quiet_prefect_home: None) -> Iterator[str]:
    """One real Prefect API for the whole session (flows, tasks, caching and retries all go through it)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def pagereel_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Settings for a flow run in a test: loopback allowed, fast retries, outputs and cache under tmp_path."""
    for name in list(os.environ):
        if name.startswith("PAGEREEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAGEREEL_FETCH__ALLOW_PRIVATE_HOSTS", "1")
    monkeypatch.setenv("PAGEREEL_FETCH__RETRY_BASE_S", "0")
    monkeypatch.setenv("PAGEREEL_FETCH__TIMEOUT_S", "5")
    monkeypatch.setenv("PAGEREEL_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("PAGEREEL_CACHE__DIR", str(tmp_path / "cache"))
    # The sample pages link pictures on the internet; tests never leave the machine.
    monkeypatch.setenv("PAGEREEL_FETCH__IMAGE_HOSTS", '["127.0.0.1"]')
    monkeypatch.chdir(tmp_path)
    return tmp_path
