"""What the reliability tests check a finished video with, and how they start the CLI."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import av
import pytest
import redis

#: Settings for a short, small, fast video (like the flow tests): 144p at 12 fps, about 15 s.
SMALL_VIDEO = {
    "PAGEREEL_RENDER__RESOLUTION": "144",
    "PAGEREEL_RENDER__FPS": "12",
    "PAGEREEL_RENDER__PRESET": "ultrafast",
    "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "15",
}
ARTICLE = "/pages/garden-sensor.html"


def assert_valid_video(folder: Path) -> dict:
    """The folder holds a finished run: an H.264 + AAC video whose length matches its manifest; returns the manifest."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "completed"
    video = Path(manifest["video_path"])
    assert video == folder / "video.mp4" and video.is_file()
    with av.open(str(video)) as container:
        codecs = {s.type: s.codec_context.name for s in container.streams}
        assert codecs == {"video": "h264", "audio": "aac"}
        duration = container.duration / 1_000_000
        frames = sum(1 for _ in container.decode(video=0))
    assert abs(duration - manifest["duration_s"]) < 0.25
    assert frames > 0
    scenes = manifest["scenes"]
    assert scenes and abs(scenes[-1]["end_s"] - manifest["duration_s"]) < 0.25
    assert not list(folder.glob(".*.part")), "a temporary file was left behind"
    return manifest


def render_states(flow_run_name: str, expected: int, wait_s: float = 30.0) -> dict[str, int]:
    """How many render task runs of the completed flow run ``flow_run_name`` ended in each state (from the API).

    Task runs reach the API through events, a moment after they end: wait until ``expected`` are there.
    """
    import time
    from collections import Counter

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterName,
        TaskRunFilter,
        TaskRunFilterName,
    )
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

    ends = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[flow_run_name])),
                                         sort=FlowRunSort.ID_DESC, limit=20)
            ids = [r.id for r in runs if r.state is not None and r.state.is_completed()]
            counts: Counter[str] = Counter()
            if ids:
                renders = TaskRunFilter(name=TaskRunFilterName(like_="render "))
                task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)),
                                                  task_run_filter=renders, sort=TaskRunSort.ID_DESC, limit=200)
                counts = Counter(t.state.name for t in task_runs if t.state is not None and t.state.is_final())
            if sum(counts.values()) >= expected or time.monotonic() > ends:
                return dict(counts)
            time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own (never the shared one), which it can restart."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary, self.folder, self.port = binary, folder, _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(200):
            try:
                client.ping()
                return
            except (redis.ConnectionError, OSError):
                time.sleep(0.05)
            finally:
                client.close()
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # a crash, not a clean shutdown: every key and lock is gone
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self, down_s: float) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1
