"""A batch of four videos on a Dask cluster of one worker, then of two: the speed-up, and where serial time goes.

    python benchmarks/scale.py [--quick] [--repeat N] [--database URL] [--no-preload] [--warm-video]

Each configuration runs in a fresh child process with an empty cache: it starts a Dask scheduler
and N worker processes as separate commands, as README's "Running at scale" does (``dask scheduler
--preload flows.dask_preload``, ``dask worker --nthreads 1 --preload flows.dask_preload``: the
scheduler imports pagereel's stages, each worker also narrates and renders one tiny scene, before
they serve anything), then times ``run_batch`` of four sample pages (all four in flight at once,
scenes queued on the cluster). ``--no-preload`` starts them bare: the first scenes then wait while
the scheduler and every worker import Prefect and the stages and load the kernels.
``--warm-video`` has the cluster make one short video first, from a process of its own (its cache
elsewhere), as a cluster that has made videos before. A Prefect server is started and the pages are
served on 127.0.0.1 before any clock. Its database is SQLite unless ``--database`` names a PostgreSQL
one, as Prefect advises for many clients at once (README, "Running at scale"). Inside a Dask worker
the renderer sizes x264 and the kernels to the worker's threads, so each worker stands for one core.
The two configurations alternate for ``--repeat`` rounds (2 unless told) and the fastest round of
each is compared: other work on the machine slows single rounds by 30% and more.
Target: two workers at least 1.6x faster than one.

Where the serial time goes is printed for the fastest 2-worker round: when each video's run
started and ended after the batch began, when its work began (the spread of those starts), the
seconds its flow process spent per stage (fetch, extract, suggest and edits run in the flow
process before any scene reaches a worker; assemble after the last one), and how many writes the
Prefect API refused as busy (SQLite allows one writer at a time; Prefect's client retries each 2 s
or more later). Then, for the fastest round of each configuration side by side: the serial set-up
(batch start to the first scene on a worker: Prefect creating the flow runs, the stages before
the scenes), the parallel part (first scene to last, with the workers' share of it
spent computing) and the serial wrap-up (last scene to the batch's end: assembling). Last, the CPU
seconds of each process over the batch (this flow process, the scheduler, the nannies, the workers,
the Prefect server and PostgreSQL's backends, and the rest of the machine), and the cap that the
machine's work in the fastest 2-worker round puts on the speed-up: every process shares the same CPUs,
so no round doing that work on them can end sooner than its CPU seconds over the CPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from benchmarks.harness import PAGES_DIR, SERVER_PIDS, busy_cpus, cpu_seconds, prefect_api, run_env, serve  # noqa: E402

TARGET_SPEEDUP = 1.6
PAGES = [
    "caktusgroup.com.django.html",
    "dw.com.colonial.html",
    "en.wikipedia.org.tsne.html",
    "nature.com.telescope.html",
]


def _cluster(workers: int, folder: Path, preload: bool = True) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A scheduler and ``workers`` single-threaded worker processes, each its own command; the address."""
    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = folder / "scheduler.json"
    # The scheduler and the workers import pagereel's modules (the preload, the tasks they unpickle).
    root = str(_HERE.parent)
    ready = ["--preload", "flows.dask_preload"] if preload else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
                               "--scheduler-file", str(scheduler_file), *ready], **quiet)]
    for n in range(workers):
        procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard", "--memory-limit", "0",
                                       "--local-directory", str(folder / f"worker-{n}"), *ready], **quiet))
    ends = time.monotonic() + 60
    while not scheduler_file.exists():
        if time.monotonic() > ends:
            raise SystemExit("the Dask scheduler did not start")
        time.sleep(0.1)
    return json.loads(scheduler_file.read_text())["address"], procs


