"""Each narration engine's real-time factor (synthesis seconds / audio seconds), side by side.

    python benchmarks/narration.py [--repeat 3] [--http-url http://127.0.0.1:8880/v1]

Rows: espeak-ng and every installed Piper voice (and the ``http`` engine when ``--http-url`` is
given), each on one thread and on two. For espeak-ng "two threads" is two narrations at once
(the library is serialized, so it should not speed up); for Piper it is onnxruntime's intra-op
threads (a fresh session each). Best of ``--repeat`` runs of the same scene-sized text, after a
warm-up call, so loading a model is not counted. A real-time factor under 1 is faster than
real time; the issue's goal for Piper is 0.1 or less on one thread.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--http-url", default=None, help="An OpenAI-compatible speech API to include.")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
