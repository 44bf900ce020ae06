"""The one place that says how kernels are compiled, and what happens when they cannot be.

Every kernel is ``@jit()`` over a private function, with a NumPy reference beside it. If Numba
is missing, disabled (``NUMBA_DISABLE_JIT=1``) or fails to compile a kernel, the reference runs
instead and one warning is logged per kernel.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pagereel.kernels")

#: One switch for fast-math across all kernels: results must match the references, so it is off.
FASTMATH = False

try:
    import numba
    from numba import prange
    from numba.core.errors import NumbaError

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency; this guards broken installs
    numba = None
    prange = range
    NUMBA_AVAILABLE = False

    class NumbaError(Exception):  # type: ignore[no-redef]
        """Stands in for numba's error type when numba is absent."""


_warned: set[str] = set()


def jit(*, parallel: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``numba.njit(cache=True, nogil=True, ...)``, or the plain function when numba is unavailable."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not NUMBA_AVAILABLE:
            return fn
        return numba.njit(cache=True, nogil=True, parallel=parallel, fastmath=FASTMATH)(fn)

    return wrap


def kernel_backend() -> str:
    """"numba" when kernels are compiled, "numpy" when the references run."""
    if not NUMBA_AVAILABLE or os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return "numpy"
    return "numba" if not _warned else "numba+numpy"


def call_with_fallback(jitted: Callable[..., Any], reference: Callable[..., Any], *args: Any, name: str) -> Any:
    """Run the compiled kernel; if Numba cannot compile it, warn once and run the NumPy reference."""
    if name in _warned:
        return reference(*args)
    try:
        return jitted(*args)
    except NumbaError as exc:
        _warned.add(name)
        log.warning("kernel %s could not be compiled (%s); using the NumPy reference", name, type(exc).__name__)
        return reference(*args)
