"""What the cache saves, for the whole command: a cold run, the same run again, and a run after editing one scene.

Run from the repository root:
``python benchmarks/cache.py [--url URL] [--duration S] [--resolution PX] [--rounds N] [--against DIR]``.
Each run is ``python -m flows.video_flow URL --json`` in a child process, the way users run it, so
the times include starting Python, importing and setting the flow up, not only the stages. A Prefect
server is started first (and stopped at the end) so its start-up is not timed. The children keep
bytecode caches as a user's Python does: an inherited ``PYTHONDONTWRITEBYTECODE`` is dropped, and
before any clock the checkout is compiled and one untimed run caches Numba's kernels. Each round
starts from an empty cache and output folder. With ``--against DIR`` (another checkout of pagereel)
every round runs there too, interleaved, so both sides see the same load.
Targets: the cached re-run under 1/4 of the cold run; a one-scene edit under 1/3 of it. Then where a
fresh process spends its import time (``python -X importtime``), by top-level package.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# This folder holds kernels.py, which would hide the kernels package: the repository root goes first.
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.harness import ROOT, prefect_api  # noqa: E402

TARGET_CACHED = 0.25
TARGET_EDIT = 1 / 3


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(url: str, env: dict[str, str], *extra: str, root: Path = ROOT) -> tuple[float, float, dict]:
    """Wall seconds the whole command took, its CPU seconds, and the WorkflowState it printed.

    CPU seconds are the command's own (its process and any it waited for), not the Prefect server's:
    on a machine other work keeps busy they move much less than wall seconds.
    """
    cpu0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.video_flow", url, "--workflow-id", "bench", "--json", *extra],
                          cwd=root, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
    return seconds, cpu, json.loads(done.stdout)


def import_breakdown(module: str, env: dict[str, str]) -> tuple[float, Counter[str]]:
    """Seconds a fresh process takes to import ``module``, and the self time of each top-level package."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    by_package: Counter[str] = Counter()
    total = 0.0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        by_package[name.split(".")[0]] += int(own) / 1e6
        if name == module:
            total = int(cumulative) / 1e6
    return total, by_package


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def one_round(url: str, env: dict[str, str], work: Path, root: Path, label: str) -> dict[str, tuple[float, float]]:
    """A cold run, the same run again and a run with one scene edited, from an empty cache and output folder."""
    for folder in ("cache", "out"):
        shutil.rmtree(work / folder, ignore_errors=True)
    rows: dict[str, tuple[float, float]] = {}

    def timed(name: str, *extra: str) -> dict:
        seconds, cpu, state = run_command(url, env, *extra, root=root)
        m = state["metrics"]
        stages = sum(m["stage_seconds"].values())
        rows[name] = (seconds, cpu)
        print(f"{label:<8} {name:<18} {seconds:7.2f} s   cpu {cpu:6.2f} s   stages {stages:6.2f} s   "
              f"hits {m['cache_hits']:3d}   misses {m['cache_misses']:3d}   video {state['duration_s']:.1f} s   "
              f"load {_load()}", flush=True)
        return state

    state = timed("cold")
    timed("cached (same)")
    scene = state["storyboard"]["scenes"][2]
    edits = work / "edits.json"
    edits.write_text(json.dumps({"scenes": {scene["id"]: {"narration": scene["narration"]
                                                          + " That is worth remembering."}}}))
    timed("one scene edited", "--edits", str(edits))
    return rows


def report(label: str, rounds: list[dict[str, tuple[float, float]]]) -> None:
    """Per run, the median wall and CPU seconds over the rounds and each round's ratio to its own cold run."""
    print(f"\n{label}: whole command, {len(rounds)} round(s); ratios are each round's run / that round's cold run")
    print(f"{'run':<18} {'wall s':>8} {'/ cold':>7} {'cpu s':>7} {'/ cold':>7}   per round (wall, cpu)")
    for name in rounds[0]:
        ratios = [(r[name][0] / r["cold"][0], r[name][1] / r["cold"][1]) for r in rounds]
        wall, cpu = (statistics.median(r[name][i] for r in rounds) for i in (0, 1))
        each = "  ".join(f"{w:.3f},{c:.3f}" for w, c in ratios)
        print(f"{name:<18} {wall:8.2f} {statistics.median(w for w, _ in ratios):7.3f} {cpu:7.2f} "
              f"{statistics.median(c for _, c in ratios):7.3f}   {each}")
    for name, target in (("cached (same)", TARGET_CACHED), ("one scene edited", TARGET_EDIT)):
        wall = statistics.median(r[name][0] / r["cold"][0] for r in rounds)
        cpu = statistics.median(r[name][1] / r["cold"][1] for r in rounds)
        verdict = "met" if max(wall, cpu) < target else "met in CPU seconds" if cpu < target else "MISSED"
        print(f"{name} / cold = {wall:.3f} wall, {cpu:.3f} cpu  (target < {target:.2f}: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=str(ROOT / "examples" / "article.html"))
    parser.add_argument("--duration", type=float, default=60.0, help="target video length in seconds")
    parser.add_argument("--resolution", type=int, default=720, help="short side of the frame in pixels")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of cold, cached and edited runs")
    parser.add_argument("--against", type=Path, help="another checkout to run, round by round, beside this one")
    args = parser.parse_args()
    roots = {"this": ROOT, **({"against": args.against.resolve()} if args.against else {})}

    work = Path(tempfile.mkdtemp(prefix="pagereel-cache-bench-"))
    with prefect_api(work / "prefect") as api:
        # A user's Python keeps bytecode caches: so do the children, compiled before any clock.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEREEL_") and k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            PREFECT_API_URL=api,
            PREFECT_HOME=str(work / "prefect"),
            PAGEREEL_CACHE__DIR=str(work / "cache"),
            PAGEREEL_OUT_DIR=str(work / "out"),
            PAGEREEL_STORYBOARD__TARGET_DURATION_S=str(args.duration),
            PAGEREEL_RENDER__RESOLUTION=str(args.resolution),
        )
        for root in roots.values():
            for package in ("flows", "tasks", "kernels"):
                compileall.compile_dir(root / package, quiet=1)
            # Untimed: Numba's compiled kernels land in their on-disk cache, as after a user's first video.
            run_command(args.url, {**env, "PAGEREEL_CACHE__DIR": str(work / "warm-up")}, root=root)
        print(f"load average at the start: {_load()} ({os.cpu_count()} CPUs)")
        rounds: dict[str, list[dict[str, tuple[float, float]]]] = {label: [] for label in roots}
        for _ in range(args.rounds):
            for label, root in roots.items():
                rounds[label].append(one_round(args.url, env, work, root, label))
        imports = {module: import_breakdown(module, env) for module in ("flows.video_flow", "flows.cli")}
    print(f"load average at the end: {_load()}")

    for label, measured in rounds.items():
        report(f"{label} ({roots[label]})", measured)
    for module, (total, by_package) in imports.items():
        print()
        print(f"import {module}: {total:.2f} s in a fresh process; by top-level package (self time):")
        for package, seconds in by_package.most_common(12):
            print(f"  {package:<28} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
