"""Dask workers check, when they join, that they reach the Prefect API the flow's tasks report to."""

from __future__ import annotations

import logging
import socket

import pytest
from distributed import Client, LocalCluster

from flows.dask_workers import PagereelDaskTaskRunner, PrefectApiCheck
from flows.runners import make_task_runner
from flows.settings import RunnerSettings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("reachable", [True, False])
def test_a_worker_that_cannot_reach_the_api_says_so_once(caplog: pytest.LogCaptureFixture, reachable: bool) -> None:
    with socket.socket() as api:
        api.bind(("127.0.0.1", 0))
        api.listen()
        port = api.getsockname()[1] if reachable else _closed_port()
        url = f"http://127.0.0.1:{port}/api"
        with caplog.at_level(logging.WARNING, logger="pagereel.dask_workers"), \
                LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            client.register_plugin(PrefectApiCheck(url))
    warnings = [r.getMessage() for r in caplog.records if r.name == "pagereel.dask_workers"]
    if reachable:
        assert warnings == []
    else:
        assert len(warnings) == 2  # one per worker
        assert all(f"cannot reach the Prefect API at {url}" in w and socket.gethostname() in w for w in warnings)


def test_the_dask_runner_checks_its_workers() -> None:
    runner, name = make_task_runner(RunnerSettings(kind="dask", address="tcp://127.0.0.1:8786"))
    assert name == "dask" and isinstance(runner, PagereelDaskTaskRunner)
    assert isinstance(runner.duplicate(), PagereelDaskTaskRunner)
