"""Decode two videos and say whether they are the same, frame for frame and sample for sample.

    python benchmarks/compare_videos.py BEFORE.mp4 AFTER.mp4 [--json]

Compares what a viewer gets, not the bytes of the file: the video streams' size and frame rate,
every decoded frame's planes (as the encoder stored them, no colour conversion) with its
presentation time, and every decoded audio sample with its time. Container details that do not
change a picture or a sound (muxer version strings, box order) are ignored. Exit status 0 when
everything matches, 1 with the first differences otherwise, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass
class Comparison:
    """What differs between two videos; ``same`` when nothing does."""

    video_frames: tuple[int, int] = (0, 0)
    audio_samples: tuple[int, int] = (0, 0)
    differences: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differences


def _frames(path: Path) -> Iterator[tuple[Fraction | None, list[np.ndarray]]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            planes = [np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
                      for plane in frame.planes]
            time = Fraction(frame.pts) * stream.time_base if frame.pts is not None else None
            yield time, planes


def _audio(path: Path) -> tuple[np.ndarray, int, Fraction | None]:
    """Every decoded sample (channels x samples, float64), the rate, and the time of the first one."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return np.zeros((0, 0)), 0, None
        stream = container.streams.audio[0]
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None and frame.pts is not None:
                start = Fraction(frame.pts) * stream.time_base
            data = frame.to_ndarray()
            chunks.append(data if not frame.format.is_planar else data.reshape(len(frame.layout.channels), -1))
        rate = stream.codec_context.sample_rate
    return (np.concatenate(chunks, axis=1).astype(np.float64) if chunks else np.zeros((0, 0))), rate, start


def _describe(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        return {"codec": v.codec_context.name, "size": (v.codec_context.width, v.codec_context.height),
                "pix_fmt": v.codec_context.pix_fmt, "rate": str(v.average_rate),
                "audio": [(a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels)
                          for a in container.streams.audio]}


def compare(a: Path, b: Path, *, limit: int = 5) -> Comparison:
    """Compare ``a`` and ``b``; at most ``limit`` differing frames are listed."""
    result = Comparison()
    info_a, info_b = _describe(a), _describe(b)
    for key in info_a:
        if info_a[key] != info_b[key]:
            result.differences.append(f"{key}: {info_a[key]} against {info_b[key]}")
    _compare_frames(a, b, result, limit)
    _compare_audio(a, b, result)
    return result


def _frame_difference(index: int, t_a: Fraction | None, planes_a: list[np.ndarray], t_b: Fraction | None,
                      planes_b: list[np.ndarray]) -> str | None:
    """How frame ``index`` of one video differs from the other's; None when it does not."""
    if t_a != t_b:
        return f"frame {index}: shown at {t_a} s against {t_b} s"
    if all(p.shape == q.shape and np.array_equal(p, q) for p, q in zip(planes_a, planes_b, strict=True)):
        return None
    worst = max(int(np.abs(p.astype(np.int16) - q.astype(np.int16)).max())
                for p, q in zip(planes_a, planes_b, strict=True) if p.shape == q.shape)
    return f"frame {index} (at {float(t_a or 0):.3f} s): pixels differ, by up to {worst} levels"


def _compare_frames(a: Path, b: Path, result: Comparison, limit: int) -> None:
    count_a = count_b = differing = 0
    frames_b = _frames(b)
    for (t_a, planes_a) in _frames(a):
        count_a += 1
        step = next(frames_b, None)
        if step is None:
            continue
        count_b += 1
        difference = _frame_difference(count_a - 1, t_a, planes_a, *step)
        if difference is not None:
            differing += 1
            if differing <= limit:
                result.differences.append(difference)
    count_b += sum(1 for _ in frames_b)
    result.video_frames = (count_a, count_b)
    if count_a != count_b:
        result.differences.append(f"video frames: {count_a} against {count_b}")
    if differing > limit:
        result.differences.append(f"... {differing} differing frames in all")


def _compare_audio(a: Path, b: Path, result: Comparison) -> None:
    audio_a, rate_a, start_a = _audio(a)
    audio_b, rate_b, start_b = _audio(b)
    result.audio_samples = (audio_a.shape[-1] if audio_a.size else 0, audio_b.shape[-1] if audio_b.size else 0)
    if start_a != start_b:
        result.differences.append(f"audio starts at {start_a} s against {start_b} s")
    if audio_a.shape != audio_b.shape:
        result.differences.append(f"audio samples: {audio_a.shape} against {audio_b.shape}")
    elif audio_a.size and not np.array_equal(audio_a, audio_b):
        first = int(np.flatnonzero((audio_a != audio_b).any(axis=0))[0])
        worst = float(np.abs(audio_a - audio_b).max())
        result.differences.append(f"audio differs from sample {first} ({first / max(rate_a, 1):.3f} s), "
                                  f"by up to {worst:.6g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = parser.parse_args(argv)
    for path in (args.a, args.b):
        if not path.is_file():
            print(f"error: {path} does not exist; give two video files", file=sys.stderr)
            return 2
    try:
        result = compare(args.a, args.b)
    except (av.FFmpegError, IndexError) as exc:
        print(f"error: cannot decode the videos ({exc}); give two files with a video stream", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**asdict(result), "same": result.same}))
    else:
        frames, samples = result.video_frames, result.audio_samples
        print(f"video frames: {frames[0]} and {frames[1]}; audio samples: {samples[0]} and {samples[1]}")
        print("identical: every frame and every audio sample" if result.same else "\n".join(result.differences))
    return 0 if result.same else 1


if __name__ == "__main__":
    raise SystemExit(main())
