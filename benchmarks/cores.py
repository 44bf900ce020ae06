"""What a second CPU adds on this machine: one scene rendered by one process alone, then by two at once.

    python benchmarks/cores.py [--rounds 5] [--frames 150] [--resolution 720] [--renders 3]

Each process is pinned to a CPU of its own, of the first two this process may use
(``os.sched_setaffinity``), and renders the render benchmark's scene (``benchmarks/render.py``: a
photo under a Ken Burns move, a caption, subtitles, a progress bar, sound) with x264 on one thread,
as a single-threaded Dask worker does. Rounds alternate: one process alone on the first CPU, then
two processes at once on both, each told to start together once both have rendered the scene once
(imports, kernels, fonts).

No time is shared between the two, so a second CPU would double the work done if the CPUs were
independent. They are not quite: both processes stream frames through the same memory and the
host's shared cache, so each render takes more CPU seconds beside another than alone. The script
prints the CPU seconds per render alone and side by side (medians over the rounds), and the
ceiling this puts on any two-worker speed-up on this machine: 2 x alone / side by side. A pure
Python loop, which touches almost no memory, is timed the same way: where it too slows side by side,
the CPUs themselves slow each other (turbo clocks, hyperthread siblings, a busy host).

``benchmarks/scale.py`` compares a batch on two Dask workers with one; its 2-worker round cannot
beat this ceiling, and loses more to the flow's process, the Prefect server and the scheduler,
which share the same CPUs there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.harness import cpu_seconds  # noqa: E402

LOOP = 20_000_000


def _spin(loop: int = LOOP) -> None:
    x = 0
    for i in range(loop):
        x += i ^ (i >> 3)


def child(work: str, cpu: int, frames: int, resolution: int, renders: int, loop: int = LOOP) -> None:
    """Pin to ``cpu``, warm up, say so, wait for the go line, then time ``renders`` of the work; one JSON line."""
    os.sched_setaffinity(0, {cpu})
    if work == "render":
        from benchmarks import render as render_bench

        inputs = render_bench.build_inputs(frames, resolution)
        inputs = dataclasses.replace(inputs, options=inputs.options.model_copy(update={"threads": 1}))

        def once() -> None:
            render_bench.run_pagereel(inputs)
    else:

        def once() -> None:
            _spin(loop)
    once()  # imports, compiled kernels, fonts, the picture's planes
    print("ready", flush=True)
    sys.stdin.readline()
    cpu_s, wall = time.process_time(), time.perf_counter()
    for _ in range(renders):
        once()
    cpu_s, wall = time.process_time() - cpu_s, time.perf_counter() - wall
    print(json.dumps({"cpu_s": cpu_s / renders, "wall_s": wall / renders}), flush=True)


def together(work: str, cpus: list[int], frames: int, resolution: int, renders: int, loop: int = LOOP) -> list[dict]:
    """Run the work in one process per CPU, all started at once after their warm-up; each one's per-call figures."""
    procs = [subprocess.Popen([sys.executable, __file__, "--child", work, "--cpu", str(cpu), "--frames", str(frames),
                               "--resolution", str(resolution), "--renders", str(renders), "--loop", str(loop)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for cpu in cpus]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"a {work} process failed before its warm-up ended (exit {proc.wait()})")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"a {work} process failed (exit {proc.wait()})")
            out.append(json.loads(line))
        return out
    except BaseException:  # a child that failed leaves the others waiting for their go line
        for proc in procs:
            proc.kill()
        raise
    finally:
        for proc in procs:
            proc.wait(timeout=120)


def measure(work: str, pair: list[int], rounds: int, frames: int, resolution: int, renders: int,
            loop: int = LOOP) -> dict[str, float]:
    """Alternating rounds alone (on ``pair[0]``) and side by side (on both); median CPU s per call, and the ceiling."""
    alone, paired = [], []
    for n in range(rounds):
        before = cpu_seconds()
        one = together(work, pair[:1], frames, resolution, renders, loop)
        between = cpu_seconds()
        two = together(work, pair, frames, resolution, renders, loop)
        after = cpu_seconds()
        alone += [r["cpu_s"] for r in one]
        paired += [r["cpu_s"] for r in two]
        each = ", ".join(f"{r['cpu_s']:.3f}" for r in two)
        stolen = (f" (the hypervisor took {between['stolen'] - before['stolen']:.1f} s and "
                  f"{after['stolen'] - between['stolen']:.1f} s)" if before and between and after else "")
        print(f"  {work} round {n + 1}: alone {one[0]['cpu_s']:.3f} CPU s a call; side by side {each}{stolen}",
              flush=True)
    a, p = statistics.median(alone), statistics.median(paired)
    return {"alone_s": a, "paired_s": p, "ceiling": 2 * a / p}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds alone and side by side (5)")
    parser.add_argument("--frames", type=int, default=150, help="frames of the scene, at 30 fps (150: 5 s)")
    parser.add_argument("--resolution", type=int, default=720, help="the scene's height in pixels (720)")
    parser.add_argument("--renders", type=int, default=3, help="renders timed per process and round (3)")
    parser.add_argument("--child", choices=("render", "spin"), help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--loop", type=int, default=LOOP, help=argparse.SUPPRESS)  # the Python loop's length
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.cpu, args.frames, args.resolution, args.renders, args.loop)
        return 0
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        raise SystemExit("this benchmark pins processes to CPUs, which needs Linux") from None
    if len(cpus) < 2:
        raise SystemExit(f"this benchmark needs two CPUs; this process may use {cpus}")
    pair = cpus[:2]
    if args.rounds < 1 or args.renders < 1:
        parser.error("--rounds and --renders must be at least 1")
    print(f"one process alone on CPU {pair[0]}, then two at once on CPUs {pair[0]} and {pair[1]}, {args.rounds} "
          f"alternating rounds; "
          f"{os.cpu_count()} CPUs on this machine", flush=True)
    figures = {"render": measure("render", pair, args.rounds, args.frames, args.resolution, args.renders),
               "spin": measure("spin", pair, args.rounds, args.frames, args.resolution, 1, args.loop)}
    print()
    render, spin = figures["render"], figures["spin"]
    print(f"pure Python loop: {spin['alone_s']:.3f} CPU s alone, {spin['paired_s']:.3f} side by side "
          f"({spin['paired_s'] / spin['alone_s']:.2f}x; above 1 the CPUs themselves slow each other)")
    print(f"rendering a {args.frames}-frame {args.resolution}p scene: {render['alone_s']:.3f} CPU s alone, "
          f"{render['paired_s']:.3f} side by side ({render['paired_s'] / render['alone_s']:.2f}x)")
    print(f"two workers on this machine can do at most {render['ceiling']:.2f}x the rendering of one "
          f"(2 x {render['alone_s']:.3f} / {render['paired_s']:.3f}), before any other process takes CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
