"""A whole video from a URL, end to end: wall seconds, the ratio to the video's length, and peak memory.

    python benchmarks/e2e.py [--quick]
    python benchmarks/e2e.py --memory [--resolution 720] [--lengths 600,3600]
    python benchmarks/e2e.py --hd

A Prefect server is started and the sample pages are served on 127.0.0.1 before any clock starts.
Each video is made by a fresh child process (thread runner, an empty cache, so the work is cold)
that times ``run_video`` alone and reports its own peak resident memory: a 60 s video of a sample
article, then a 10-minute one of the longest sample (``storyboard.target_duration_s=600``, up to 60
scenes). Rendering streams frame by frame, so memory should stay flat as the video grows.
Targets: the 60 s video in at most half its length; under 1 GiB peak for the 10-minute one.

``--hd`` makes the 60 s video twice, at 720p and at 1080p (1920x1080, with the ``1080p`` profile's
encoder settings), and prints their ratios to the video's length side by side. Target: 1080p in at
most 0.4x its length.

``--memory`` makes a 10-minute and a 60-minute video of one generated article (long enough for an
hour of narration; written here, not taken from any site) at 720p and prints their peak resident
memory side by side. Target: the 60-minute one under 1.2x the 10-minute one (segments, narration
PCM and the sound track are spooled to disk, and a scene's bytes are blobs beside its small cached
record, so nothing held grows with the video's length or its scenes').
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.harness import LONG_PAGE, PAGES_DIR, busy_cpus, peak_rss_mib, prefect_api, run_env, serve  # noqa: E402

TARGET_RATIO = 0.5
TARGET_RATIO_1080P = 0.4
TARGET_RSS_MIB = 1024.0
#: (target seconds, most scenes) of each video: the full run, and the smoke run.
LENGTHS = [(60.0, 12), (600.0, 60)]
QUICK_LENGTHS = [(15.0, 4), (30.0, 6)]
TARGET_RSS_GROWTH = 1.2
MEMORY_LENGTHS = (600.0, 3600.0)
_WORDS = ("harbour light tide keeper lamp signal vessel channel night fog bell beacon chart current shore "
          "rock reef ferry crew captain anchor rope deck lens glass oil wick storm wind wave pier dock island "
          "bay coast north south river estuary mooring buoy horn watch log season winter summer").split()


def long_article(words: int, seed: int = 0) -> str:
    """A generated article of about ``words`` words in paragraphs of a dozen sentences."""
    rng = random.Random(seed)
    paragraphs, count = [], 0
    while count < words:
        sentences = []
        for _ in range(12):
            n = rng.randint(8, 16)
            sentences.append(" ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + ".")
            count += n
        paragraphs.append("<p>" + " ".join(sentences) + "</p>")
    return ("<!doctype html><html lang='en'><head><title>A long night at the harbour</title></head><body>"
            "<article><h1>A long night at the harbour</h1>" + "".join(paragraphs) + "</article></body></html>")


def child(url: str, duration: float, max_scenes: int, overrides: dict | None = None) -> dict:
    """Make one video in this process and return what was measured (``overrides``: more settings)."""
    from flows.video_flow import run_video
    from tasks.models import Narration, RenderOptions, Scene
    from tasks.render import render_scene

    # Loading the compiled kernels from Numba's cache is start-up, not rendering: done before the clock.
    t0 = time.perf_counter()
    tiny = RenderOptions(width=64, height=36, fps=5, preset="ultrafast")
    render_scene(Scene(id="w", kind="body", narration="Warm up.", caption="Warm", hint_s=1.0),
                 Narration(scene_id="w", pcm=bytes(4800), sample_rate=48000, voice="en", words=[]), tiny)
    warm_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    # A storyboard cut for an hour may run a little over it: the longest-video guard is not what is measured.
    longest = min(4 * 3600.0, max(3600.0, 1.5 * duration))
    settings = {"storyboard": {"target_duration_s": duration, "max_scenes": max_scenes, "max_duration_s": longest},
                **(overrides or {})}
    state = run_video(url, workflow_id=f"e2e-{int(duration)}", overrides=settings)
    wall = time.perf_counter() - t0
    if state.status != "completed" or not state.video_path or not Path(state.video_path).is_file():
        raise SystemExit(f"the run did not finish a video: status {state.status!r}")
    return {
        "wall_s": wall,
        "warm_s": warm_s,
        "video_s": state.duration_s,
        "scenes": len(state.scenes),
        "rss_mib": peak_rss_mib(),
        "size_mb": Path(state.video_path).stat().st_size / 1e6,
        "stages": state.metrics.stage_seconds,
    }


def measure(base_url: str, api_url: str, work: Path, duration: float, max_scenes: int, *, page: str = LONG_PAGE,
            resolution: int | None = None) -> dict:
    url = f"{base_url}/{page}"
    folder = work / f"video-{int(duration)}"
    cmd = [sys.executable, __file__, "--child", url, "--duration", str(duration), "--max-scenes", str(max_scenes)]
    if resolution is not None:
        cmd += ["--resolution", str(resolution)]
    done = subprocess.run(cmd, env=run_env(folder, api_url), capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the {duration:g} s run failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 s and 30 s videos instead of 60 s and 10 min")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--max-scenes", type=int, default=12, help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help="peak RSS of a 10- and a 60-minute video side by side")
    parser.add_argument("--hd", action="store_true", help="the 60 s video at 720p and at 1080p side by side")
    parser.add_argument("--resolution", type=int, default=None, help="short side in pixels (--memory: 720)")
    parser.add_argument("--lengths", default=",".join(f"{d:g}" for d in MEMORY_LENGTHS),
                        help="--memory: the two video lengths in seconds")
    args = parser.parse_args(argv)
    if args.child:
        overrides = {"render": {"resolution": args.resolution}} if args.resolution else None
        print(json.dumps(child(args.child, args.duration, args.max_scenes, overrides)))
        return 0
    if args.memory:
        lengths = tuple(float(x) for x in args.lengths.split(","))
        return memory(lengths, args.resolution or 720)
    if args.hd:
        return hd()

    lengths = QUICK_LENGTHS if args.quick else LENGTHS
    results = []
    with tempfile.TemporaryDirectory(prefix="pagereel-e2e-") as tmp:
        work = Path(tmp)
        with prefect_api(work / "prefect") as api, serve(PAGES_DIR) as base:
            print(f"page: {LONG_PAGE} served from {PAGES_DIR} on {base}; Prefect API up at {api}; thread runner; "
                  "cold cache", flush=True)
            for duration, max_scenes in lengths:
                load = busy_cpus()
                if load is not None:
                    print(f"load before the {duration:g} s run: {load:.1f} CPUs busy with other work", flush=True)
                r = measure(base, api, work, duration, max_scenes)
                results.append(r)
                slowest = sorted(r["stages"].items(), key=lambda kv: -kv[1])[:4]
                print(f"target {duration:5g} s: video {r['video_s']:7.1f} s, {r['scenes']:2d} scenes, "
                      f"wall {r['wall_s']:6.1f} s ({r['wall_s'] / r['video_s']:.2f}x its length), "
                      f"peak RSS {r['rss_mib']:6.0f} MiB, {r['size_mb']:.1f} MB (kernels loaded in {r['warm_s']:.1f} s "
                      f"before the clock)", flush=True)
                print("    stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in slowest), flush=True)

    short, long = results
    ratio = short["wall_s"] / short["video_s"]
    growth = long["rss_mib"] / short["rss_mib"]
    print()
    print(f"wall / video length ({short['video_s']:.0f} s video) = {ratio:.2f}  "
          f"(target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'MISSED'})")
    print(f"wall / video length ({long['video_s']:.0f} s video) = {long['wall_s'] / long['video_s']:.2f}")
    print(f"peak RSS {long['rss_mib']:.0f} MiB for the {long['video_s']:.0f} s video "
          f"(target < {TARGET_RSS_MIB:.0f} MiB: {'met' if long['rss_mib'] < TARGET_RSS_MIB else 'MISSED'}); "
          f"{growth:.2f}x the {short['video_s']:.0f} s video's {short['rss_mib']:.0f} MiB "
          f"for {long['video_s'] / short['video_s']:.1f}x the length")
    return 0


def hd(duration: float = 60.0, max_scenes: int = 12) -> int:
    """The same video at 720p and at 1080p, made in turn, with their ratios to its length side by side."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="pagereel-e2e-hd-") as tmp:
        work = Path(tmp)
        with prefect_api(work / "prefect") as api, serve(PAGES_DIR) as base:
            print(f"page: {LONG_PAGE} served from {PAGES_DIR} on {base}; Prefect API up at {api}; thread runner; "
                  "cold cache", flush=True)
            for resolution in (720, 1080):
                load = busy_cpus()
                r = measure(base, api, work / f"{resolution}p", duration, max_scenes, resolution=resolution)
                results[resolution] = r
                print(f"{resolution}p: video {r['video_s']:6.1f} s, {r['scenes']:2d} scenes, wall {r['wall_s']:6.1f} s "
                      f"({r['wall_s'] / r['video_s']:.2f}x its length), peak RSS {r['rss_mib']:5.0f} MiB, "
                      f"{r['size_mb']:.1f} MB" + (f"; {load:.1f} CPUs busy with other work before it"
                                                  if load is not None else ""), flush=True)
    low, high = (results[k]["wall_s"] / results[k]["video_s"] for k in (720, 1080))
    print()
    print(f"wall / video length: 720p {low:.2f}x | 1080p {high:.2f}x | 1080p costs {high / low:.2f}x 720p "
          f"(target 1080p <= {TARGET_RATIO_1080P}x: {'met' if high <= TARGET_RATIO_1080P else 'MISSED'})")
    return 0