@contextlib.contextmanager
def _timed_runs(runs: list[dict], t0: list[float]) -> Iterator[None]:
    """Record when each video run starts and ends, and its flow process's seconds per stage."""
    import flows.batch_flow as batch

    plain = batch.run_video

    def timed(url: str, **kwargs: object) -> object:
        start = time.perf_counter() - t0[0]
        state = plain(url, **kwargs)
        flow_start = state.started_at.timestamp() - t0[1] if state.started_at else start  # inside the flow run
        runs.append({"url": url.rsplit("/", 1)[-1], "start_s": start, "flow_start_s": flow_start,
                     "end_s": time.perf_counter() - t0[0], "stages": dict(state.metrics.stage_seconds),
                     "cpu_s": state.metrics.cpu_seconds})
        return state

    batch.run_video = timed
    try:
        yield
    finally:
        batch.run_video = plain


class _Refusals(logging.Handler):
    """Counts the writes the Prefect API refused as busy (HTTP 503): Prefect's client retries each 2 s or more later."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retryable status code 503" in record.getMessage():
            self.count += 1


@contextlib.contextmanager
def _counted_refusals() -> Iterator[_Refusals]:
    logger = logging.getLogger("prefect.client")
    refusals, level = _Refusals(), logger.level
    logger.addHandler(refusals)
    logger.setLevel(logging.DEBUG)
    try:
        yield refusals
    finally:
        logger.removeHandler(refusals)
        logger.setLevel(level)


def _run_one_video(address: str, url: str, folder: Path, overrides: dict | None = None) -> None:
    """One short video of ``url`` on the cluster, made by ``python -m flows.batch_flow`` in a process of its own.

    Its cache and outputs go to a folder of their own, so the batch measured after it starts cold;
    the workers keep what running any video leaves in a worker process (Prefect's task engine and
    pagereel's stages imported, the speech engine loaded), as on a cluster that has made videos before.
    """
    env = {**os.environ, "PAGEREEL_RUNNER__ADDRESS": address, "PAGEREEL_CACHE__DIR": str(folder / "warm-cache"),
           "PAGEREEL_OUT_DIR": str(folder / "warm-out"), "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "10"}
    for section, values in (overrides or {}).items():  # the batch's own render settings, say, as the environment
        if section not in ("runner", "storyboard") and isinstance(values, dict):
            env.update({f"PAGEREEL_{section.upper()}__{k.upper()}": str(v) for k, v in values.items()})
    done = subprocess.run([sys.executable, "-m", "flows.batch_flow", url, "--runner", "dask"], cwd=_HERE.parent,
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the warm-up video failed:\n{done.stderr[-3000:]}")


def child(urls: list[str], workers: int, duration: float, overrides: dict | None = None,
          warm_video: bool = False, preload: bool = True) -> dict:
    """Make the batch on a fresh cluster of ``workers`` worker processes and return what was measured."""
    from distributed import Client

    from flows.batch_flow import run_batch

    runs: list[dict] = []
    t0 = [0.0, 0.0]  # the batch's start: perf_counter, and wall-clock time
    with _timed_runs(runs, t0), _counted_refusals() as refusals, \
            tempfile.TemporaryDirectory(prefix="pagereel-dask-") as tmp:
        address, procs = _cluster(workers, Path(tmp), preload)
        try:
            with Client(address, timeout=60) as client:
                client.wait_for_workers(workers, timeout=120)
                if warm_video:
                    _run_one_video(address, urls[0], Path(tmp), overrides)
                client.get_task_stream(start=time.time())  # the first call installs the scheduler's recorder
                overrides = {"runner": {"kind": "dask", "address": address},
                             "storyboard": {"target_duration_s": duration}, **(overrides or {})}
                groups = _process_groups(procs)
                every = [pid for pids in groups.values() for pid in pids]
                t0[:] = [time.perf_counter(), time.time()]
                cpu0, by_pid0 = cpu_seconds(), _cpu_by_pid(every)
                result = run_batch(urls, concurrency=len(urls), overrides=overrides)
                wall = time.perf_counter() - t0[0]
                cpu1, by_pid1 = cpu_seconds(), _cpu_by_pid(every)
                workers_busy = _busy(client.get_task_stream(start=t0[1]), t0[1])
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    failed = [f"{i.url}: {i.error}" for i in result.failed]
    if failed:
        raise SystemExit("videos failed: " + "; ".join(failed))
    # A process that ended within the batch is left out (its last reading is gone); none of these should.
    processes = {name: sum(by_pid1[p] - by_pid0.get(p, 0.0) for p in pids if p in by_pid1)
                 for name, pids in groups.items()}
    return {"processes": processes,
            "wall_s": wall, "video_s": sum(i.duration_s or 0.0 for i in result.items), "videos": len(result.items),
            "runs": sorted(runs, key=lambda r: r["start_s"]), "workers": workers_busy, "refused": refusals.count,
            "cpu": {k: cpu1[k] - cpu0[k] for k in cpu0} if cpu0 and cpu1 else None}


def _process_groups(procs: list[subprocess.Popen[bytes]]) -> dict[str, list[int]]:
    """The process ids behind each part of the batch: this flow process, the scheduler, nannies, workers, servers."""
    import psutil

    def tree(pid: int) -> list[int]:
        try:
            return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
        except psutil.Error:
            return []

    groups = {"flow process": [os.getpid()], "scheduler": tree(procs[0].pid), "nannies": [], "workers": []}
    for nanny in procs[1:]:
        pids = tree(nanny.pid)
        groups["nannies"] += pids[:1]
        groups["workers"] += pids[1:]
    server = os.environ.get("BENCH_PREFECT_SERVER_PID")
    groups["Prefect server"] = tree(int(server)) if server else []
    groups["PostgreSQL"] = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
    return groups


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User and system CPU seconds of each process that is still there."""
    import psutil

    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        out[pid] = t.user + t.system
    return out


def _busy(stream: list[dict], t0: float) -> dict[str, dict[str, float]]:
    """Per worker: seconds computing, when its first task started and its last one ended (from the batch's start)."""
    out: dict[str, dict[str, float]] = {}
    for task in stream:
        for span in task.get("startstops", ()):
            if span.get("action") != "compute":
                continue
            w = out.setdefault(task["worker"], {"busy_s": 0.0, "first_s": float("inf"), "last_s": 0.0})
            w["busy_s"] += span["stop"] - span["start"]
            w["first_s"] = min(w["first_s"], span["start"] - t0)
            w["last_s"] = max(w["last_s"], span["stop"] - t0)
    return out


def print_serial(r: dict) -> None:
    """Where the flow process spends its time, run by run, and how far apart the runs start."""
    print(f"where the time goes (2 workers, {r['wall_s']:.1f} s):")
    starts = [run["start_s"] for run in r["runs"]]
    for run in r["runs"]:
        st = run["stages"]
        before = sum(st.get(k, 0.0) for k in ("fetch", "extract", "suggest", "edits"))
        print(f"  {run['url'][:32]:32} run {run['start_s']:5.1f}-{run['end_s']:5.1f} s; flow process before the "
              f"scenes {before:.2f} s (fetch {st.get('fetch', 0):.2f}, extract {st.get('extract', 0):.2f}, suggest "
              f"{st.get('suggest', 0):.2f}), assemble {st.get('assemble', 0):.2f} s, CPU {run['cpu_s']:.1f} s")
    flows = sorted(run["flow_start_s"] for run in r["runs"])
    print(f"  runs called {starts[0]:.2f}-{starts[-1]:.2f} s after the batch began; their work began at "
          f"{', '.join(f'{f:.2f}' for f in flows)} s (spread {flows[-1] - flows[0]:.2f} s); the last run ended "
          f"{r['wall_s'] - max(run['end_s'] for run in r['runs']):.2f} s before the batch did; the Prefect API "
          f"refused {r.get('refused', 0)} write(s) as busy (HTTP 503, each retried 2 s or more later)")
    for name, w in sorted(r.get("workers", {}).items()):
        share = w["busy_s"] / r["wall_s"]
        print(f"  worker {name}: computing {w['busy_s']:.1f} s of {r['wall_s']:.1f} s ({share:.0%}); "
              f"first task at {w['first_s']:.2f} s, last one done at {w['last_s']:.2f} s")


def breakdown(r: dict) -> dict[str, float]:
    """The batch's wall time in three parts: serial set-up, parallel work, serial wrap-up (seconds)."""
    workers = r.get("workers") or {}
    first = min((w["first_s"] for w in workers.values()), default=0.0)  # the first scene reaches a worker
    last = max((w["last_s"] for w in workers.values()), default=r["wall_s"])  # the last scene is done
    busy = sum(w["busy_s"] for w in workers.values())
    starts = [run["flow_start_s"] for run in r["runs"]]
    return {"setup_s": first, "parallel_s": max(0.0, last - first), "wrapup_s": max(0.0, r["wall_s"] - last),
            "busy_s": busy, "flows_s": max((run["flow_start_s"] for run in r["runs"]), default=0.0),
            "spread_s": max(starts) - min(starts) if starts else 0.0}


def print_breakdown(rounds: dict[int, dict]) -> None:
    """Serial set-up, parallel work and wrap-up of each configuration's fastest round, side by side."""
    print("serial set-up (batch start to the first scene on a worker) | parallel (first scene to last) | "
          "serial wrap-up (last scene to the batch's end):")
    for workers, r in sorted(rounds.items()):
        b = breakdown(r)
        share = b["busy_s"] / (workers * b["parallel_s"]) if b["parallel_s"] else 0.0
        print(f"  {workers} worker(s): {b['setup_s']:5.1f} s | {b['parallel_s']:5.1f} s, workers computing "
              f"{b['busy_s']:5.1f} s ({share:.0%} of {workers}) | {b['wrapup_s']:5.1f} s; all flow runs started by "
              f"{b['flows_s']:.1f} s (spread {b['spread_s']:.1f} s)")


def print_processes(rounds: dict[int, dict]) -> None:
    """CPU seconds each part of the machine's work took in each configuration's fastest round."""
    print("CPU seconds per process over the batch (the workers' work is the video; the rest is the serial part's "
          "share of the machine):")
    for workers, r in sorted(rounds.items()):
        procs, cpu = r.get("processes") or {}, r.get("cpu")
        if not procs:
            continue
        parts = [f"{name} {secs:.1f}" for name, secs in procs.items()]
        if cpu:
            parts.append(f"everything else {cpu['busy'] - sum(procs.values()):.1f}")
        print(f"  {workers} worker(s): " + ", ".join(parts) + (f" (machine busy {cpu['busy']:.1f})" if cpu else ""))


def measure(base: str, api: str, work: Path, workers: int, pages: list[str], duration: float,
            start: tuple[str, ...] = ()) -> dict:
    urls = [f"{base}/{page}" for page in pages]
    cmd = [sys.executable, __file__, "--child", json.dumps(urls), "--workers", str(workers),
           "--duration", str(duration), *start]
    server = SERVER_PIDS.get(api)
    extra = {"BENCH_PREFECT_SERVER_PID": str(server)} if server else {}
    done = subprocess.run(cmd, env=run_env(work / f"workers-{workers}", api, **extra), capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the batch on {workers} worker(s) failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _where(database: str | None) -> str:
    """A database URL without its password."""
    if not database:
        return "SQLite"
    from sqlalchemy.engine import make_url

    return make_url(database).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two 10 s videos instead of four 30 s ones")
    parser.add_argument("--duration", type=float, default=30.0, help="target length of each video, seconds")
    parser.add_argument("--repeat", type=int, default=None,
                        help="alternating rounds of each configuration, the fastest counts (2; 1 with --quick)")
    parser.add_argument("--database", metavar="URL",
                        help="the Prefect server's database (default: SQLite in a temporary folder), e.g. "
                             "postgresql+asyncpg://postgres@127.0.0.1:5432/prefect_bench")
    parser.add_argument("--no-preload", action="store_true",
                        help="start the scheduler and workers without pagereel's preload (flows.dask_preload)")
    parser.add_argument("--warm-video", action="store_true",
                        help="have the cluster make one short video before the batch, as one that has made videos")
    parser.add_argument("--child", metavar="URLS", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.workers, args.duration,
                               warm_video=args.warm_video, preload=not args.no_preload)))
        return 0

    if args.repeat is None:
        args.repeat = 1 if args.quick else 2
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    pages, duration = (PAGES[:2], 10.0) if args.quick else (PAGES, args.duration)
    start = (*(["--no-preload"] if args.no_preload else []), *(["--warm-video"] if args.warm_video else []))
    results = {}
    with tempfile.TemporaryDirectory(prefix="pagereel-scale-") as tmp:
        work = Path(tmp)
        with prefect_api(work / "prefect", args.database) as api, serve(PAGES_DIR) as base:
            print(f"batch: {len(pages)} sample pages, target {duration:g} s each, all in flight; a Dask scheduler and "
                  f"single-threaded worker processes started as commands; cold cache per configuration; "
                  f"{'bare' if args.no_preload else 'with the preload flows.dask_preload'}"
                  f"{', after one short video' if args.warm_video else ', fresh'}; "
                  f"Prefect's database: {_where(args.database)}", flush=True)
            # Rounds alternate 1, 2, 1, 2...: load from elsewhere on the machine then falls on both
            # configurations alike, and the fastest round of each is the one least disturbed by it.
            for n in range(args.repeat):
                for workers in (1, 2):
                    load = busy_cpus()
                    if load is not None:
                        print(f"load before {workers} worker(s): {load:.1f} CPUs busy with other work", flush=True)
                    r = measure(base, api, work / f"round-{n}", workers, pages, duration, start)
                    results.setdefault(workers, []).append(r)
                    cpu = r.get("cpu")
                    machine = (f"; the machine's CPUs: busy {cpu['busy']:.0f} s, idle {cpu['idle']:.0f} s, "
                               f"taken by the hypervisor {cpu['stolen']:.1f} s" if cpu else "")
                    print(f"{workers} worker(s): {r['videos']} videos, {r['video_s']:.0f} s of video in "
                          f"{r['wall_s']:.1f} s ({r['wall_s'] / r['video_s']:.2f}x real time){machine}", flush=True)
    best = {workers: min(r["wall_s"] for r in rounds) for workers, rounds in results.items()}
    speedup = best[1] / best[2]
    print()
    if args.repeat > 1:
        each = ", ".join(f"{a['wall_s'] / b['wall_s']:.2f}x" for a, b in zip(results[1], results[2], strict=True))
        print(f"round by round: {each}; below, the fastest round of each")
    fastest = {workers: min(rounds, key=lambda r: r["wall_s"]) for workers, rounds in results.items()}
    print_serial(fastest[2])
    print_breakdown(fastest)
    fastest2 = fastest[2]
    if fastest2.get("cpu"):  # the whole machine's work in that round: no batch on these CPUs can end sooner
        cpus = os.cpu_count() or 1
        floor = fastest2["cpu"]["busy"] / cpus
        print(f"the fastest 2-worker round kept the machine's {cpus} CPUs busy for {fastest2['cpu']['busy']:.0f} s "
              f"(idle {fastest2['cpu']['idle']:.0f} s): that work alone takes {floor:.1f} s on {cpus} CPUs, so this "
              f"machine allows at most {best[1] / floor:.2f}x against the fastest 1-worker round ({best[1]:.1f} s)")
    print_processes(fastest)
    print(f"1 worker / 2 workers = {speedup:.2f}x  ({best[1]:.1f} s / {best[2]:.1f} s; target >= {TARGET_SPEEDUP}: "
          f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
