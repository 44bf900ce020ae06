"""Time one 10 s 720p30 (or 1080p30) scene three ways: pagereel, MoviePy 2, and the encoder alone.

    python benchmarks/render.py [--rounds 3] [--quick] [--skip-moviepy] [--resolution 720|1080|both]

``--resolution 1080`` renders the scene at 1920x1080 with the encoder settings of the ``1080p``
profile (``flows/profiles.py``), as a 1080p run gets them; ``both`` prints the 720p table, then
the 1080p one, in one run.

The scene is a body scene as the flow renders it: a 1920x1080 photo under a Ken Burns move, a
caption that fades in, subtitles timed to the narration's words, a progress bar and 48 kHz audio.

- **pagereel**: ``tasks.render.render_scene`` into an in-memory MP4.
- **moviepy**: the same scene built the MoviePy 2 way (ImageClip resized and moved over time,
  TextClips, a sliding ColorClip, AudioArrayClip) and written with ``write_videofile`` to a temp file.
  MoviePy 2.2 pins Pillow below 12, so it lives in its own environment: ``make bench`` creates
  ``.venv-bench`` (pagereel plus the ``bench`` extra) and this script runs the MoviePy contender in
  a child process of that interpreter, timed inside the child around ``write_videofile`` alone. If
  MoviePy imports in the running interpreter, it runs in-process instead.
- **encode-only**: pagereel's own frames, decoded from a warm-up render and turned into yuv420p
  ``av.VideoFrame``s before the clock starts, pushed through the same libx264 settings with the
  same audio into an in-memory MP4. It is the floor: nothing that renders these frames this way
  can be faster than encoding them.

``--skip-moviepy`` leaves MoviePy out (no ``.venv-bench`` needed): pagereel against the floor only.

Rounds are interleaved (pagereel, moviepy, encode-only, then again) so a slow spell of the machine
hits all three. The table gives the best and median wall seconds and the median CPU seconds (all
threads, and MoviePy's ffmpeg child). Every output is reopened with PyAV and must be H.264 + AAC
with the scene's frame count and duration, or the script exits non-zero.
"""

from __future__ import annotations

import argparse
import gc
import io
import math
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

# Run as ``python benchmarks/render.py``, this file's folder leads sys.path and benchmarks/kernels.py
# would shadow the ``kernels`` package; the repository root goes first instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import av  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from benchmarks.harness import busy_cpus  # noqa: E402
from kernels._jit import kernel_backend  # noqa: E402
from kernels.compositing import ken_burns_window, tag_bt709  # noqa: E402
from tasks.images import Picture  # noqa: E402
from tasks.layout import PALETTES, subtitle_cues  # noqa: E402
from tasks.models import Narration, RenderOptions, Scene, WordTiming  # noqa: E402
from tasks.render import SceneContext, render_scene  # noqa: E402
from tasks.timeline import LEAD_S, TAIL_S, scene_frames, scene_pcm  # noqa: E402

SAMPLE_RATE = 48_000
#: x264 threads for every contender: 0 is "auto", what render_scene leaves PyAV's libx264 at.
THREADS = 0
CAPTION = "Tidal power comes of age along the northern coast"
NARRATION = (
    "Along the northern coast, a row of quiet turbines now turns with every tide. "
    "Engineers say the steady flow makes tidal power easier to plan than wind or sun, "
    "and the first town already runs on it."
)
PHOTO_SIZE = (1920, 1080)
TARGET_RATIO_MOVIEPY = 5.0
TARGET_RATIO_FLOOR = 1.25


@dataclass(frozen=True)
class Inputs:
    """Everything the three contenders share, built once before any clock starts."""

    scene: Scene
    narration: Narration
    options: RenderOptions
    picture: Picture
    photo_rgb: np.ndarray  # the picture's pixels, decoded once (MoviePy's ImageClip takes an array)
    frames: int
    pcm: np.ndarray  # the scene's audio as render_scene builds it: lead-in, voice, silence


