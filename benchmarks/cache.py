"""What the cache saves, for the whole command: a cold run, the same run again, and a run after editing one scene.

Run from the repository root: ``python benchmarks/cache.py [--url URL] [--duration S] [--resolution PX]``.
Each run is ``python -m flows.video_flow URL --json`` in a child process, the way users run it, so
the times include starting Python, importing and setting the flow up, not only the stages. A Prefect
server is started first (and stopped at the end) so its start-up is not timed.
Targets: the cached re-run under 1/4 of the cold run; a one-scene edit under 1/3 of it. Then where a
fresh process spends its import time (``python -X importtime``), by top-level package.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def run_command(url: str, env: dict[str, str], *extra: str) -> tuple[float, float, dict]:
    """Wall seconds the whole command took, its CPU seconds, and the WorkflowState it printed.

    CPU seconds are the command's own (its process and any it waited for), not the Prefect server's:
    on a machine other work keeps busy they move much less than wall seconds.
    """
    cpu0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.video_flow", url, "--workflow-id", "bench", "--json", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=str(ROOT / "examples" / "article.html"))
    parser.add_argument("--duration", type=float, default=60.0, help="target video length in seconds")
    parser.add_argument("--resolution", type=int, default=720, help="short side of the frame in pixels")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pagereel-cache-bench-"))
    with prefect_api(work / "prefect") as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEREEL_")}
        env.update(
            PREFECT_API_URL=api,
            PREFECT_HOME=str(work / "prefect"),
            PAGEREEL_CACHE__DIR=str(work / "cache"),
            PAGEREEL_OUT_DIR=str(work / "out"),
            PAGEREEL_STORYBOARD__TARGET_DURATION_S=str(args.duration),
            PAGEREEL_RENDER__RESOLUTION=str(args.resolution),
        )
        rows = []

        def timed(label: str, *extra: str) -> tuple[float, dict]:
            seconds, cpu, state = run_command(args.url, env, *extra)
            m = state["metrics"]
            stages = sum(m["stage_seconds"].values())
            rows.append((label, seconds, cpu, stages))
            print(f"{label:<18} {seconds:7.2f} s   cpu {cpu:6.2f} s   stages {stages:6.2f} s   "
                  f"hits {m['cache_hits']:3d}   misses {m['cache_misses']:3d}   video {state['duration_s']:.1f} s",
                  flush=True)
            return seconds, state

        cold, state = timed("cold")
        cached, _ = timed("cached (same)")
        scene = state["storyboard"]["scenes"][2]
        edits = work / "edits.json"
        edits.write_text(json.dumps({"scenes": {scene["id"]: {"narration": scene["narration"]
                                                              + " That is worth remembering."}}}))
        edited, _ = timed("one scene edited", "--edits", str(edits))
        imports = {module: import_breakdown(module, env) for module in ("flows.video_flow", "flows.cli")}

    print()
    cold_cpu = rows[0][2]
    print(f"{'whole command':<18} {'seconds':>8} {'/ cold':>7} {'cpu s':>7} {'/ cold':>7} {'stages s':>9} "
          f"{'rest s':>7}")
    for label, seconds, cpu, stages in rows:
        print(f"{label:<18} {seconds:8.2f} {seconds / cold:7.3f} {cpu:7.2f} {cpu / cold_cpu:7.3f} {stages:9.2f} "
              f"{seconds - stages:7.2f}")
    print()
    print(f"cached / cold = {cached / cold:.3f}  (target < {TARGET_CACHED}: "
          f"{'met' if cached / cold < TARGET_CACHED else 'MISSED'})")
    print(f"edit / cold   = {edited / cold:.3f}  (target < {TARGET_EDIT:.2f}: "
          f"{'met' if edited / cold < TARGET_EDIT else 'MISSED'})")
    for module, (total, by_package) in imports.items():
        print()
        print(f"import {module}: {total:.2f} s in a fresh process; by top-level package (self time):")
        for package, seconds in by_package.most_common(12):
            print(f"  {package:<28} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
