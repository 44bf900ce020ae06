"""A Dask (and a Ray) cluster on "another machine": the command line's video equals the thread runner's.

The scheduler and the worker are separate processes with pagereel installed from a wheel into a
venv of their own, their own working directory, HOME and TMPDIR, and the client's folders (the
repository, the test session's temporary folders) hidden behind a mount namespace. The run uses a
PNG presenter and local pictures that exist only on the client.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.flows.cli_video import FPS, assert_same_video, cli_env, client_folder, run_cli, thread_run
from tests.flows.other_machine import ROOT, OtherMachine, build_wheel, unshare_problem

pytestmark = [pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    problem = unshare_problem()
    if problem:
        pytest.skip(problem)
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture
def other_machine(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtherMachine]:
    machine = OtherMachine(wheel, hidden=[ROOT, tmp_path_factory.getbasetemp()])
    try:
        yield machine
    finally:
        machine.stop()


@pytest.fixture
def references(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The thread runner's video, and the same page without its pictures (a gradient behind every scene)."""
    base = tmp_path_factory.getbasetemp()
    return thread_run(base, prefect_api), thread_run(base, prefect_api, pictures=False)


def _remote_video(client: Path, kind: str, address: str, prefect_api: str) -> dict[str, Any]:
    env = cli_env(client, PREFECT_API_URL=prefect_api, PAGEREEL_RUNNER__ADDRESS=address)
    return run_cli(client, f"on-{kind}", kind, env)[0]


def _frame(path: str, index: int) -> np.ndarray:
    with av.open(path) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k == index:
                return frame.to_ndarray(format="rgb24").astype(np.int16)
    raise AssertionError(f"{path} has no frame {index}")


def _picture_frame(state: dict[str, Any]) -> int:
    """A frame in the middle of the first scene that shows a picture."""
    board = json.loads(Path(state["storyboard_path"]).read_text())
    with_picture = {s["id"] for s in board["scenes"] if s.get("image")}
    scene = next(s for s in state["scenes"] if s["id"] in with_picture)
    return round((scene["start_s"] + scene["end_s"]) / 2 * FPS)


def _assert_same_video_with_pictures(remote: dict[str, Any], reference: dict[str, Any], gradient: dict[str, Any],
                                     kind: str) -> None:
    assert_same_video(remote, reference, kind)
    k = _picture_frame(reference)
    theirs, ours = _frame(remote["video_path"], k), _frame(reference["video_path"], k)
    assert np.abs(theirs - ours).mean() < 1.0
    # The picture is really there: without it the scene shows the theme's gradient.
    assert np.abs(theirs - _frame(gradient["video_path"], k)).mean() > 8.0


def _assert_nothing_of_the_client_is_visible(machine: OtherMachine, client: Path) -> None:
    seen = machine.run("python", "-c", (
        "import os, pathlib, tasks; "
        f"print([p for p in {[str(client / 'face.png'), str(ROOT / 'README.md')]!r} if pathlib.Path(p).exists()], "
        "os.getcwd(), os.environ['HOME'], os.environ['TMPDIR'], tasks.__file__)"))
    assert seen.startswith("[] "), seen
    assert str(ROOT) not in seen and str(machine.base / "venv") in seen, seen


def test_dask_worker_on_another_machine(other_machine: OtherMachine, tmp_path: Path, prefect_api: str,
                                        references: tuple[dict[str, Any], dict[str, Any]]) -> None:
    client = client_folder(tmp_path / "client")
    _assert_nothing_of_the_client_is_visible(other_machine, client)
    port = _free_port()
    other_machine.start("scheduler", "python", "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                        "--dashboard-address", ":0", "--preload", "flows.dask_preload")  # as README starts it
    other_machine.wait_for("scheduler", "Scheduler at:")
    other_machine.start("worker", "python", "-m", "dask", "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                        "--nworkers", "1", "--no-dashboard", "--local-directory", "dask-worker",
                        "--preload", "flows.dask_preload")
    other_machine.wait_for("scheduler", "Register worker")

    remote = _remote_video(client, "dask", f"tcp://127.0.0.1:{port}", prefect_api)
    _assert_same_video_with_pictures(remote, *references, kind="dask")
    worker_log = other_machine.log("worker").read_text(errors="replace")
    assert "render s1" in worker_log  # the scenes ran there, not in the client
    assert "Starting temporary server" not in worker_log
    scheduler_log = other_machine.log("scheduler").read_text(errors="replace")
    for log in (scheduler_log, worker_log):  # the preload ran there, from the installed wheel, and did its work
        assert "Run preload setup: flows.dask_preload" in log
        assert "could not load pagereel's stages" not in log


@pytest.mark.slow
def test_ray_worker_on_another_machine(other_machine: OtherMachine, tmp_path: Path, prefect_api: str,
                                       references: tuple[dict[str, Any], dict[str, Any]]) -> None:
    client = client_folder(tmp_path / "client")
    _assert_nothing_of_the_client_is_visible(other_machine, client)
    gcs, client_port = _free_port(), _free_port()
    ray = ["python", "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats"]
    other_machine.start("head", *ray, "--head", "--include-dashboard", "false", "--node-ip-address", "127.0.0.1",
                        "--port", str(gcs),
                        "--ray-client-server-port", str(client_port), "--num-cpus", "0")
    other_machine.wait_for("head", "Ray runtime started", timeout=180)
    other_machine.start("worker", *ray, f"--address=127.0.0.1:{gcs}", "--node-ip-address", "127.0.0.1",
                        "--num-cpus", "1")
    other_machine.wait_for("worker", "Ray runtime started", timeout=180)

    remote = _remote_video(client, "ray", f"ray://127.0.0.1:{client_port}", prefect_api)
    _assert_same_video_with_pictures(remote, *references, kind="ray")
