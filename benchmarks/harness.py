"""What the end-to-end benchmarks share: a Prefect API, the sample pages on loopback, fresh settings.

Everything here is started before any clock: the benchmarks time pagereel, not its surroundings.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import platform
import resource
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Saved article pages, next to the repository as the tests find them.
PAGES_DIR = ROOT.parent / "shared" / "samples" / "pages"
#: The longest sample article (about 6,500 words): long enough for a 10-minute video.
LONG_PAGE = "gregoryszorc.com.python3.html"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The process id of each Prefect server :func:`prefect_api` runs, by API URL (for per-process CPU figures).
SERVER_PIDS: dict[str, int] = {}


@contextlib.contextmanager
def prefect_api(home: Path, database: str | None = None) -> Iterator[str]:
    """A Prefect server on loopback for the duration of the block; yields its API URL.

    Its database is SQLite under ``home`` unless ``database`` names another (a SQLAlchemy URL such as
    ``postgresql+asyncpg://postgres@127.0.0.1:5432/prefect``, which Prefect migrates as it starts).
    """
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if database:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    SERVER_PIDS[url] = proc.pid
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the Prefect server did not start within 120 s") from None
                time.sleep(0.5)
        yield url
    finally:
        SERVER_PIDS.pop(url, None)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 in a background thread; yields the base URL."""
    if not folder.is_dir():
        raise SystemExit(f"sample pages not found at {folder}")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="bench-http")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_env(work: Path, api_url: str, **extra: str) -> dict[str, str]:
    """The environment of a measured run: this API, loopback pages allowed, outputs and a cold cache under ``work``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEREEL_")}
    env.update(
        PREFECT_API_URL=api_url,
        PREFECT_HOME=str(work / "prefect-client"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PAGEREEL_FETCH__ALLOW_PRIVATE_HOSTS="1",
        # The sample pages link pictures on the internet; the benchmark never leaves the machine, so
        # their scenes get the themed backdrop (the same Ken Burns move over a gradient).
        PAGEREEL_FETCH__IMAGE_HOSTS='["127.0.0.1"]',
        PAGEREEL_OUT_DIR=str(work / "out"),
        PAGEREEL_CACHE__DIR=str(work / "cache"),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def peak_rss_mib() -> float:
    """Peak resident memory of this process and of its waited-for children, MiB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def busy_cpus(seconds: float = 1.0) -> float | None:
    """CPUs kept busy by everything on the machine over ``seconds`` (the hypervisor's share counts), or None."""
    before = cpu_seconds()
    time.sleep(seconds)
    after = cpu_seconds()
    if before is None or after is None:
        return None
    spent = {k: after[k] - before[k] for k in after}
    return (os.cpu_count() or 1) * (spent["busy"] + spent["stolen"]) / max(1e-9, sum(spent.values()))


def cpu_seconds() -> dict[str, float] | None:
    """The machine's CPU seconds since boot, all CPUs together (Linux /proc/stat): busy, idle, stolen; None elsewhere.

    ``stolen`` is time a virtual machine's CPUs were ready to run but the hypervisor ran something else:
    it slows whatever is running then, which on a shared host can be one configuration and not the other.
    """
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    steal = ticks[7] if len(ticks) > 7 else 0
    return {"busy": (sum(ticks[:8]) - idle - steal) / hz, "idle": idle / hz, "stolen": steal / hz}


def best_seconds(fn: Callable[..., Any], args: tuple[Any, ...], repeat: int, min_batch_s: float = 0.05) -> float:
    """Best per-call time over ``repeat`` batches, each batch long enough for the clock to resolve."""
    number = 1
    while True:  # calibrate the batch size, like timeit.autorange
        start = time.perf_counter()
        for _ in range(number):
            fn(*args)
        if time.perf_counter() - start >= min_batch_s:
            break
        number *= 2
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn(*args)
        best = min(best, (time.perf_counter() - start) / number)
    return best


def kernel_machine() -> str:
    """One line on what runs the kernels: the backend, Numba's threads, the CPUs and the processor."""
    from kernels._jit import kernel_backend

    try:
        import numba

        threads = f"{numba.get_num_threads()} numba threads"
    except ImportError:
        threads = "numba missing"
    machine = platform.processor() or platform.machine()
    return f"backend: {kernel_backend()}; {threads}; {os.cpu_count()} CPUs; {machine}"


@dataclass(frozen=True)
class Bench:
    """One row of a kernel table: a compiled kernel, its reference, and a factory of their arguments."""

    name: str
    numba_fn: Callable[..., Any]
    reference_fn: Callable[..., Any]
    #: Called once for each side, so an in-place kernel and its reference never share an output.
    args_factory: Callable[[], tuple[Any, ...]]
    #: Bytes the kernel must read and write per call (0: not reported).
    bytes_moved: int = 0
    #: What a call produced, from its arguments and return value (in-place kernels write into an argument).
    result: Callable[[tuple[Any, ...], Any], Any] = lambda args, returned: returned
    #: How closely the two must agree; None: to the bit.
    rtol: float | None = None

    def checked_args(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Arguments of the kernel and of the reference, once a first call of each (the warm-up) agreed.

        The two must agree before their times mean anything.
        """
        import numpy as np

        args, ref_args = self.args_factory(), self.args_factory()
        fast = self.result(args, self.numba_fn(*args))
        slow = self.result(ref_args, self.reference_fn(*ref_args))
        if self.rtol is None:
            np.testing.assert_array_equal(fast, slow)
        else:
            np.testing.assert_allclose(fast, slow, rtol=self.rtol)
        return args, ref_args
