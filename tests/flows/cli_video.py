"""Running ``python -m flows.video_flow`` as users type it, on a short page with local pictures and a PNG presenter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
FPS = 8
SMALL = {
    "PAGEREEL_RENDER__RESOLUTION": "144",
    "PAGEREEL_RENDER__FPS": str(FPS),
    "PAGEREEL_RENDER__PRESET": "ultrafast",
    "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "15",
    "PAGEREEL_RUNNER__MAX_WORKERS": "2",
}
#: The arguments of every run after the page and before --runner.
ARGS = ["article.html", "--avatar", "face.png"]

_THREAD_RUNS: dict[str, dict[str, Any]] = {}


def client_folder(folder: Path, *, pictures: bool = True) -> Path:
    """``folder`` with the sample article, its pictures (unless not ``pictures``) and a PNG presenter."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("article.html", "lighthouse.png", "lens.png") if pictures else ("article.html",):
        shutil.copy(ROOT / "examples" / name, folder / name)
    face = Image.new("RGBA", (60, 80), (0, 0, 0, 0))
    face.paste((230, 80, 40, 255), (10, 10, 50, 70))
    face.save(folder / "face.png")
    return folder


def cli_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a command-line run: no inherited PAGEREEL_* settings, outputs under ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGEREEL_", "PREFECT_API_URL"))}
    env.update(SMALL, PYTHONPATH=str(ROOT), PAGEREEL_OUT_DIR=str(folder / "out"),
               PAGEREEL_CACHE__DIR=str(folder / "cache"))
    env.update(extra)
    return env


def run_cli(folder: Path, workflow_id: str, runner: str, env: dict[str, str],
            timeout: float = 400) -> tuple[dict[str, Any], str]:
    """Run ``python -m flows.video_flow article.html --avatar face.png --runner RUNNER --json`` in ``folder``."""
    done = subprocess.run([sys.executable, "-m", "flows.video_flow", *ARGS, "--workflow-id", workflow_id,
                           "--runner", runner, "--json"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout), done.stderr


def thread_run(base: Path, prefect_api: str, *, pictures: bool = True) -> dict[str, Any]:
    """The thread runner's video of the page (once per test session), with or without its pictures."""
    key = "pictures" if pictures else "gradient"
    if key not in _THREAD_RUNS:
        folder = client_folder(base / f"thread-{key}", pictures=pictures)
        state, _ = run_cli(folder, key, "thread", cli_env(folder, PREFECT_API_URL=prefect_api))
        assert "runner:thread" in state["optimizations_used"]
        _THREAD_RUNS[key] = state
    return _THREAD_RUNS[key]


def frame_count(path: str) -> int:
    with av.open(path) as c:
        return sum(1 for _ in c.decode(video=0))


def assert_same_video(state: dict[str, Any], reference: dict[str, Any], kind: str) -> None:
    """Rendered on ``kind`` (not served from another run's cache), with the reference's scene times and frames."""
    assert state["status"] == "completed"
    assert f"runner:{kind}" in state["optimizations_used"]
    assert state["metrics"]["cache_misses"] > 0
    assert state["scenes"] == reference["scenes"]
    assert frame_count(state["video_path"]) == frame_count(reference["video_path"])
