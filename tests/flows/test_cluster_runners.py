"""Cluster runners: Dask workers check they reach the flow's Prefect API, and are readied by pagereel's preload;
Ray joins a running cluster as it is."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from flows import dask_preload
from flows.dask_preload import PrefectApiCheck
from flows.dask_workers import PagereelDaskTaskRunner
from flows.runners import make_task_runner
from flows.settings import RunnerSettings

ROOT = Path(__file__).resolve().parents[2]


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


def _probe() -> dict[str, object]:
    """What a scheduler or worker process has loaded of pagereel's, as a function pickled by value (nested)."""

    def probe() -> dict[str, object]:
        import sys

        comp, espeak = sys.modules.get("kernels.compositing"), sys.modules.get("tasks.voices.espeak")
        return {"stages": [n for n in ("prefect.task_engine", "tasks.render_stages") if n in sys.modules],
                # compositing kernels loaded from Numba's cache or compiled, and the speech engine
                "kernels": sum(1 for v in vars(comp).values() if getattr(v, "signatures", None)) if comp else 0,
                "speech": espeak is not None and espeak._ENGINE is not None}

    return probe


@pytest.mark.integration
@pytest.mark.parametrize("preload", [True, False])
def test_the_preload_readies_the_scheduler_and_each_worker(tmp_path: Path, preload: bool) -> None:
    """As README starts them: the scheduler has pagereel's stages imported and each worker has also spoken and drawn
    once before either serves anything; started bare, neither has (so the test sees the preload's work)."""
    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = tmp_path / "scheduler.json"
    ready = ["--preload", "flows.dask_preload"] if preload else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("scheduler", "worker")}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
                               "--scheduler-file", str(scheduler_file), *ready], env=env, cwd=tmp_path,
                              stdout=logs["scheduler"], stderr=subprocess.STDOUT)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                                       "--no-dashboard", "--local-directory", str(tmp_path / "w"), *ready],
                                      env=env, cwd=tmp_path, stdout=logs["worker"], stderr=subprocess.STDOUT))
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(1, timeout=120)  # a worker joins once its preload is done
            on_scheduler = client.run_on_scheduler(_probe())
            [on_worker] = client.run(_probe()).values()
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)
        for log in logs.values():
            log.close()
    text = "".join((tmp_path / f"{name}.log").read_text(errors="replace") for name in logs)
    assert "could not load pagereel's stages" not in text
    stages = ["prefect.task_engine", "tasks.render_stages"]
    if preload:
        assert on_scheduler["stages"] == stages and on_worker["stages"] == stages
        assert on_worker["kernels"] >= 3 and on_worker["speech"]
    else:
        assert on_scheduler["stages"] == [] and on_worker["stages"] == []
        assert on_worker["kernels"] == 0 and not on_worker["speech"]


def test_a_preload_that_fails_leaves_a_working_worker_and_one_warning(caplog: pytest.LogCaptureFixture,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("libespeak-ng.so: cannot open shared object file")

    monkeypatch.setattr(dask_preload, "ready", broken)
    with caplog.at_level(logging.WARNING, logger="pagereel.dask_workers"):
        dask_preload.dask_setup(object())  # not a Scheduler: a worker
    [warning] = [r.getMessage() for r in caplog.records if r.name == "pagereel.dask_workers"]
    assert "Dask worker could not load pagereel's stages (OSError: libespeak-ng.so" in warning
    assert "first video will load them" in warning


def test_prefect_clients_share_one_tls_context_built_as_prefect_builds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task run makes a Prefect client; once shared, no client reads the CA bundle again, and the context is
    still the verifying one (or Prefect's unverified one when its setting asks), and a client's own ``verify`` wins."""
    import ssl

    import certifi
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.settings import PREFECT_API_TLS_INSECURE_SKIP_VERIFY, PREFECT_API_URL, temporary_settings

    from flows.runners import _tls_context, share_tls_context

    built: list[object] = []
    plain = ssl.create_default_context

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        ctx = plain(*args, **kwargs)
        built.append(ctx)
        return ctx

    monkeypatch.setattr(ssl, "create_default_context", counted)
    share_tls_context()
    share_tls_context()  # installing twice wraps once
    with temporary_settings({PREFECT_API_URL: "https://prefect.example/api"}):
        for _ in range(3):
            SyncPrefectClient("https://prefect.example/api")
            PrefectClient("https://prefect.example/api")
        assert len(built) <= 1  # one for the whole process (none if an earlier test built it)
        verified = _tls_context(False, certifi.where())
        assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname
        assert verified.cert_store_stats()["x509_ca"] > 0
        built.clear()
        with temporary_settings({PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
            SyncPrefectClient("https://prefect.example/api")
            SyncPrefectClient("https://prefect.example/api")
            unverified = _tls_context(True, "")
        assert unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname
        assert len(built) <= 1
        built.clear()
        SyncPrefectClient("https://prefect.example/api", httpx_settings={"verify": False})
        assert len(built) == 1  # httpx's own context for verify=False: the client's choice was kept