@dataclass(frozen=True)
class Probe:
    """What PyAV reads back from an MP4."""

    video_codec: str
    pix_fmt: str
    width: int
    height: int
    frames: int
    duration_s: float
    audio_codec: str | None
    audio_s: float
    size_bytes: int


# --------------------------------------------------------------------------- inputs


def synthetic_photo(width: int, height: int, seed: int = 7) -> bytes:
    """A photo-like JPEG: sky and sea gradients, a sun, hills, a pier, and sensor noise."""
    rng = np.random.default_rng(seed)
    yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = np.array([40, 90, 170], np.float32) * (1 - yy) + np.array([250, 190, 140], np.float32) * yy
    sea = np.array([20, 60, 90], np.float32) * (1 - yy) + np.array([60, 120, 140], np.float32) * yy
    horizon = int(height * 0.58)
    rgb = np.where(np.arange(height)[:, None, None] < horizon, sky, sea) * np.ones((1, width, 1), np.float32)
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    draw.ellipse((int(width * 0.68), int(height * 0.22), int(width * 0.78), int(height * 0.22) + int(width * 0.1)),
                 fill=(255, 226, 170))
    for k, (shade, base) in enumerate((((70, 90, 80), 0.6), ((40, 60, 50), 0.64))):
        xs = np.linspace(0, width, 24)
        ys = height * (base - 0.1 * np.abs(np.sin(xs / width * (3 + k) + k)) - 0.03 * rng.random(24))
        draw.polygon([(0, height * 0.7)] + list(zip(xs.tolist(), ys.tolist(), strict=True)) + [(width, height * 0.7)],
                     fill=shade)
    for i in range(12):  # pier posts and turbines: hard edges the encoder has to spend bits on
        x = int(width * (0.08 + 0.07 * i))
        draw.rectangle((x, int(height * 0.55), x + 10, int(height * 0.8)), fill=(30, 28, 26))
        draw.line((x + 5, int(height * 0.55), x + 5 + 60 * math.cos(i), int(height * 0.55) + 60 * math.sin(i)),
                  fill=(230, 230, 235), width=5)
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    pixels = np.asarray(im, np.float32) + rng.normal(0.0, 6.0, (height, width, 3)).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def synthetic_narration(scene_id: str, seconds: float, text: str) -> Narration:
    """A voiced tone shaped like speech (syllables, pauses between words) with matching word timings."""
    words = text.split()
    weights = np.array([len(w) + 2 for w in words], np.float64)
    gap = 0.06
    speech_s = seconds - 0.1 - gap * (len(words) - 1)
    starts, t = [], 0.05
    timings: list[WordTiming] = []
    for word, weight in zip(words, weights, strict=True):
        d = speech_s * weight / weights.sum()
        timings.append(WordTiming(word=word, t0=round(t, 3), t1=round(t + d, 3)))
        starts.append((t, d))
        t += d + gap
    n = round(seconds * SAMPLE_RATE)
    time_s = np.arange(n) / SAMPLE_RATE
    f0 = 135.0 + 12.0 * np.sin(2 * np.pi * 0.7 * time_s)  # a wandering pitch, as a voice has
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in (1, 2, 3, 4))
    envelope = np.zeros(n)
    for t0, d in starts:
        a, b = round(t0 * SAMPLE_RATE), min(n, round((t0 + d) * SAMPLE_RATE))
        u = np.arange(b - a) / max(1, b - a)
        envelope[a:b] = np.sin(np.pi * u) * (0.6 + 0.4 * np.abs(np.sin(np.pi * 4.5 * u * d)))  # ~4.5 syllables/s
    pcm = np.clip(voice * envelope * 0.35 * 32767, -32768, 32767).astype("<i2")
    return Narration(scene_id=scene_id, pcm=pcm.tobytes(), sample_rate=SAMPLE_RATE, voice="synthetic", words=timings)


