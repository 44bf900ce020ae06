"""Cluster runners: Dask workers check they reach the flow's Prefect API; Ray joins a running cluster as it is."""

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


def test_a_ray_runner_joins_an_existing_cluster_without_sizing_it() -> None:
    # ray.init refuses num_cpus when it joins a running cluster ("must not be provided").
    runner, _ = make_task_runner(RunnerSettings(kind="ray", address="ray://127.0.0.1:10001"))
    assert runner.address == "ray://127.0.0.1:10001" and "num_cpus" not in runner.init_kwargs
    local, _ = make_task_runner(RunnerSettings(kind="ray", max_workers=2))
    assert local.address is None and local.init_kwargs["num_cpus"] == 2


def test_prefect_settings_are_dumped_once_per_context_for_all_submissions() -> None:
    """Every task sent to a process, Dask or Ray worker carries the settings; they are dumped once, not per task."""
    from tests.conftest import run_python

    proc = run_python("""
        import json

        from prefect.context import SettingsContext, serialize_context
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows.runners import make_task_runner
        from flows.settings import RunnerSettings

        dumps = []
        prefects_own = SettingsContext.serialize

        def counted(self, include_secrets=True):
            dumps.append(1)
            return prefects_own(self, include_secrets=include_secrets)

        SettingsContext.serialize = counted
        expected = SettingsContext.get().serialize()
        make_task_runner(RunnerSettings(kind="process"))
        seen = [serialize_context()["settings_context"] for _ in range(5)]
        with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
            inner = [serialize_context()["settings_context"] for _ in range(3)]
        after = serialize_context()["settings_context"]
        print(json.dumps({"dumps": len(dumps), "same": all(s == expected for s in seen + [after]),
                          "inner_api": {s["settings"]["api"]["url"] for s in inner} == {"http://127.0.0.1:9/api"}}))
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = proc.stdout.strip().splitlines()[-1]
    # One dump for `expected`, one for the runner's context, one for the temporary settings: none per task.
    assert result == '{"dumps": 3, "same": true, "inner_api": true}', result
