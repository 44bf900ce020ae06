"""benchmarks/compare_videos.py finds any changed frame or sample, and nothing in identical renders."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from benchmarks.compare_videos import compare

ROOT = Path(__file__).resolve().parents[1]


def clip(path: Path, *, bright_frame: int | None = None, loud_from: int | None = None) -> Path:
    """16 frames of 64x48 H.264 at 8 fps and half a second of AAC; optionally one frame or the sound changed."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=8, options={"preset": "ultrafast", "crf": "18", "bf": "0"})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=48_000, layout="mono")
        for i in range(16):
            rgb = np.full((48, 64, 3), (20 * (i % 8), 90, 160), np.uint8)
            if i == bright_frame:
                rgb[10:20, 10:20] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 8)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        t = np.arange(24_000) / 48_000
        tone = np.sin(2 * np.pi * 440 * t) * 8000
        if loud_from is not None:
            tone[loud_from:] *= 2
        pcm = tone.astype(np.int16)
        for start in range(0, len(pcm), 1024):
            piece = av.AudioFrame.from_ndarray(pcm[start:start + 1024].reshape(1, -1).copy(), format="s16",
                                               layout="mono")
            piece.sample_rate, piece.pts, piece.time_base = 48_000, start, Fraction(1, 48_000)
            out.mux(audio.encode(piece))
        out.mux(audio.encode(None))
    return path


def test_identical_renders_are_the_same_from_the_command_line(tmp_path: Path) -> None:
    a, b = clip(tmp_path / "a.mp4"), clip(tmp_path / "b.mp4")
    proc = subprocess.run([sys.executable, "benchmarks/compare_videos.py", str(a), str(b)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "video frames: 16 and 16" in proc.stdout and "identical" in proc.stdout


def test_one_changed_frame_is_found(tmp_path: Path) -> None:
    result = compare(clip(tmp_path / "a.mp4"), clip(tmp_path / "b.mp4", bright_frame=5))
    assert not result.same
    assert result.differences[0].startswith("frame 5 (at 0.625 s): pixels differ")


def test_changed_sound_is_found(tmp_path: Path) -> None:
    result = compare(clip(tmp_path / "a.mp4"), clip(tmp_path / "b.mp4", loud_from=12_000))
    assert not result.same and result.video_frames == (16, 16)
    assert any(d.startswith("audio differs from sample") for d in result.differences), result.differences


def test_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "benchmarks/compare_videos.py", str(tmp_path / "no.mp4"),
                           str(tmp_path / "no.mp4")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