def build_inputs(frames: int, resolution: int = 720) -> Inputs:
    """A body scene lasting ``frames`` frames at 30 fps, ``resolution`` high, with its narration and picture."""
    options = RenderOptions(resolution=resolution)
    if resolution >= 1080:
        from flows.profiles import BUILTIN_PROFILES, PROFILE_FIELDS

        encoder = {k: v for k, v in BUILTIN_PROFILES["1080p"].render.items() if k in PROFILE_FIELDS}
        options = options.model_copy(update=encoder)
    # Longest narration that still fits: scene_frames adds LEAD_S + TAIL_S and rounds up to a frame.
    narration_s = frames / options.fps - LEAD_S - TAIL_S - 0.01
    if scene_frames(narration_s, options.fps) != frames:
        raise SystemExit(f"cannot make a {frames}-frame scene at {options.fps} fps")
    words = NARRATION if narration_s > 5 else " ".join(NARRATION.split()[:7]) + "."
    scene = Scene(id="bench", kind="body", narration=words, caption=CAPTION, image="synthetic://photo.jpg",
                  hint_s=narration_s)
    narration = synthetic_narration(scene.id, narration_s, words)
    data = synthetic_photo(*PHOTO_SIZE)
    picture = Picture(url="synthetic://photo.jpg", data=data, width=PHOTO_SIZE[0], height=PHOTO_SIZE[1])
    pcm = scene_pcm(narration, frames, options.fps)
    return Inputs(scene, narration, options, picture, picture.to_rgb(), frames, pcm)


# --------------------------------------------------------------------------- contenders


def run_pagereel(inputs: Inputs) -> bytes:
    segment = render_scene(inputs.scene, inputs.narration, inputs.options, inputs.picture, None,
                           SceneContext(index=0, total=1))
    if segment.frames != inputs.frames:
        raise SystemExit(f"render_scene made {segment.frames} frames, expected {inputs.frames}")
    return segment.mp4


