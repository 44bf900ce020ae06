"""The deployments of prefect.yaml, deployed once per test session, and one process worker that runs them.

Deploying takes a ``prefect deploy`` and every worker start a Python process of its own: tests that
run a deployment share both (the ``deployed`` fixture in tests/conftest.py). Each run brings the
test's own pagereel settings as the run's ``env`` job variable, so the worker itself holds none.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFECT = [sys.executable, "-m", "prefect"]
#: The work pool prefect.yaml's deployments name.
POOL = "pagereel-local"
DEPLOYMENTS = ("video-flow/from-url", "batch-flow/nightly", "tune-flow/tune")


def prefect(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``prefect --no-prompt ARGS`` from the checkout, which must succeed."""
    done = subprocess.run([*PREFECT, "--no-prompt", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def run_settings(**extra: str) -> dict[str, str]:
    """The calling test's pagereel settings (its ``PAGEREEL_*`` variables), plus ``extra``: a run's ``env``."""
    return {**{k: v for k, v in os.environ.items() if k.startswith("PAGEREEL_")}, **extra}


@dataclass
class Deployed:
    """The session's deployments (full name -> id) and the worker that runs them, logging to ``log``."""

    deployments: dict[str, Any]
    worker: subprocess.Popen[bytes]
    log: Path

    def run(self, name: str, parameters: dict[str, Any], env: dict[str, str]) -> Any:
        """Start a run of deployment ``name``; its flow process gets ``env`` on top of the worker's environment."""
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            return client.create_flow_run_from_deployment(self.deployments[name], parameters=parameters,
                                                          job_variables={"env": env}).id

    def wait(self, run_id: Any, until: Callable[[Any], bool], timeout: float = 300) -> Any:
        """The run's state once ``until`` holds for it; a test failure (with the worker's log) if it ends otherwise."""
        from prefect.client.orchestration import get_client

        deadline = time.monotonic() + timeout
        state = None
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                state = client.read_flow_run(run_id).state
                if state is not None and until(state):
                    return state
                if state is not None and state.is_final() or self.worker.poll() is not None:
                    break
                time.sleep(0.5)
        pytest.fail(f"run {run_id} ended as {state!r} (worker exit {self.worker.poll()}):\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextmanager
def deployed(api: str, folder: Path) -> Iterator[Deployed]:
    """Every deployment of prefect.yaml registered with ``api``, and a worker of their pool until the end."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    # The worker holds no pagereel setting: each run brings its test's (``Deployed.run``).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEREEL_")}
    env.update(PREFECT_API_URL=api, PWD=str(ROOT), PREFECT_WORKER_QUERY_SECONDS="1")
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(POOL)
        except ObjectNotFound:
            prefect("work-pool", "create", POOL, "--type", "process", env=env)
    prefect("deploy", "--all", env=env)
    with get_client(sync_client=True) as client:
        ids = {name: client.read_deployment_by_name(name).id for name in DEPLOYMENTS}
    log = folder / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([*PREFECT, "worker", "start", "--pool", POOL, "--type", "process"], cwd=folder,
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield Deployed(ids, worker, log)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
