"""A render killed with SIGKILL halfway leaves no video where one belongs; the re-run renders only what is missing."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from flows.video_flow import run_video
from tests.reliability.conftest import PYTHON, cli_env
from tests.reliability.helpers import ARTICLE, assert_valid_video, render_states

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

# Slow enough that the kill lands between scenes: one worker, 360p at 24 fps.
CRASH_VIDEO = {
    "PAGEREEL_RENDER__RESOLUTION": "360",
    "PAGEREEL_RENDER__FPS": "24",
    "PAGEREEL_RENDER__PRESET": "ultrafast",
    "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "40",
    "PAGEREEL_RUNNER__MAX_WORKERS": "1",
}


def _segments(cache_dir: Path) -> dict[str, int]:
    """Cached render results in the local cache folder: file name -> modification time (ns)."""
    found = {}
    for path in cache_dir.glob("*"):
        try:
            head = path.read_bytes()
            if b"tasks.blobs.StoredSegment" in head and json.loads(head):
                found[path.name] = path.stat().st_mtime_ns
        except (OSError, ValueError):
            continue  # being written
    return found


def test_killed_render_resumes_with_only_the_missing_scenes(http_server, pagereel_env: Path, prefect_api: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CRASH_VIDEO.items():
        monkeypatch.setenv(name, value)
    url = http_server.url(ARTICLE)
    workflow_id = f"crash-{uuid.uuid4().hex[:8]}"
    folder = pagereel_env / "out" / workflow_id
    cache_dir = pagereel_env / "cache"

    child = subprocess.Popen([PYTHON, "-m", "flows.video_flow", url, "--workflow-id", workflow_id, "--json"],
                             env=cli_env(prefect_api), cwd=pagereel_env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        ends = time.monotonic() + 120
        while len(_segments(cache_dir)) < 2 and child.poll() is None and time.monotonic() < ends:
            time.sleep(0.02)
        assert child.poll() is None, f"the run ended before it could be killed: {child.stderr.read()[-2000:]!r}"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()

    # Nothing finished where finished files belong (the run's storyboard too waits in its staging folder);
    # what a kill during assembly leaves is simulated too.
    assert not (folder / "video.mp4").exists() and not (folder / "manifest.json").exists()
    assert not (folder / "storyboard.json").exists()
    before = _segments(cache_dir)
    (staged,) = folder.glob(".run-*.part/storyboard.json")
    scenes = json.loads(staged.read_text())["scenes"]
    assert 2 <= len(before) < len(scenes), (len(before), len(scenes))
    (folder / ".video.mp4.k1ll3d.part").write_bytes(b"\x00" * 1000)

    state = run_video(url, workflow_id=workflow_id)
    manifest = assert_valid_video(folder)  # also: no .part file left
    assert manifest["status"] == "completed" and state.video_path == str(folder / "video.mp4")

    # Each scene rendered before the kill came from the cache, untouched; only the others were rendered.
    states = render_states(f"video {workflow_id}", expected=len(scenes))
    assert states == {"Cached": len(before), "Completed": len(scenes) - len(before)}, states
    after = _segments(cache_dir)
    assert len(after) == len(scenes)
    assert all(after[name] == mtime for name, mtime in before.items())
