"""Each narration engine's real-time factor (synthesis seconds / audio seconds), side by side.

    python benchmarks/narration.py [--repeat 3] [--http-url http://127.0.0.1:8880/v1] [--e2e [--seconds 60]]

Rows: espeak-ng and every installed Piper voice (and the ``http`` engine when ``--http-url`` is
given), each on one thread and on two. For espeak-ng "two threads" is two narrations at once
(the library is serialized, so it should not speed up); for Piper it is onnxruntime's intra-op
threads (a fresh session each). Best of ``--repeat`` runs of the same scene-sized text, after a
warm-up call, so loading a model is not counted. A real-time factor under 1 is faster than
real time; the goal for Piper is 0.1 or less on one thread.

``--e2e`` then makes a whole video of ``examples/article.html`` (``--seconds`` long, 720p, thread
runner, cold cache, a Prefect API up) with each engine, each in a fresh child process, and prints
its wall time against the video's length side by side (goal with Piper: 0.5x or less).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.harness import prefect_api, run_env, serve  # noqa: E402
from tasks.models import SpeechOptions  # noqa: E402
from tasks.narrate import narrate  # noqa: E402
from tasks.voices import ENGINES, narrator  # noqa: E402

TEXT = (
    "Mountain goats climb the steep cliffs of the northern valley every spring. Researchers have "
    "followed their routes since 1990, counting 42 herds and more than 1,200 animals. Dr. Ines Ortega "
    "says the herds move earlier each year, and the team wants to know why."
)


def _rtf(voice: str, threads: int, repeat: int, speech: SpeechOptions | None) -> tuple[float, float]:
    """(best real-time factor, audio seconds) of ``TEXT`` spoken by ``voice``."""
    def once() -> tuple[float, float]:
        started = time.perf_counter()
        if threads == 1 or voice.startswith("piper:"):
            n = narrate(TEXT, scene_id="b", voice=voice, loudness_lufs=None, speech=speech)
            return time.perf_counter() - started, n.duration_s
        with ThreadPoolExecutor(threads) as pool:
            said = list(pool.map(lambda _: narrate(TEXT, scene_id="b", voice=voice, loudness_lufs=None,
                                                   speech=speech), range(threads)))
        return time.perf_counter() - started, sum(n.duration_s for n in said)

    os.environ["PAGEREEL_PIPER_THREADS"] = str(threads)
    once()  # warm-up: load the library or the model
    best = min((once() for _ in range(repeat)), key=lambda r: r[0] / r[1])
    return best[0] / best[1], best[1]


def _e2e(voices: list[str], seconds: float, resolution: int) -> None:
    examples = _HERE.parent / "examples"
    print(f"\nend to end: examples/article.html, {seconds:g} s at {resolution}p, thread runner, cold cache")
    print(f"{'voice':32} {'video s':>8} {'wall s':>8} {'wall / video':>13}")
    with tempfile.TemporaryDirectory(prefix="pagereel-narration-") as tmp, prefect_api(Path(tmp) / "prefect") as api, \
            serve(examples) as base:
        for k, voice in enumerate(voices):
            cmd = [sys.executable, __file__, "--e2e-child", f"{base}/article.html", "--voice", voice,
                   "--seconds", str(seconds), "--resolution", str(resolution)]
            done = subprocess.run(cmd, env=run_env(Path(tmp) / f"run-{k}", api), capture_output=True, text=True)
            if done.returncode != 0:
                sys.stderr.write(done.stderr[-3000:])
                raise SystemExit(f"the {voice} run failed (exit {done.returncode})")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{voice:32} {r['video_s']:8.1f} {r['wall_s']:8.1f} {r['wall_s'] / r['video_s']:12.2f}x", flush=True)


def _e2e_child(url: str, voice: str, seconds: float, resolution: int) -> None:
    from benchmarks.e2e import child

    print(json.dumps(child(url, seconds, 12, {"render": {"voice": voice, "resolution": resolution}})))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--http-url", default=None, help="An OpenAI-compatible speech API to include.")
    parser.add_argument("--e2e", action="store_true", help="Also time a whole video per engine.")
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of the --e2e videos.")
    parser.add_argument("--resolution", type=int, default=720, help="Short side of the --e2e videos.")
    parser.add_argument("--e2e-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--voice", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.e2e_child:
        _e2e_child(args.e2e_child, args.voice, args.seconds, args.resolution)
        return
    voices = ["espeak:en-us"]
    try:
        voices += [f"piper:{v}" for v in narrator("piper").voices()]
    except Exception as exc:  # noqa: BLE001 - the piper extra is optional
        print(f"piper: left out ({exc})")
    speech = SpeechOptions(base_url=args.http_url) if args.http_url else None
    if speech is not None and "http" in ENGINES:
        voices.append("http:alloy")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; text of {len(TEXT.split())} words")
    print(f"{'voice':32} {'audio s':>8} {'RTF 1 thread':>13} {'RTF 2 threads':>14} {'2 vs 1':>7}")
    for voice in voices:
        one, seconds = _rtf(voice, 1, args.repeat, speech)
        two, _ = _rtf(voice, 2, args.repeat, speech)
        print(f"{voice:32} {seconds:8.2f} {one:13.3f} {two:14.3f} {one / two:6.2f}x")
    if args.e2e:
        _e2e([v for v in voices if not v.startswith("http:")], args.seconds, args.resolution)


if __name__ == "__main__":
    main()