def memory(lengths: tuple[float, ...], resolution: int) -> int:
    """Peak RSS of videos of each length (seconds) of one generated article, side by side."""
    results = []
    with tempfile.TemporaryDirectory(prefix="pagereel-e2e-memory-") as tmp:
        work = Path(tmp)
        pages = work / "pages"
        pages.mkdir()
        # An hour at 160 words a minute, with room for the ranking to choose.
        (pages / "long.html").write_text(long_article(int(max(lengths) / 60 * 160 * 1.4)), encoding="utf-8")
        with prefect_api(work / "prefect") as api, serve(pages) as base:
            print(f"generated article on {base}; Prefect API up at {api}; thread runner; cold cache; "
                  f"{resolution}p", flush=True)
            for duration in lengths:
                load = busy_cpus()
                r = measure(base, api, work, duration, 60, page="long.html", resolution=resolution)
                results.append(r)
                print(f"target {duration:6g} s: video {r['video_s']:7.1f} s, {r['scenes']:2d} scenes, "
                      f"wall {r['wall_s']:6.1f} s, peak RSS {r['rss_mib']:6.0f} MiB, {r['size_mb']:.1f} MB"
                      + (f" ({load:.1f} CPUs busy with other work before it)" if load is not None else ""),
                      flush=True)
    short, long = min(results, key=lambda r: r["video_s"]), max(results, key=lambda r: r["video_s"])
    growth = long["rss_mib"] / short["rss_mib"]
    print()
    print(f"peak RSS: {short['video_s'] / 60:.1f} min video {short['rss_mib']:.0f} MiB | "
          f"{long['video_s'] / 60:.1f} min video {long['rss_mib']:.0f} MiB | "
          f"{growth:.2f}x for {long['video_s'] / short['video_s']:.1f}x the length "
          f"(target < {TARGET_RSS_GROWTH}x: {'met' if growth < TARGET_RSS_GROWTH else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
