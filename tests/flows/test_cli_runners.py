"""The command users run, `python -m flows.video_flow URL --runner KIND`, in a subprocess on every runner.

Each runner's video must match the thread runner's: same scene times, same frame count. The page
is the bundled sample article with its local pictures, at 144p and 8 fps so each run stays short.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import pytest

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "PAGEREEL_RENDER__RESOLUTION": "144",
    "PAGEREEL_RENDER__FPS": "8",
    "PAGEREEL_RENDER__PRESET": "ultrafast",
    "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "15",
    "PAGEREEL_RUNNER__MAX_WORKERS": "2",
}


def copy_article(folder: Path) -> Path:
    """The sample article and its pictures, copied into ``folder``; returns the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("article.html", "lighthouse.png", "lens.png"):
        shutil.copy(ROOT / "examples" / name, folder / name)
    return folder / "article.html"


def cli_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a command-line run: no inherited PAGEREEL_* settings, outputs under ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGEREEL_", "PREFECT_API_URL"))}
    env.update(SMALL, PYTHONPATH=str(ROOT), PAGEREEL_OUT_DIR=str(folder / "out"),
               PAGEREEL_CACHE__DIR=str(folder / "cache"))
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 400) -> tuple[dict[str, Any], str]:
    """Run ``python -m flows.video_flow ARGS --json`` as a user types it; return the state and stderr."""
    done = subprocess.run([sys.executable, "-m", "flows.video_flow", *args, "--json"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout), done.stderr


def frame_count(path: str) -> int:
    with av.open(path) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(scope="module")
def thread_reference(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("cli-thread")
    page = copy_article(folder)
    state, _ = run_cli([page.name, "--workflow-id", "ref", "--runner", "thread"], folder,
                       cli_env(folder, PREFECT_API_URL=prefect_api))
    assert "runner:thread" in state["optimizations_used"]
    return state


def assert_same_video(state: dict[str, Any], reference: dict[str, Any], kind: str) -> None:
    assert state["status"] == "completed"
    assert f"runner:{kind}" in state["optimizations_used"]
    assert state["metrics"]["cache_misses"] > 0  # rendered here, not served from another run's cache
    assert state["scenes"] == reference["scenes"]
    assert frame_count(state["video_path"]) == frame_count(reference["video_path"])


# Ray's start-up alone takes most of a minute on a busy 2-core machine: `make soak` runs it.
@pytest.mark.parametrize("kind", ["process", pytest.param("ray", marks=pytest.mark.slow)])
def test_command_line_runs_on_every_runner(kind: str, thread_reference: dict[str, Any], prefect_api: str,
                                          tmp_path: Path) -> None:
    page = copy_article(tmp_path)
    state, _ = run_cli([page.name, "--workflow-id", f"on-{kind}", "--runner", kind], tmp_path,
                       cli_env(tmp_path, PREFECT_API_URL=prefect_api))
    assert_same_video(state, thread_reference, kind)


def test_command_line_on_dask_without_an_api_starts_one_temporary_server(thread_reference: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    # Without PREFECT_API_URL each Dask worker process used to start a temporary Prefect server of its own.
    page = copy_article(tmp_path)
    env = cli_env(tmp_path, PREFECT_HOME=str(tmp_path / "prefect-home"),
                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
    state, stderr = run_cli([page.name, "--workflow-id", "on-dask", "--runner", "dask"], tmp_path, env)
    assert_same_video(state, thread_reference, "dask")
    assert stderr.count("Starting temporary server") == 1, stderr[-4000:]
