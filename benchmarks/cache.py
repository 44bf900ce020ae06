"""What the cache saves: a cold run, the same run again, and a run after editing one scene.

Run from the repository root: ``python benchmarks/cache.py [--url URL] [--duration S]``.
A Prefect server is started first (and stopped at the end) so its start-up is not timed.
Targets: the warm run under 1/4 of the cold run; a one-scene edit under 1/3 of it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# This folder holds kernels.py, which would hide the kernels package: the repository root goes first.
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.harness import ROOT, prefect_api  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=str(ROOT / "examples" / "article.html"))
    parser.add_argument("--duration", type=float, default=60.0, help="target video length in seconds")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pagereel-cache-bench-"))
    with prefect_api(work / "prefect") as api:
        os.environ.update(
            PREFECT_API_URL=api,
            PREFECT_HOME=str(work / "prefect"),
            PAGEREEL_CACHE__DIR=str(work / "cache"),
            PAGEREEL_OUT_DIR=str(work / "out"),
            PAGEREEL_STORYBOARD__TARGET_DURATION_S=str(args.duration),
        )
        from flows.video_flow import run_video

        def timed(label: str, **kwargs) -> tuple[float, object]:
            t0 = time.perf_counter()
            state = run_video(args.url, workflow_id="bench", **kwargs)
            seconds = time.perf_counter() - t0
            m = state.metrics
            print(f"{label:<16} {seconds:7.2f} s   hits {m.cache_hits:3d}   misses {m.cache_misses:3d}   "
                  f"video {state.duration_s:.1f} s", flush=True)
            slowest = sorted(m.stage_seconds.items(), key=lambda kv: -kv[1])[:4]
            print("                 " + ", ".join(f"{k} {v:.2f} s" for k, v in slowest), flush=True)
            return seconds, state

        try:
            cold, state = timed("cold")
            warm, _ = timed("warm (same)")
            scene = state.storyboard.scenes[2]
            edit = {"scenes": {scene.id: {"narration": scene.narration + " That is worth remembering."}}}
            edited, _ = timed("one scene edited", user_edits=edit)
        finally:
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)  # send the last run's logs before the server goes away
    print()
    print(f"warm / cold   = {warm / cold:.3f}  (target < 0.25: {'met' if warm / cold < 0.25 else 'MISSED'})")
    print(f"edit / cold   = {edited / cold:.3f}  (target < 0.33: {'met' if edited / cold < 1 / 3 else 'MISSED'})")


if __name__ == "__main__":
    main()
