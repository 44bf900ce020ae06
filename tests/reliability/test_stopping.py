"""``batch`` and ``tune`` stop on SIGTERM as ``video`` does: one ``error:`` line, exit 143, no finished-looking files.

A scheduler, ``timeout`` or a Prefect cancel ends a command with SIGTERM; the run unwinds (Prefect
marks it crashed) and the process ends with status 143 (128 + SIGTERM) and one line saying so.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from flows.stopping import EXIT_CODE
from tests.reliability.conftest import PYTHON, cli_env

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

PAGEREEL = shutil.which("pagereel", path=str(Path(sys.executable).parent))


def _stop_when(command: list[str], env: dict[str, str], cwd: Path, ready: Callable[[], bool]) -> tuple[int, str]:
    """Run ``command``, send it SIGTERM once ``ready()`` holds, and return its exit status and stderr."""
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ends = time.monotonic() + 90
        while not ready() and child.poll() is None and time.monotonic() < ends:
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()
        assert ready(), "the run never reached the point where it is stopped"
        time.sleep(0.3)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, err


def _assert_stopped_in_one_line(returncode: int, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert returncode == EXIT_CODE, (returncode, err[-2000:])
    assert lines and lines[-1].startswith("error: ") and "SIGTERM" in lines[-1], err[-2000:]
    assert sum(line.startswith("error: ") for line in lines) == 1, err[-2000:]


@pytest.mark.timeout(180)
def test_batch_stops_on_sigterm_in_one_line_leaving_no_outputs(http_server, pagereel_env: Path,
                                                               prefect_api: str) -> None:
    # Two pages that send their headers, then nothing: both videos sit in their fetch until SIGTERM comes.
    env = cli_env(prefect_api, PAGEREEL_FETCH__TIMEOUT_S="60", PAGEREEL_FETCH__RETRIES="0")
    before = http_server.hits("/hang")
    urls = [http_server.url("/hang?page=one"), http_server.url("/hang?page=two")]
    returncode, err = _stop_when([PYTHON, "-m", "flows.batch_flow", *urls, "--concurrency", "2"], env,
                                 pagereel_env, lambda: http_server.hits("/hang") >= before + 2)
    _assert_stopped_in_one_line(returncode, err)
    out = pagereel_env / "out"
    finished = [p for p in out.rglob("*") if p.name in ("video.mp4", "manifest.json", "storyboard.json")]
    assert not finished, finished


@pytest.mark.timeout(240)
def test_tune_stops_on_sigterm_in_one_line_writing_no_profile(pagereel_env: Path, prefect_api: str) -> None:
    assert PAGEREEL, "the pagereel console script is not installed beside this Python"
    env = cli_env(prefect_api, PAGEREEL_TUNING__RESOLUTION="144", PAGEREEL_TUNING__CLIP_SECONDS="1.5",
                  PAGEREEL_RENDER__FPS="12", PAGEREEL_TUNING__CONCURRENCY="1")
    profiles = pagereel_env / ".pagereel" / "profiles"
    # The study's database appears once the reference clip is rendered: trials are running when SIGTERM comes.
    returncode, err = _stop_when([PAGEREEL, "tune", "--trials", "500", "--name", "stopped"], env, pagereel_env,
                                 lambda: (profiles / "tuning.db").exists())
    _assert_stopped_in_one_line(returncode, err)
    assert not (profiles / "stopped.json").exists()
    assert not list(profiles.glob("*.json")) and not list(profiles.glob(".*.part"))
