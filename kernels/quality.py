"""Image quality: mean SSIM of two 8-bit greyscale images (pagereel uses the luma plane of frames).

The definition is scikit-image's default ``structural_similarity``: a 7x7 uniform window, sample
covariance (``N / (N - 1)``), ``K1 = 0.01``, ``K2 = 0.03``, and the mean taken over the windows
that lie wholly inside the image. Window sums are exact integers on both sides; only the
per-window formula runs in floating point, with the same operations in the same order, so the
kernel and its reference agree to rounding of the final sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels._jit import call_with_fallback, jit, prange

K1 = 0.01
K2 = 0.03
DEFAULT_WINDOW = 7


def _check_plane(name: str, array: Any) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [height, width] plane, got shape {array.shape}")
    return np.ascontiguousarray(array)


def _constants(win: int, data_range: float) -> tuple[float, float, float, float]:
    count = float(win * win)
    return count, (K1 * data_range) ** 2, (K2 * data_range) ** 2, count / (count - 1.0)


@jit(parallel=True)
def _ssim_row_sums(x, y, win, c1, c2, cov_norm, out):  # pragma: no cover - compiled
    h, w = x.shape
    rows = h - win + 1
    cols = w - win + 1
    count = float(win * win)
    for i in prange(rows):
        # Column sums over the window's rows, then a running sum along the row.
        sx = np.zeros(w, np.int64)
        sy = np.zeros(w, np.int64)
        sxx = np.zeros(w, np.int64)
        syy = np.zeros(w, np.int64)
        sxy = np.zeros(w, np.int64)
        for r in range(i, i + win):
            for j in range(w):
                a = np.int64(x[r, j])
                b = np.int64(y[r, j])
                sx[j] += a
                sy[j] += b
                sxx[j] += a * a
                syy[j] += b * b
                sxy[j] += a * b
        ax = np.int64(0)
        ay = np.int64(0)
        axx = np.int64(0)
        ayy = np.int64(0)
        axy = np.int64(0)
        for j in range(win):
            ax += sx[j]
            ay += sy[j]
            axx += sxx[j]
            ayy += syy[j]
            axy += sxy[j]
        total = 0.0
        for j in range(cols):
            if j > 0:
                k = j + win - 1
                ax += sx[k] - sx[j - 1]
                ay += sy[k] - sy[j - 1]
                axx += sxx[k] - sxx[j - 1]
                ayy += syy[k] - syy[j - 1]
                axy += sxy[k] - sxy[j - 1]
            ux = ax / count
            uy = ay / count
            vx = cov_norm * (axx / count - ux * ux)
            vy = cov_norm * (ayy / count - uy * uy)
            vxy = cov_norm * (axy / count - ux * uy)
            total += ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        out[i] = total


def _window_sums(a: np.ndarray, win: int) -> np.ndarray:
    """Exact sums of every ``win`` x ``win`` window lying inside ``a`` (int64)."""
    table = np.zeros((a.shape[0] + 1, a.shape[1] + 1), np.int64)
    table[1:, 1:] = a.astype(np.int64).cumsum(0).cumsum(1)
    return table[win:, win:] - table[:-win, win:] - table[win:, :-win] + table[:-win, :-win]


def _ssim_row_sums_reference(x, y, win, c1, c2, cov_norm, out) -> None:
    count = float(win * win)
    xi = x.astype(np.int64)
    yi = y.astype(np.int64)
    ux = _window_sums(xi, win) / count
    uy = _window_sums(yi, win) / count
    vx = cov_norm * (_window_sums(xi * xi, win) / count - ux * ux)
    vy = cov_norm * (_window_sums(yi * yi, win) / count - uy * uy)
    vxy = cov_norm * (_window_sums(xi * yi, win) / count - ux * uy)
    s = ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    out[:] = s.sum(axis=1)


def _prepare(x: Any, y: Any, win_size: int) -> tuple[np.ndarray, np.ndarray]:
    x = _check_plane("x", x)
    y = _check_plane("y", y)
    if x.shape != y.shape:
        raise ValueError(f"the images differ in shape: {x.shape} and {y.shape}")
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be an odd number >= 3, got {win_size}")
    if min(x.shape) < win_size:
        raise ValueError(f"images of shape {x.shape} are smaller than the {win_size}x{win_size} window")
    return x, y


def _mean_ssim(row_sums_fn, x: Any, y: Any, win_size: int, data_range: float, *, kernel: bool) -> float:
    x, y = _prepare(x, y, win_size)
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    count, c1, c2, cov_norm = _constants(win_size, float(data_range))
    out = np.empty(x.shape[0] - win_size + 1, np.float64)
    args = (x, y, win_size, c1, c2, cov_norm, out)
    if kernel:
        call_with_fallback(row_sums_fn, _ssim_row_sums_reference, *args, name="ssim")
    else:
        row_sums_fn(*args)
    return float(out.sum() / (out.size * (x.shape[1] - win_size + 1)))


def ssim(x: np.ndarray, y: np.ndarray, win_size: int = DEFAULT_WINDOW, data_range: float = 255.0) -> float:
    """Mean structural similarity of two uint8 ``[height, width]`` planes (1.0 when identical)."""
    return _mean_ssim(_ssim_row_sums, x, y, win_size, data_range, kernel=True)


def ssim_reference(x: np.ndarray, y: np.ndarray, win_size: int = DEFAULT_WINDOW, data_range: float = 255.0) -> float:
    """NumPy reference of :func:`ssim`: the test oracle and the fallback."""
    return _mean_ssim(_ssim_row_sums_reference, x, y, win_size, data_range, kernel=False)
