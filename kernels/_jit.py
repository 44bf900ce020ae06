"""The one place that says how kernels are compiled, and what happens when they cannot be.

Every kernel is ``@jit()`` over a private function, with a NumPy reference beside it. If Numba
is missing or disabled (``NUMBA_DISABLE_JIT=1``) the decorated functions run as plain Python; if
Numba fails to compile a kernel, ``call_with_fallback`` runs the reference and logs one warning
per kernel.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("pagereel.jit")

F = TypeVar("F", bound=Callable[..., Any])

#: One switch for fast-math across all kernels: results must match the references, so it is off.
FASTMATH = False

# Numba's OpenMP workers spin after each parallel kernel by default, stealing the cores x264 and
# the other scenes' renders are waiting for; a passive wait measured 2-3x less CPU per frame on a
# loaded 2-core machine. A value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import numba
    from numba import prange
    from numba.core.errors import NumbaError  # base of TypingError, LoweringError, ...

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency; this guards broken installs
    numba = None
    prange = range
    NUMBA_AVAILABLE = False

    class NumbaError(Exception):  # type: ignore[no-redef]
        """Stands in for numba's error type when numba is absent."""


_fallen_back: set[str] = set()
_state_lock = threading.Lock()
# Numba's "workqueue" threading layer (the one left when neither TBB nor OpenMP loads) aborts the
# process if two threads launch parallel kernels at once, so such launches are serialized.
_parallel_launch_lock = threading.Lock()
_parallel_layer_threadsafe: bool | None = None


def jit(*, parallel: bool = False) -> Callable[[F], F]:
    """``numba.njit(cache=True, nogil=True, fastmath=FASTMATH, parallel=...)``, or the function itself without numba."""

    def wrap(fn: F) -> F:
        if not NUMBA_AVAILABLE:
            return fn
        return numba.njit(cache=True, nogil=True, parallel=parallel, fastmath=FASTMATH)(fn)

    return wrap


def limit_kernel_threads(cores: int) -> None:
    """Let parallel kernels launched from this thread use at most ``cores`` threads (the limit is per thread)."""
    if NUMBA_AVAILABLE and not numba.config.DISABLE_JIT and cores > 0:
        numba.set_num_threads(max(1, min(cores, numba.config.NUMBA_NUM_THREADS)))


def kernel_backend() -> str:
    """``"numba"`` when kernels are compiled, ``"numpy"`` when they run as Python/NumPy."""
    if not NUMBA_AVAILABLE or numba.config.DISABLE_JIT:
        return "numpy"
    return "numba"


def kernels_on_fallback() -> tuple[str, ...]:
    """Names of the kernels that failed to compile and now run their NumPy reference."""
    with _state_lock:
        return tuple(sorted(_fallen_back))


def _is_parallel(fn: Any) -> bool:
    targetoptions = getattr(fn, "targetoptions", None)
    return isinstance(targetoptions, dict) and bool(targetoptions.get("parallel"))


def _parallel_threadsafe() -> bool:
    """Whether the threading layer Numba uses tolerates concurrent launches (TBB or OpenMP do)."""
    global _parallel_layer_threadsafe
    if _parallel_layer_threadsafe is None:
        try:
            layers = [numba.threading_layer()]  # known once a parallel kernel has run
        except ValueError:
            chosen = str(numba.config.THREADING_LAYER).lower()
            layers = {
                "default": list(numba.config.THREADING_LAYER_PRIORITY),
                "safe": ["tbb"],
                "threadsafe": ["tbb", "omp"],
                "forksafe": ["tbb", "workqueue"],
            }.get(chosen, [chosen])
        _parallel_layer_threadsafe = _first_loadable_is_threadsafe(layers)
    return _parallel_layer_threadsafe


def _first_loadable_is_threadsafe(layers: list[str]) -> bool:
    # Mirrors numba's own choice: the first layer whose library loads wins; workqueue always loads.
    for layer in layers:
        if layer == "workqueue":
            return False
        try:
            __import__(f"numba.np.ufunc.{layer}pool")
        except (ImportError, OSError):  # libtbb / libgomp missing: numba moves on to the next layer
            continue
        return True
    return False


def call_with_fallback(jitted: Callable[..., Any], reference: Callable[..., Any], *args: Any, name: str) -> Any:
    """Run the compiled kernel; if Numba cannot compile it, warn once per ``name`` and run the reference."""
    if name in _fallen_back:
        return reference(*args)
    try:
        if _is_parallel(jitted) and not _parallel_threadsafe():
            with _parallel_launch_lock:
                return jitted(*args)
        return jitted(*args)
    except NumbaError as exc:
        with _state_lock:
            first = name not in _fallen_back
            _fallen_back.add(name)
        if first:
            summary = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.warning(
                "kernel %r could not be compiled by Numba (%s: %s); using the NumPy reference instead",
                name,
                type(exc).__name__,
                summary,
            )
        return reference(*args)
