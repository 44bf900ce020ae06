"""What the reliability tests check a finished video with, and how they start the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import av

#: Settings for a short, small, fast video (like the flow tests): 144p at 12 fps, about 15 s.
SMALL_VIDEO = {
    "PAGEREEL_RENDER__RESOLUTION": "144",
    "PAGEREEL_RENDER__FPS": "12",
    "PAGEREEL_RENDER__PRESET": "ultrafast",
    "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "15",
}
ARTICLE = "/pages/lemire.me.json.html"


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
