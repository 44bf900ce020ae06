"""Assembling one video (``tasks.assemble.assemble_video``): this checkout against another, side by side.

    python benchmarks/assemble.py [--against main] [--rounds 5] [--resolution 720] [--music]

The inputs are made once, before any clock, as the flow makes them: ``examples/article.html``
extracted and cut into a storyboard, each scene narrated (the default voice, 48 kHz, -16 LUFS, peaks
under -1 dBFS) and rendered (themed backdrops: the pictures are left out). ``--music`` adds a
synthetic 20 s stereo AAC bed, looped and ducked under the voice.

Each side then assembles them with the flow's settings in a child process of its own: this checkout,
and ``--against`` (a folder holding another checkout, or a git revision of this repository, unpacked
with ``git archive``), both under this checkout's Python environment. After one untimed call each
(imports, first-call work), the rounds alternate between the sides so both see the same load. Each
call's CPU seconds (the child's, all threads) and wall seconds are printed, then the medians and
their ratio. The four files each side writes must be byte-identical, or the script exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
# Run as ``python benchmarks/assemble.py``, this file's folder leads sys.path and benchmarks/kernels.py
# would shadow the ``kernels`` package; the repository root goes first instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]
FILES = ("video.mp4", "video.srt", "video.vtt", "thumbnail.png")


# --------------------------------------------------------------------------- inputs (this checkout's code)


def make_inputs(folder: Path, resolution: int, music: bool) -> Path:
    """Narrate and render ``examples/article.html`` as the flow would; write what assembly reads to ``folder``."""
    from tasks.extract import extract_article
    from tasks.models import RenderOptions
    from tasks.narrate import narrate
    from tasks.render import SceneContext, render_scene
    from tasks.suggest import suggest_storyboard
    from tasks.voices import voice_for_language

    page = ROOT / "examples" / "article.html"
    board = suggest_storyboard(extract_article(page.read_text(encoding="utf-8"), page.as_uri()))
    voice = voice_for_language(board.lang)
    options = RenderOptions(resolution=resolution)
    narrations, segments = [], []
    for i, scene in enumerate(board.scenes):
        narration = narrate(scene.narration, scene_id=scene.id, voice=voice, rate_wpm=options.speech_rate_wpm,
                            sample_rate=48000, loudness_lufs=options.loudness_lufs, peak_dbfs=options.peak_dbfs)
        context = SceneContext(index=i, total=len(board.scenes), theme=board.theme or options.theme,
                               previous_kind=board.scenes[i - 1].kind if i else None)
        segments.append(render_scene(scene, narration, options, None, None, context))
        narrations.append(narration)
    settings = {"loudness_lufs": options.loudness_lufs, "peak_dbfs": options.peak_dbfs,
                "music": str(_music_bed(folder / "bed.m4a")) if music else None}
    print(f"inputs: {len(segments)} scenes, {sum(s.frames for s in segments) / options.fps:.1f} s of "
          f"{segments[0].width}x{segments[0].height} video{', music' if music else ''}", flush=True)
    path = folder / "inputs.json"
    path.write_text(json.dumps({
        "storyboard": board.model_dump(mode="json"),
        "segments": [s.model_dump(mode="json") for s in segments],
        "narrations": [n.model_dump(mode="json") for n in narrations],
        "settings": settings,
    }))
    return path


def _music_bed(path: Path) -> Path:
    """20 s of two slowly beating tones, stereo AAC at 44.1 kHz: a bed to resample, loop and duck."""
    import av
    import numpy as np

    rate = 44100
    t = np.arange(20 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 331 * t) * np.sin(np.pi * t)) * 20000
    pcm = np.stack([tone, 0.8 * tone]).astype(np.int16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate, layout="stereo")
        for at in range(0, pcm.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, at : at + 1024]).reshape(1, -1),
                                               format="s16", layout="stereo")
            frame.sample_rate, frame.pts = rate, at
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def other_checkout(against: str, work: Path) -> Path:
    """``against`` as a folder: itself when it is one, else that revision of this repository unpacked."""
    if Path(against).is_dir():
        return Path(against).resolve()
    folder = work / "against"
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", against], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


# --------------------------------------------------------------------------- a side (runs in a child)


def serve(root: Path, inputs: Path) -> None:
    """Assemble ``inputs`` with the checkout at ``root`` once per line read from stdin; one JSON line per call."""
    sys.path[:] = [str(root)] + [p for p in sys.path if Path(p or ".").resolve() not in (_HERE, ROOT)]
    import tasks.assemble
    from tasks.models import Narration, Segment, Storyboard

    if not Path(tasks.assemble.__file__).resolve().is_relative_to(root):
        raise SystemExit(f"imported {tasks.assemble.__file__}, not the checkout at {root}")
    given = json.loads(inputs.read_text())
    board = Storyboard.model_validate(given["storyboard"])
    segments = [Segment.model_validate(s) for s in given["segments"]]
    narrations = [Narration.model_validate(n) for n in given["narrations"]]
    for _ in sys.stdin:
        with tempfile.TemporaryDirectory(prefix="pagereel-assemble-") as out:
            cpu, wall = time.process_time(), time.perf_counter()
            tasks.assemble.assemble_video(board, segments, narrations, Path(out), **given["settings"])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            digests = {name: hashlib.sha256((Path(out) / name).read_bytes()).hexdigest() for name in FILES}
        print(json.dumps({"cpu_s": cpu, "wall_s": wall, "files": digests}), flush=True)


class Side:
    """A child process assembling with one checkout, one call per :meth:`call`."""

    def __init__(self, label: str, root: Path, inputs: Path) -> None:
        self.label, self.root = label, root
        self.calls: list[dict] = []
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(root), str(inputs)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def call(self) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.label} side failed (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


# --------------------------------------------------------------------------- main


def compare(sides: list[Side], rounds: int) -> bool:
    """Warm each side up, alternate ``rounds`` timed calls, print them; True when every side wrote the same bytes."""
    firsts = {side.label: side.call() for side in sides}  # untimed: imports and first-call work
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            side.calls.append(side.call())
            c = side.calls[-1]
            print(f"round {r + 1}  {side.label:<8} cpu {c['cpu_s']:6.3f} s   wall {c['wall_s']:6.3f} s   "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\n{'side':<8} {'cpu s (median)':>15} {'wall s (median)':>16}   checkout")
    for side in sides:
        cpu = statistics.median(c["cpu_s"] for c in side.calls)
        wall = statistics.median(c["wall_s"] for c in side.calls)
        print(f"{side.label:<8} {cpu:15.3f} {wall:16.3f}   {side.root}")
    if len(sides) == 2:
        (this, other) = ([statistics.median(c[k] for c in s.calls) for k in ("cpu_s", "wall_s")] for s in sides)
        paired = statistics.median(a["cpu_s"] / b["cpu_s"] for a, b in zip(*(s.calls for s in sides), strict=True))
        print(f"this / against: CPU {this[0] / other[0]:.2f}x (median of the rounds' own ratios {paired:.2f}x), "
              f"wall {this[1] / other[1]:.2f}x")
    files = {json.dumps(c["files"], sort_keys=True) for side in sides for c in [firsts[side.label], *side.calls]}
    print("files: byte-identical across sides and calls" if len(files) == 1 else "files: DIFFER between calls or sides")
    return len(files) == 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="another checkout's folder, or a git revision (main, HEAD~1)")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls per side, alternating")
    parser.add_argument("--resolution", type=int, default=720, help="short side of the rendered scenes")
    parser.add_argument("--music", action="store_true", help="mix a synthetic music bed under the voice")
    parser.add_argument("--serve", nargs=2, metavar=("ROOT", "INPUTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]).resolve(), Path(args.serve[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="pagereel-assemble-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        inputs = make_inputs(work, args.resolution, args.music)
        roots = {"this": ROOT, **({"against": other_checkout(args.against, work)} if args.against else {})}
        print(f"inputs made in {time.perf_counter() - t0:.1f} s (not timed below); {os.cpu_count()} CPUs, "
              f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        sides = [Side(label, root, inputs) for label, root in roots.items()]
        try:
            same = compare(sides, args.rounds)
        finally:
            for side in sides:
                side.close()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