def build_moviepy_clip(inputs: Inputs):
    """The scene as a MoviePy user would write it, with the same motion, text, bar and sound."""
    from moviepy import AudioArrayClip, ColorClip, CompositeVideoClip, ImageClip, TextClip, vfx

    width, height = inputs.options.size
    fps = inputs.options.fps
    duration = inputs.frames / fps
    palette = PALETTES["midnight"]
    photo = inputs.photo_rgb
    img_h, img_w = photo.shape[:2]
    # render_scene dims a body scene's picture to 80% once; so does this.
    photo = (photo.astype(np.uint16) * 204 >> 8).astype(np.uint8)

    def u(t: float) -> float:
        return min(1.0, max(0.0, t * fps / max(1, inputs.frames - 1)))

    def window(t: float) -> tuple[float, float, float]:
        x0, y0, win_w, _ = ken_burns_window(img_w, img_h, width, height, u(t), zoom_from=1.0, zoom_to=1.12,
                                            pan=(0.06, 0.03))
        return x0, y0, width / win_w

    def size_at(t: float) -> tuple[int, int]:
        _, _, s = window(t)
        return math.ceil(img_w * s), math.ceil(img_h * s)

    def position_at(t: float) -> tuple[int, int]:
        x0, y0, s = window(t)
        return -math.floor(x0 * s), -math.floor(y0 * s)

    backdrop = ImageClip(photo, duration=duration).resized(size_at).with_position(position_at)

    unit = min(height, int(width * 1.25))
    caption = (
        TextClip(text="\n".join(textwrap.wrap(CAPTION, 47)[:2]), font=None, font_size=int(unit * 0.05),
                 color=palette.text, bg_color=palette.panel, margin=(18, 18), text_align="left", duration=duration)
        .with_position((int(unit * 0.05), int(unit * 0.05)))
        .with_effects([vfx.CrossFadeIn(0.5)])
    )
    subtitles = []
    for cue in subtitle_cues(inputs.narration.words, inputs.narration.duration_s):
        clip = TextClip(text="\n".join(textwrap.wrap(cue.text, 42)), font=None, font_size=30, color="white",
                        bg_color=(0, 0, 0, 170), margin=(10, 10), text_align="center",
                        duration=cue.end_s - cue.start_s)
        subtitles.append(clip.with_start(LEAD_S + cue.start_s)
                         .with_position(("center", height - clip.h - int(height * 0.06))))
    bar_h = max(4, height // 120)
    progress = (ColorClip((width, bar_h), color=palette.accent, duration=duration).with_opacity(230 / 255)
                .with_position(lambda t: (int(width * u(t)) - width, height - bar_h)))

    # Stereo: MoviePy 2.2's mono path writes each sample twice (the audio lasts twice as long).
    voice = inputs.pcm.astype(np.float32) / 32768.0
    audio = AudioArrayClip(np.stack([voice, voice], axis=1), fps=SAMPLE_RATE)
    video = CompositeVideoClip([backdrop, caption, *subtitles, progress], size=(width, height))
    return video.with_duration(duration).with_audio(audio)


def run_moviepy(inputs: Inputs, folder: Path) -> bytes:
    path = folder / "moviepy.mp4"
    clip = build_moviepy_clip(inputs)
    try:
        clip.write_videofile(
            str(path), fps=inputs.options.fps, codec="libx264", preset=inputs.options.preset, audio_codec="aac",
            audio_fps=SAMPLE_RATE, threads=THREADS, ffmpeg_params=["-crf", str(inputs.options.crf), "-bf", "0"],
            temp_audiofile_path=str(folder), logger=None,
        )
    finally:
        clip.close()
    data = path.read_bytes()
    path.unlink()
    return data


BENCH_PYTHON = _HERE.parent / ".venv-bench" / "bin" / "python"


def moviepy_version() -> str | None:
    try:
        return metadata.version("moviepy")
    except metadata.PackageNotFoundError:
        return None


def moviepy_once(frames: int, out_path: Path, resolution: int = 720) -> dict:
    """Child side: build the same inputs, time one MoviePy render, write its MP4 to ``out_path``."""
    import imageio_ffmpeg

    inputs = build_inputs(frames, resolution)
    runs = Runs([], [])
    with tempfile.TemporaryDirectory(prefix="pagereel-bench-moviepy-") as tmp:
        timed(lambda: run_moviepy(inputs, Path(tmp)), runs)
    out_path.write_bytes(runs.output)
    return {"wall": runs.wall[0], "cpu": runs.cpu[0], "moviepy": moviepy_version(),
            "ffmpeg": imageio_ffmpeg.get_ffmpeg_version()}


def moviepy_in_child(python: Path, frames: int, folder: Path, runs: Runs, resolution: int = 720) -> dict:
    """Run :func:`moviepy_once` in ``python`` (the benchmark environment) and add its timing to ``runs``."""
    import json
    import subprocess

    out = folder / "moviepy-child.mp4"
    done = subprocess.run([str(python), __file__, "--moviepy-once", str(out), "--frames", str(frames),
                           "--resolution", str(resolution)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"the MoviePy contender failed in {python} (exit {done.returncode})")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    runs.wall.append(report["wall"])
    runs.cpu.append(report["cpu"])
    runs.output = out.read_bytes()
    out.unlink()
    return report


def render_and_capture(inputs: Inputs) -> tuple[bytes, list[av.VideoFrame]]:
    """Render the scene once, keeping a copy of each yuv420p frame render_scene hands its encoder.

    The copies are the exact frames pagereel encodes (decoding its MP4 instead would give x264
    smoother, cheaper frames and a floor that is too low). If render_scene no longer fills its
    frames through ``fill_av_frame``, the frames are decoded from its output instead.
    """
    import tasks.render as render_module

    captured: list[av.VideoFrame] = []
    fill = render_module.fill_av_frame

    def fill_and_keep(planes, frame: av.VideoFrame) -> av.VideoFrame:
        out = fill(planes, frame)
        captured.append(fresh_frame(out))
        return out

    render_module.fill_av_frame = fill_and_keep
    try:
        mp4 = run_pagereel(inputs)
    finally:
        render_module.fill_av_frame = fill
    if len(captured) != inputs.frames:
        print("note: render_scene's frames could not be captured; encode-only uses its decoded output",
              file=sys.stderr)
        with av.open(io.BytesIO(mp4)) as container:
            captured = [fresh_frame(f) for f in container.decode(video=0)]
    return mp4, captured


def fresh_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """A yuv420p copy of ``frame`` with no picture type or timestamp carried over (x264 would obey a forced type)."""
    return tag_bt709(av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p"))


def run_encode_only(frames: list[av.VideoFrame], inputs: Inputs) -> bytes:
    """Encode ready frames and the scene's audio with render_scene's encoder settings."""
    options = inputs.options
    codec_options = {"preset": options.preset, "crf": str(options.crf), "bf": "0"}
    if options.keyframe_interval is not None:  # as render_scene sets it (the 1080p profile does)
        codec_options["g"] = str(options.keyframe_interval)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=options.fps, options=codec_options)
        video.width, video.height = options.size
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = Fraction(1, options.fps)
        tag_bt709(video.codec_context)
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for k, frame in enumerate(frames):
            frame.pts = k
            frame.time_base = Fraction(1, options.fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for start in range(0, len(inputs.pcm), 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(inputs.pcm[start : start + 1024]).reshape(1, -1),
                                            format="s16", layout="mono")
            af.sample_rate = SAMPLE_RATE
            af.pts = start
            af.time_base = Fraction(1, SAMPLE_RATE)
            out.mux(audio.encode(af))
        out.mux(audio.encode(None))
    return buf.getvalue()


# --------------------------------------------------------------------------- checking


def probe(mp4: bytes) -> Probe:
    with av.open(io.BytesIO(mp4)) as container:
        vs = container.streams.video[0]
        codec, pix_fmt, width, height = vs.codec_context.name, vs.codec_context.pix_fmt, vs.width, vs.height
        vs_duration = float(vs.duration * vs.time_base) if vs.duration else 0.0
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_codec = audio.codec_context.name if audio else None
        audio_s = float(audio.duration * audio.time_base) if audio is not None and audio.duration else 0.0
        frames = sum(1 for _ in container.decode(video=0))
    return Probe(codec, pix_fmt, width, height, frames, vs_duration, audio_codec, audio_s, len(mp4))


def problems(p: Probe, inputs: Inputs) -> list[str]:
    width, height = inputs.options.size
    expected_s = inputs.frames / inputs.options.fps
    found = []
    if p.video_codec != "h264" or p.pix_fmt != "yuv420p":
        found.append(f"video is {p.video_codec}/{p.pix_fmt}, not h264/yuv420p")
    if (p.width, p.height) != (width, height):
        found.append(f"video is {p.width}x{p.height}, not {width}x{height}")
    if abs(p.frames - inputs.frames) > 1:
        found.append(f"{p.frames} frames, not {inputs.frames}")
    if abs(p.duration_s - expected_s) > 0.1:
        found.append(f"video lasts {p.duration_s:.3f} s, not {expected_s:.3f} s")
    if p.audio_codec != "aac" or abs(p.audio_s - expected_s) > 0.1:
        found.append(f"audio is {p.audio_codec} lasting {p.audio_s:.3f} s, not aac lasting {expected_s:.3f} s")
    return found


def middle_frame(mp4: bytes, index: int) -> np.ndarray:
    with av.open(io.BytesIO(mp4)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k == index:
                return frame.to_ndarray(format="rgb24")
    raise ValueError(f"no frame {index}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


# --------------------------------------------------------------------------- timing


def threading_layer() -> str:
    """Numba's threading layer, known once a parallel kernel has run; OMP_WAIT_POLICY matters for "omp"."""
    try:
        import numba

        layer = numba.threading_layer()
    except (ImportError, ValueError):
        return "none"
    policy = os.environ.get("OMP_WAIT_POLICY")
    return f"{layer} (OMP_WAIT_POLICY={policy})" if layer == "omp" and policy else layer


@dataclass
class Runs:
    wall: list[float]
    cpu: list[float]
    output: bytes = b""


def timed(fn: Callable[[], bytes], runs: Runs) -> None:
    gc.collect()
    before = os.times()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    runs.output = fn()
    wall = time.perf_counter() - t0
    after = os.times()
    children = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    runs.wall.append(wall)
    runs.cpu.append(time.process_time() - cpu0 + children)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three (default 3)")
    parser.add_argument("--quick", action="store_true", help="a 3 s scene (90 frames) instead of 10 s (300)")
    parser.add_argument("--skip-moviepy", action="store_true",
                        help="time pagereel against the encode-only floor only (MoviePy's environment not needed)")
    parser.add_argument("--moviepy-once", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=int, default=300, help=argparse.SUPPRESS)
    parser.add_argument("--resolution", default="720", choices=("720", "1080", "both"),
                        help="720p (default), 1080p, or both tables in one run")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.moviepy_once:
        import json

        print(json.dumps(moviepy_once(args.frames, args.moviepy_once, int(args.resolution))))
        return 0
    child_python = None if moviepy_version() else BENCH_PYTHON
    if not args.skip_moviepy and child_python is not None and not child_python.exists():
        print(f"MoviePy is missing: run `make bench` (it creates {child_python.parent.parent.name}) or "
              "pip install -e '.[bench]' into an environment of its own", file=sys.stderr)
        return 2

    resolutions = (720, 1080) if args.resolution == "both" else (int(args.resolution),)
    failed = 0
    for resolution in resolutions:
        failed |= bench(args, child_python, build_inputs(90 if args.quick else 300, resolution))
        print()
    return failed


def bench(args: argparse.Namespace, child_python: Path | None, inputs: Inputs) -> int:
    """Time the three contenders on ``inputs`` and print their table and ratios; 1 if an output is invalid."""
    width, height = inputs.options.size
    print(f"scene: {inputs.frames} frames, {width}x{height} @ {inputs.options.fps} fps, "
          f"x264 {inputs.options.preset} crf {inputs.options.crf}, threads={THREADS} (auto); "
          f"narration {inputs.narration.duration_s:.2f} s, {len(inputs.narration.words)} words")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"kernels={kernel_backend()}, PyAV {av.__version__} (FFmpeg {av.library_versions['libavcodec']}); "
          f"MoviePy {'skipped' if args.skip_moviepy else 'in ' + str(child_python) if child_python else 'in-process'}")

    # Warm-up: Numba loads (or compiles) its kernels and fonts are laid out; its frames feed encode-only.
    t0 = time.perf_counter()
    run_pagereel(inputs)
    print(f"warm-up pagereel render: {time.perf_counter() - t0:.2f} s; numba threading layer: {threading_layer()}")
    load = busy_cpus()
    if load is not None:
        # The machine may be shared: other work slows all three, pagereel's parallel kernels the most.
        print(f"load before the rounds: {load:.1f} of {os.cpu_count()} CPUs busy with other work")
    _, frames = render_and_capture(inputs)
    if len(frames) != inputs.frames:
        raise SystemExit(f"decoded {len(frames)} frames from the warm-up, expected {inputs.frames}")

    results = _rounds(args, inputs, frames, child_python)
    return 1 if _report(results, inputs) else 0


def _rounds(args: argparse.Namespace, inputs: Any, frames: list[Any], child_python: Path | None) -> dict[str, Runs]:
    """Interleaved rounds of pagereel, MoviePy (unless skipped) and the encode-only floor."""
    names = ("pagereel", "encode-only") if args.skip_moviepy else ("pagereel", "moviepy", "encode-only")
    results = {name: Runs([], []) for name in names}
    with tempfile.TemporaryDirectory(prefix="pagereel-bench-") as tmp:
        for r in range(args.rounds):
            timed(lambda: run_pagereel(inputs), results["pagereel"])
            if args.skip_moviepy:
                pass  # pagereel against the floor only
            elif child_python is None:
                timed(lambda: run_moviepy(inputs, Path(tmp)), results["moviepy"])
            else:
                peer = moviepy_in_child(child_python, inputs.frames, Path(tmp), results["moviepy"],
                                        inputs.options.resolution)
                if r == 0:
                    print(f"MoviePy {peer['moviepy']} (ffmpeg {peer['ffmpeg']})")
            timed(lambda: run_encode_only(frames, inputs), results["encode-only"])
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {v.wall[-1]:.2f} s" for n, v in results.items()),
                  flush=True)

    return results


def _report(results: dict[str, Runs], inputs: Any) -> bool:
    """Print the table and the ratios; True when an output is invalid."""
    failed = False
    probes = {}
    for name, runs in results.items():
        probes[name] = p = probe(runs.output)
        for issue in problems(p, inputs):
            print(f"INVALID {name} output: {issue}", file=sys.stderr)
            failed = True

    mid = inputs.frames // 2
    reference = middle_frame(results["pagereel"].output, mid)
    print()
    print(f"{'':12} {'best s':>8} {'median s':>9} {'cpu s':>7} {'fps':>6} {'MB':>6} {'frames':>6} {'dur s':>6} "
          f"{'PSNR dB':>8}")
    for name, runs in results.items():
        p = probes[name]
        similarity = psnr(reference, middle_frame(runs.output, mid))
        print(f"{name:12} {min(runs.wall):8.2f} {statistics.median(runs.wall):9.2f} {statistics.median(runs.cpu):7.2f} "
              f"{inputs.frames / min(runs.wall):6.1f} {p.size_bytes / 1e6:6.2f} {p.frames:6d} {p.duration_s:6.2f} "
              f"{similarity:8.1f}")
    print("(fps: frames per wall second, best run. PSNR: middle frame against pagereel's; encode-only's is inf when\n"
          " its video is bit-identical to pagereel's (same frames, same settings); MoviePy's is low from its own text\n"
          " layout and untagged BT.601 colour, not from different content. All h264 yuv420p + aac.)")

    best = {name: min(runs.wall) for name, runs in results.items()}
    vs_floor = best["pagereel"] / best["encode-only"]
    print()
    if "moviepy" in best:
        vs_moviepy = best["moviepy"] / best["pagereel"]
        print(f"moviepy / pagereel    = {vs_moviepy:5.2f}x  (target >= {TARGET_RATIO_MOVIEPY:g}x: "
              f"{'met' if vs_moviepy >= TARGET_RATIO_MOVIEPY else 'MISSED'})")
    print(f"pagereel / encode-only = {vs_floor:5.2f}x  (target <= {TARGET_RATIO_FLOOR:g}x: "
          f"{'met' if vs_floor <= TARGET_RATIO_FLOOR else 'MISSED'}; 1.0 is the floor)")
    cpu = {name: statistics.median(runs.cpu) for name, runs in results.items()}
    print(f"pagereel / encode-only CPU seconds = {cpu['pagereel'] / cpu['encode-only']:5.2f}x  (what the wall ratio "
          "tends to on a machine whose other cores are busy)")
    than_moviepy = f"{vs_moviepy:.1f}x faster than MoviePy and " if "moviepy" in best else ""
    print(f"summary: pagereel renders the {inputs.frames / inputs.options.fps:g} s scene in {best['pagereel']:.2f} s, "
          f"{than_moviepy}{vs_floor:.2f}x the encode-only floor")
    return failed


if __name__ == "__main__":
    sys.exit(main())
