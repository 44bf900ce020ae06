"""Frame kernels: Ken Burns resampling, RGBA "over", crossfades and RGB -> BT.709 yuv420p.

Frames are C-contiguous ``uint8`` arrays, ``[height, width, channels]``. Every kernel does its
per-pixel work in integers (fixed-point weights, ``(x * a + 127) // 255`` style rounding), and its
NumPy reference does the same arithmetic, so the two agree to the last bit; only the O(width +
height) sampling tables and the per-call weights are computed in floating point, with the same
operations in the same order on both sides.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kernels._jit import call_with_fallback, jit, prange

#: Fixed-point bits of the bilinear weights: positions are resolved to 1/2048 of a source pixel.
_BILINEAR_BITS = 11
_BILINEAR_ONE = 1 << _BILINEAR_BITS
#: Fixed-point bits of the crossfade weight.
_FADE_BITS = 16
#: Output rows per parallel task of Ken Burns: a band reuses blended source rows between its rows.
_KEN_BURNS_BAND = 32
_FADE_ONE = 1 << _FADE_BITS
#: Fixed-point bits of the colour-conversion coefficients.
_YUV_BITS = 16

# --- validation ---------------------------------------------------------------------------------


def _check_uint8(name: str, array: Any, *, writable: bool = False) -> np.ndarray:
    """Raise unless ``array`` is a C-contiguous uint8 numpy array (and writable, if asked)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    if writable and not array.flags.writeable:
        raise ValueError(f"{name} must be writable")
    return array


def _check_image(name: str, array: Any, channels: int = 3, *, writable: bool = False) -> np.ndarray:
    """Raise unless ``array`` is a C-contiguous uint8 ``[height, width, channels]`` array."""
    _check_uint8(name, array, writable=writable)
    if array.ndim != 3 or array.shape[2] != channels:
        raise ValueError(f"{name} must have shape [height, width, {channels}], got {array.shape}")
    return array


def _check_unit(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


# --- Ken Burns ----------------------------------------------------------------------------------


def cover_window(
    img_w: int, img_h: int, out_w: int, out_h: int, cx: float, cy: float, zoom: float = 1.0
) -> tuple[float, float, float, float]:
    """The ``(x0, y0, win_w, win_h)`` window of an image to show in an ``out_w x out_h`` frame.

    The window has the frame's aspect ratio; at ``zoom`` 1 it is the largest such window that fits
    in the image ("cover"), and ``zoom`` > 1 shrinks it by that factor. It is centred at
    ``(cx, cy)`` (image pixel coordinates, pixel centres at ``i + 0.5``), then moved the least
    distance that keeps it inside the image.
    """
    for name, value in (("img_w", img_w), ("img_h", img_h), ("out_w", out_w), ("out_h", out_h)):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if not (math.isfinite(zoom) and zoom >= 1.0):
        raise ValueError(f"zoom must be a finite number >= 1, got {zoom}")
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise ValueError(f"the centre must be finite, got ({cx}, {cy})")
    aspect = out_w / out_h
    if img_w / img_h > aspect:  # image wider than the frame: full height, cropped sides
        cover_w, cover_h = img_h * aspect, float(img_h)
    else:
        cover_w, cover_h = float(img_w), img_w / aspect
    win_w, win_h = cover_w / zoom, cover_h / zoom
    x0 = min(max(cx - win_w / 2.0, 0.0), img_w - win_w)
    y0 = min(max(cy - win_h / 2.0, 0.0), img_h - win_h)
    return x0, y0, win_w, win_h


def ease_in_out(t: float) -> float:
    """Smoothstep ``3t^2 - 2t^3``: 0 at 0, 1 at 1, with zero speed at both ends."""
    t = min(max(float(t), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def ken_burns_window(
    img_w: int,
    img_h: int,
    out_w: int,
    out_h: int,
    t: float,
    zoom_from: float = 1.0,
    zoom_to: float = 1.15,
    pan: tuple[float, float] = (0.0, 0.0),
) -> tuple[float, float, float, float]:
    """The Ken Burns window ``(x0, y0, win_w, win_h)`` at time ``t`` in [0, 1] of a slow zoom and pan.

    Zoom goes from ``zoom_from`` to ``zoom_to`` (both >= 1) and the centre travels ``pan = (dx, dy)``
    (fractions of the image's width and height), symmetric about the image centre, both with an
    ease-in-out. Pass the result to :func:`ken_burns`: ``ken_burns(image, out, *window)``.
    """
    t = _check_unit("t", t)
    e = ease_in_out(t)
    zoom = zoom_from + (zoom_to - zoom_from) * e
    if not (zoom_from >= 1.0 and zoom_to >= 1.0):
        raise ValueError(f"zoom_from and zoom_to must be >= 1, got {zoom_from} and {zoom_to}")
    dx, dy = pan
    cx = img_w / 2.0 + dx * img_w * (e - 0.5)
    cy = img_h / 2.0 + dy * img_h * (e - 0.5)
    return cover_window(img_w, img_h, out_w, out_h, cx, cy, zoom)


@jit()
def _sample_axis(start, length, n_out, n_src):  # pragma: no cover - compiled
    """For each output pixel along one axis: the two source pixels (clamped) and the second one's weight."""
    idx0 = np.empty(n_out, np.int64)
    idx1 = np.empty(n_out, np.int64)
    weight = np.empty(n_out, np.int64)
    step = length / n_out
    for j in range(n_out):
        s = start + (j + 0.5) * step - 0.5  # centre of output pixel j, in source pixel-index space
        f = math.floor(s)
        weight[j] = int(math.floor((s - f) * _BILINEAR_ONE + 0.5))
        i0 = int(f)
        idx0[j] = min(max(i0, 0), n_src - 1)
        idx1[j] = min(max(i0 + 1, 0), n_src - 1)
    return idx0, idx1, weight


@jit()
def _ken_burns_row(src, xa3, xb3, xw, tmp):  # pragma: no cover - compiled
    """One source row resampled across: ``tmp`` gets each output pixel's unrounded horizontal blend."""
    one = np.int32(_BILINEAR_ONE)
    for j in range(xa3.shape[0]):
        c0, c1 = xa3[j], xb3[j]
        b = np.int32(xw[j])
        a = one - b
        for c in range(3):
            tmp[3 * j + c] = np.int32(src[c0 + c]) * a + np.int32(src[c1 + c]) * b


@jit(parallel=True)
def _ken_burns_kernel(image, out, x0, y0, win_w, win_h):  # pragma: no cover - compiled
    # Separable, in the reference's order: each source row is blended across once (and reused by the
    # next output row when both read it), then each output row blends its two rows down. int32 is
    # enough: 255 * 2048 * 2048 + 2^21 < 2^31.
    h, w = out.shape[0], out.shape[1]
    xa, xb, xw = _sample_axis(x0, win_w, w, image.shape[1])
    ya, yb, yw = _sample_axis(y0, win_h, h, image.shape[0])
    xa3 = (xa * 3).astype(np.int32)
    xb3 = (xb * 3).astype(np.int32)
    src = image.reshape(image.shape[0], -1)
    dst = out.reshape(h, -1)
    half = np.int32(1 << (2 * _BILINEAR_BITS - 1))
    one = np.int32(_BILINEAR_ONE)
    step = _KEN_BURNS_BAND
    chunks = (h + step - 1) // step
    for chunk in prange(chunks):
        top = np.empty(w * 3, np.int32)
        bottom = np.empty(w * 3, np.int32)
        top_row, bottom_row = -1, -1
        for i in range(chunk * step, min(h, (chunk + 1) * step)):
            r0, r1 = ya[i], yb[i]
            if r0 == bottom_row and r0 != top_row:  # moving down: the old bottom row is the new top
                top, bottom = bottom, top
                top_row, bottom_row = bottom_row, top_row
            if top_row != r0:
                _ken_burns_row(src[r0], xa3, xb3, xw, top)
                top_row = r0
            if bottom_row != r1:
                if r1 == top_row:
                    bottom[:] = top
                else:
                    _ken_burns_row(src[r1], xa3, xb3, xw, bottom)
                bottom_row = r1
            wy1 = np.int32(yw[i])
            wy0 = one - wy1
            row = dst[i]
            for k in range(w * 3):
                row[k] = (top[k] * wy0 + bottom[k] * wy1 + half) >> np.int32(2 * _BILINEAR_BITS)


def _sample_axis_reference(start: float, length: float, n_out: int, n_src: int):
    s = start + (np.arange(n_out) + 0.5) * (length / n_out) - 0.5
    f = np.floor(s)
    weight = np.floor((s - f) * _BILINEAR_ONE + 0.5).astype(np.int64)
    i0 = f.astype(np.int64)
    return np.clip(i0, 0, n_src - 1), np.clip(i0 + 1, 0, n_src - 1), weight


def ken_burns_reference(
    image: np.ndarray, out: np.ndarray, x0: float, y0: float, win_w: float, win_h: float
) -> None:
    """NumPy reference of :func:`ken_burns` (the same fixed-point bilinear sampling)."""
    h, w = out.shape[:2]
    xa, xb, xw = _sample_axis_reference(x0, win_w, w, image.shape[1])
    ya, yb, yw = _sample_axis_reference(y0, win_h, h, image.shape[0])
    src = image.astype(np.int64)
    wx1, wy1 = xw[None, :, None], yw[:, None, None]
    wx0, wy0 = _BILINEAR_ONE - wx1, _BILINEAR_ONE - wy1
    top = src[ya][:, xa] * wx0 + src[ya][:, xb] * wx1
    bottom = src[yb][:, xa] * wx0 + src[yb][:, xb] * wx1
    out[...] = (top * wy0 + bottom * wy1 + (1 << (2 * _BILINEAR_BITS - 1))) >> (2 * _BILINEAR_BITS)


def ken_burns(image: np.ndarray, out: np.ndarray, x0: float, y0: float, win_w: float, win_h: float) -> np.ndarray:
    """Bilinear resample of the window ``(x0, y0, win_w, win_h)`` of ``image`` (uint8[H, W, 3]) into ``out``.

    ``out`` (uint8[h, w, 3]) is overwritten and returned. The window is in image pixel units (its
    left edge at ``x0``, not a pixel centre); samples beyond the image take the nearest edge pixel.
    Get windows from :func:`ken_burns_window` or :func:`cover_window`.
    """
    _check_image("image", image)
    _check_image("out", out, writable=True)
    x0, y0, win_w, win_h = float(x0), float(y0), float(win_w), float(win_h)
    if not all(math.isfinite(v) for v in (x0, y0, win_w, win_h)):
        raise ValueError(f"window must be finite, got {(x0, y0, win_w, win_h)}")
    if win_w <= 0 or win_h <= 0:
        raise ValueError(f"window width and height must be positive, got {win_w} x {win_h}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    if out.size:
        call_with_fallback(
            _ken_burns_kernel, ken_burns_reference, image, out, x0, y0, win_w, win_h, name="ken_burns"
        )
    return out


@jit()
def _plane_columns(xa, xb, xw):  # pragma: no cover - compiled
    """Horizontal tables of a plane resample: ``(lo, span, first, weight)``.

    Output pixel j blends source columns ``lo + first[j]`` and the one after it, the second by
    ``weight[j]``. Sampling tables either step to the next column or, clamped at an edge, repeat
    one, and a repeated column is the same as weight 0, so one index and one weight say it all
    (half the table loads per pixel). Indices are unsigned: no negative-index check per load.
    """
    w = xa.shape[0]
    lo = xa[0]  # the tables rise with j, so the window reads columns xa[0] .. xb[-1]
    first = np.empty(w, np.uint32)
    weight = np.empty(w, np.int32)
    for j in range(w):
        first[j] = xa[j] - lo
        weight[j] = xw[j] if xb[j] != xa[j] else 0
    return lo, xb[w - 1] + 1 - lo, first, weight


@jit()
def _blend_down(top, bottom, wy1, column):  # pragma: no cover - compiled
    one = np.int32(_BILINEAR_ONE)
    wy0 = one - wy1
    for c in range(top.shape[0]):
        column[c] = np.int32(top[c]) * wy0 + np.int32(bottom[c]) * wy1


@jit()
def _plane_band(plane, out, start, end, lo, span, first, weight, ya, yb, yw):  # pragma: no cover - compiled
    """Output rows ``start`` to ``end`` of a plane resample, from the tables of ``_plane_columns`` and ``_sample_axis``.

    Vertical pass first, then horizontal: the blend is exact integer arithmetic with no rounding
    until the end, so the order does not change a bit (every partial sum stays below
    255 * 2048 * 2048 + 2^21 < 2^31). Blending down first runs over contiguous source columns,
    which vectorizes, and leaves one gather pass per output row instead of one per source row;
    two output rows share each pass's table loads. a * wa + b * wb is written a * one + (b - a) * wb.
    """
    half = np.int32(1 << (2 * _BILINEAR_BITS - 1))
    one = np.int32(_BILINEAR_ONE)
    shift = np.int32(2 * _BILINEAR_BITS)
    w = out.shape[1]
    # One spare column: a clamped last pixel reads past the span, with weight 0.
    upper = np.zeros(span + 1, np.int32)
    lower = np.zeros(span + 1, np.int32)
    for i in range(start, end, 2):
        i2 = min(i + 1, end - 1)  # an odd last row is drawn twice, to the same bits
        _blend_down(plane[ya[i], lo : lo + span], plane[yb[i], lo : lo + span], np.int32(yw[i]), upper)
        _blend_down(plane[ya[i2], lo : lo + span], plane[yb[i2], lo : lo + span], np.int32(yw[i2]), lower)
        row, row2 = out[i], out[i2]
        for j in range(w):
            k = first[j]
            b = weight[j]
            a = upper[k]
            a2 = lower[k]
            row[j] = (a * one + (upper[k + np.uint32(1)] - a) * b + half) >> shift
            row2[j] = (a2 * one + (lower[k + np.uint32(1)] - a2) * b + half) >> shift


@jit()
def _column_weights(first, weight, span):  # pragma: no cover - compiled
    """The weight of the output pixel that starts at each source column, and whether there is one only.

    When no two output pixels start at the same column with different weights (the window is not
    enlarged), a row can be blended across at every column, contiguously, and its pixels then picked.
    """
    by_column = np.full(span + 1, -1, np.int32)
    for j in range(first.shape[0]):
        k = first[j]
        if by_column[k] != -1 and by_column[k] != weight[j]:
            return by_column, False
        by_column[k] = weight[j]
    for k in range(span + 1):
        by_column[k] = max(by_column[k], 0)
    return by_column, True


@jit()
def _plane_band_picked(plane, out, start, end, lo, span, first, by_column, ya, yb, yw):  # pragma: no cover - compiled
    """:func:`_plane_band` when ``by_column`` is valid: each row pair is blended across at all ``span``
    columns (contiguous, it vectorizes), then each output pixel is one byte picked from that row: the
    scalar gather loop does a load and a store per pixel instead of the whole blend (1.3x per frame).
    """
    half = np.int32(1 << (2 * _BILINEAR_BITS - 1))
    one = np.int32(_BILINEAR_ONE)
    shift = np.int32(2 * _BILINEAR_BITS)
    upper = np.zeros(span + 1, np.int32)
    lower = np.zeros(span + 1, np.int32)
    across_upper = np.empty(span, np.uint8)
    across_lower = np.empty(span, np.uint8)
    for i in range(start, end, 2):
        i2 = min(i + 1, end - 1)  # an odd last row is drawn twice, to the same bits
        _blend_down(plane[ya[i], lo : lo + span], plane[yb[i], lo : lo + span], np.int32(yw[i]), upper)
        _blend_down(plane[ya[i2], lo : lo + span], plane[yb[i2], lo : lo + span], np.int32(yw[i2]), lower)
        for k in range(span):
            b = by_column[k]
            a = upper[k]
            across_upper[k] = (a * one + (upper[k + 1] - a) * b + half) >> shift
            a = lower[k]
            across_lower[k] = (a * one + (lower[k + 1] - a) * b + half) >> shift
        row, row2 = out[i], out[i2]
        for j in range(out.shape[1]):
            row[j] = across_upper[first[j]]
            row2[j] = across_lower[first[j]]


@jit(parallel=True)
def _ken_burns_plane_kernel(plane, out, x0, y0, win_w, win_h):  # pragma: no cover - compiled
    # Each band is drawn by a plain compiled function, not inline in the parallel loop: the gather
    # loop, most of the time, compiles to tighter code there (1.2x per frame, single-threaded).
    h, w = out.shape[0], out.shape[1]
    xa, xb, xw = _sample_axis(x0, win_w, w, plane.shape[1])
    ya, yb, yw = _sample_axis(y0, win_h, h, plane.shape[0])
    lo, span, first, weight = _plane_columns(xa, xb, xw)
    by_column, picked = _column_weights(first, weight, span)
    step = _KEN_BURNS_BAND
    for chunk in prange((h + step - 1) // step):
        start, end = chunk * step, min(h, (chunk + 1) * step)
        if picked:
            _plane_band_picked(plane, out, start, end, lo, span, first, by_column, ya, yb, yw)
        else:
            _plane_band(plane, out, start, end, lo, span, first, weight, ya, yb, yw)


def ken_burns_plane_reference(
    plane: np.ndarray, out: np.ndarray, x0: float, y0: float, win_w: float, win_h: float
) -> None:
    """NumPy reference of :func:`ken_burns_plane`: :func:`ken_burns_reference` on one channel."""
    ken_burns_reference(plane[..., None], out[..., None], x0, y0, win_w, win_h)


def ken_burns_plane(
    plane: np.ndarray, out: np.ndarray, x0: float, y0: float, win_w: float, win_h: float
) -> np.ndarray:
    """:func:`ken_burns` of one image plane (uint8[H, W]) into ``out`` (uint8[h, w]); returns ``out``.

    Resampling a picture's Y, U and V planes this way costs half of resampling its RGB (chroma has
    a quarter of the pixels) and needs no colour conversion per frame afterwards.
    """
    for name, array in (("plane", plane), ("out", out)):
        _check_uint8(name, array, writable=name == "out")
        if array.ndim != 2:
            raise ValueError(f"{name} must have shape [height, width], got {array.shape}")
    x0, y0, win_w, win_h = float(x0), float(y0), float(win_w), float(win_h)
    if not all(math.isfinite(v) for v in (x0, y0, win_w, win_h)):
        raise ValueError(f"window must be finite, got {(x0, y0, win_w, win_h)}")
    if win_w <= 0 or win_h <= 0:
        raise ValueError(f"window width and height must be positive, got {win_w} x {win_h}")
    if plane.size == 0:
        raise ValueError(f"plane must not be empty, got shape {plane.shape}")
    if out.size:
        call_with_fallback(_ken_burns_plane_kernel, ken_burns_plane_reference, plane, out, x0, y0, win_w, win_h,
                           name="ken_burns_plane")
    return out


def _placement(x: Any, y: Any, layer_shape: tuple[int, ...], dst_shape: tuple[int, ...]):
    """Where a layer placed at ``(x, y)`` lands once clipped: ``(dx, dy, lx, ly, width, height)``.

    ``dx, dy`` is the first covered pixel of the destination, ``lx, ly`` the matching pixel of the
    layer; width or height is zero or less when nothing of the layer is on the destination.
    """
    if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, int | np.integer) or not isinstance(
        y, int | np.integer
    ):
        raise TypeError(f"x and y must be integers, got {x!r} and {y!r}")
    x, y = int(x), int(y)
    dx, dy = max(x, 0), max(y, 0)
    width = min(x + layer_shape[1], dst_shape[1]) - dx
    height = min(y + layer_shape[0], dst_shape[0]) - dy
    return dx, dy, dx - x, dy - y, width, height


# --- alpha over ---------------------------------------------------------------------------------


@jit()
def _div255(v):  # pragma: no cover - compiled
    """``v // 255`` for 0 <= v <= 65534, in shifts: branch-free, so the pixel loop vectorizes."""
    return (v + np.int32(1) + (v >> np.int32(8))) >> np.int32(8)


@jit(parallel=True)
def _alpha_over_kernel(dst, layer, dx, dy, lx, ly, cw, ch, opacity):  # pragma: no cover - compiled
    # int32 throughout (every product fits: 255 * 255 + 127), twice the SIMD lanes of numba's default int64.
    # Rows sliced to the clipped span, so pixels are indexed by the loop counter (see _plane_over_kernel).
    level = np.int32(opacity)
    for r in prange(ch):
        out_row = dst[dy + r, dx : dx + cw]
        src_row = layer[ly + r, lx : lx + cw]
        for k in range(cw):
            a = _div255(np.int32(src_row[k, 3]) * level + np.int32(127))
            keep = np.int32(255) - a
            for c in range(3):
                blend = np.int32(src_row[k, c]) * a + np.int32(out_row[k, c]) * keep + np.int32(127)
                out_row[k, c] = _div255(blend)


def alpha_over_reference(
    dst: np.ndarray, layer: np.ndarray, dx: int, dy: int, lx: int, ly: int, cw: int, ch: int, opacity: int
) -> None:
    """NumPy reference of the clipped "over" that :func:`alpha_over` dispatches (opacity in 0..255)."""
    region = dst[dy : dy + ch, dx : dx + cw]
    src = layer[ly : ly + ch, lx : lx + cw].astype(np.int64)
    a = (src[..., 3:4] * opacity + 127) // 255
    region[...] = (src[..., :3] * a + region.astype(np.int64) * (255 - a) + 127) // 255


def alpha_over(dst: np.ndarray, layer: np.ndarray, x: int, y: int, opacity: float = 1.0) -> np.ndarray:
    """Composite an RGBA ``layer`` (uint8[lh, lw, 4], straight alpha) over ``dst`` (uint8[h, w, 3]) in place.

    The layer's top-left corner goes at ``(x, y)``, which may be negative or past the frame: the
    parts outside are clipped. Each pixel's alpha is scaled by ``opacity`` in [0, 1] (quantized to
    1/255). Returns ``dst``.
    """
    _check_image("dst", dst, writable=True)
    _check_image("layer", layer, channels=4)
    dx, dy, lx, ly, cw, ch = _placement(x, y, layer.shape, dst.shape)
    level = int(round(_check_unit("opacity", opacity) * 255))
    if cw > 0 and ch > 0 and level > 0:
        call_with_fallback(
            _alpha_over_kernel, alpha_over_reference, dst, layer, dx, dy, lx, ly, cw, ch, level, name="alpha_over"
        )
    return dst


# --- plane over ---------------------------------------------------------------------------------


@jit(parallel=True)
def _plane_over_kernel(dst, src, alpha, dx, dy, lx, ly, cw, ch, opacity):  # pragma: no cover - compiled
    # alpha_over's arithmetic on one plane, its alpha in a plane of its own.
    # Rows are sliced to the clipped span first: indexed by the loop counter alone, loads are
    # contiguous and the loop vectorizes (``lx + k`` needs a negative-index check per pixel, which
    # kept it scalar at about 4x the time).
    level = np.int32(opacity)
    for r in prange(ch):
        out_row = dst[dy + r, dx : dx + cw]
        src_row = src[ly + r, lx : lx + cw]
        alpha_row = alpha[ly + r, lx : lx + cw]
        for k in range(cw):
            a = _div255(np.int32(alpha_row[k]) * level + np.int32(127))
            blend = np.int32(src_row[k]) * a + np.int32(out_row[k]) * (np.int32(255) - a) + np.int32(127)
            out_row[k] = _div255(blend)


def plane_over_reference(
    dst: np.ndarray, src: np.ndarray, alpha: np.ndarray, dx: int, dy: int, lx: int, ly: int, cw: int, ch: int,
    opacity: int,
) -> None:
    """NumPy reference of the clipped "over" that :func:`plane_over` dispatches (opacity in 0..255)."""
    region = dst[dy : dy + ch, dx : dx + cw]
    a = (alpha[ly : ly + ch, lx : lx + cw].astype(np.int64) * opacity + 127) // 255
    src_part = src[ly : ly + ch, lx : lx + cw].astype(np.int64)
    region[...] = (src_part * a + region.astype(np.int64) * (255 - a) + 127) // 255


def plane_over(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray, x: int, y: int, opacity: float = 1.0) -> np.ndarray:
    """:func:`alpha_over` on one plane: ``src`` (uint8[lh, lw]) with ``alpha`` (same shape) over ``dst`` at ``(x, y)``.

    The same clipping, rounding and opacity as :func:`alpha_over`, so a Y, U or V plane of a layer
    blends exactly like that channel would in RGB. Returns ``dst``.
    """
    for name, array in (("dst", dst), ("src", src), ("alpha", alpha)):
        _check_uint8(name, array, writable=name == "dst")
        if array.ndim != 2:
            raise ValueError(f"{name} must have shape [height, width], got {array.shape}")
    if src.shape != alpha.shape:
        raise ValueError(f"src and alpha must have one shape, got {src.shape} and {alpha.shape}")
    dx, dy, lx, ly, cw, ch = _placement(x, y, src.shape, dst.shape)
    level = int(round(_check_unit("opacity", opacity) * 255))
    if cw > 0 and ch > 0 and level > 0:
        call_with_fallback(_plane_over_kernel, plane_over_reference, dst, src, alpha, dx, dy, lx, ly, cw, ch, level,
                           name="plane_over")
    return dst


# --- crossfade ----------------------------------------------------------------------------------


@jit(parallel=True)
def _crossfade_kernel(a, b, out, weight):  # pragma: no cover - compiled
    keep = _FADE_ONE - weight
    half = 1 << (_FADE_BITS - 1)
    for r in prange(a.shape[0]):
        for k in range(a.shape[1]):
            out[r, k] = (np.int64(a[r, k]) * keep + np.int64(b[r, k]) * weight + half) >> _FADE_BITS


def crossfade_reference(a: np.ndarray, b: np.ndarray, out: np.ndarray, weight: int) -> None:
    """NumPy reference of :func:`crossfade` (``weight`` is ``t`` in 1/65536 steps)."""
    blend = a.astype(np.int64) * (_FADE_ONE - weight) + b.astype(np.int64) * weight
    out[...] = (blend + (1 << (_FADE_BITS - 1))) >> _FADE_BITS


def crossfade(a: np.ndarray, b: np.ndarray, out: np.ndarray, t: float) -> np.ndarray:
    """``out = a * (1 - t) + b * t``, rounded, for C-contiguous uint8 arrays of one shape; ``t`` in [0, 1].

    ``t`` 0 and 1 give ``a`` and ``b`` exactly; ``out`` may be ``a`` or ``b``. Returns ``out``.
    """
    for name, array in (("a", a), ("b", b), ("out", out)):
        _check_uint8(name, array, writable=name == "out")
    if not a.shape == b.shape == out.shape:
        raise ValueError(f"a, b and out must have one shape, got {a.shape}, {b.shape} and {out.shape}")
    weight = int(round(_check_unit("t", t) * _FADE_ONE))
    if out.size:
        rows = a.shape[0] if a.ndim > 1 else 1
        a2, b2, out2 = a.reshape(rows, -1), b.reshape(rows, -1), out.reshape(rows, -1)
        call_with_fallback(_crossfade_kernel, crossfade_reference, a2, b2, out2, weight, name="crossfade")
    return out


# --- RGB -> yuv420p (BT.709, limited range) ------------------------------------------------------


def _bt709_coefficients() -> np.ndarray:
    """Fixed-point ``[[Y], [Cb], [Cr]] x [R, G, B]`` of BT.709 limited range (16-235 luma, 16-240 chroma)."""
    kr, kb = 0.2126, 0.0722
    kg = 1.0 - kr - kb
    luma, chroma = 219.0 / 255.0, 224.0 / 255.0
    real = np.array(
        [
            [luma * kr, luma * kg, luma * kb],
            [-chroma * kr / (2 * (1 - kb)), -chroma * kg / (2 * (1 - kb)), chroma / 2],
            [chroma / 2, -chroma * kg / (2 * (1 - kr)), -chroma * kb / (2 * (1 - kr))],
        ]
    )
    fixed = np.round(real * (1 << _YUV_BITS)).astype(np.int64)
    # Chroma rows sum to 0 exactly, so every grey maps to 128 exactly.
    fixed[1, 1] = -(fixed[1, 0] + fixed[1, 2])
    fixed[2, 1] = -(fixed[2, 0] + fixed[2, 2])
    return fixed


#: BT.709 limited-range coefficients in 1/65536 units, shared by the kernel and its reference.
BT709_FIXED = _bt709_coefficients()


@jit(parallel=True)
def _rgb_to_yuv420p_kernel(rgb, y, u, v, coef):  # pragma: no cover - compiled
    h, w = rgb.shape[0], rgb.shape[1]
    luma_bias = (16 << _YUV_BITS) + (1 << (_YUV_BITS - 1))
    # Chroma sums four pixels, so two more fractional bits.
    chroma_bias = (128 << (_YUV_BITS + 2)) + (1 << (_YUV_BITS + 1))
    for ci in prange(h // 2):
        for row in range(2 * ci, 2 * ci + 2):
            for j in range(w):
                r = np.int64(rgb[row, j, 0])
                g = np.int64(rgb[row, j, 1])
                b = np.int64(rgb[row, j, 2])
                y[row, j] = (coef[0, 0] * r + coef[0, 1] * g + coef[0, 2] * b + luma_bias) >> _YUV_BITS
        for cj in range(w // 2):
            r = np.int64(0)
            g = np.int64(0)
            b = np.int64(0)
            for row in range(2 * ci, 2 * ci + 2):
                for j in range(2 * cj, 2 * cj + 2):
                    r += rgb[row, j, 0]
                    g += rgb[row, j, 1]
                    b += rgb[row, j, 2]
            u[ci, cj] = (coef[1, 0] * r + coef[1, 1] * g + coef[1, 2] * b + chroma_bias) >> (_YUV_BITS + 2)
            v[ci, cj] = (coef[2, 0] * r + coef[2, 1] * g + coef[2, 2] * b + chroma_bias) >> (_YUV_BITS + 2)


def rgb_to_yuv420p_reference(
    rgb: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray, coef: np.ndarray = BT709_FIXED
) -> None:
    """NumPy reference of :func:`rgb_to_yuv420p` (the same fixed-point arithmetic)."""
    h, w = rgb.shape[:2]
    px = rgb.astype(np.int64)
    y[:, :w] = (px @ coef[0] + (16 << _YUV_BITS) + (1 << (_YUV_BITS - 1))) >> _YUV_BITS
    quad = px.reshape(h // 2, 2, w // 2, 2, 3).sum(axis=(1, 3))
    bias = (128 << (_YUV_BITS + 2)) + (1 << (_YUV_BITS + 1))
    u[:, : w // 2] = (quad @ coef[1] + bias) >> (_YUV_BITS + 2)
    v[:, : w // 2] = (quad @ coef[2] + bias) >> (_YUV_BITS + 2)


def rgb_to_yuv420p(rgb: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Convert ``rgb`` (uint8[h, w, 3], h and w even) to BT.709 limited-range yuv420p planes, in place.

    ``y`` is uint8[h, ystride] and ``u``, ``v`` uint8[h/2, stride], each stride at least the plane's
    width: only the first w (or w/2) columns are written, so padded frame planes can be passed as
    they are. Luma is ``16 + 219 * (0.2126 R + 0.7152 G + 0.0722 B) / 255``; chroma is taken from the
    mean of each 2x2 block. Coefficients are rounded to 1/65536, so a level may differ by one from
    rounding the float formula where that lands within ~0.01 of a half.

    Writable views of an ``av.VideoFrame(w, h, "yuv420p")``'s planes (PyAV 18 planes export a
    writable buffer; ``frame.make_writable()`` first, in case an encoder still holds the buffer)::

        frame.make_writable()
        y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size) for p in frame.planes)

    :func:`rgb_frame_to_av` does all of this.
    """
    _check_image("rgb", rgb)
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs an even width and height, got {w} x {h}")
    for name, plane, rows, cols in (("y", y, h, w), ("u", u, h // 2, w // 2), ("v", v, h // 2, w // 2)):
        _check_uint8(name, plane, writable=True)
        if plane.ndim != 2 or plane.shape[0] != rows or plane.shape[1] < cols:
            raise ValueError(f"plane {name} must have shape [{rows}, >= {cols}], got {plane.shape}")
    if rgb.size:
        call_with_fallback(
            _rgb_to_yuv420p_kernel, rgb_to_yuv420p_reference, rgb, y, u, v, BT709_FIXED, name="rgb_to_yuv420p"
        )


def yuv420p_planes(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Writable ``uint8[rows, line_size]`` views of a yuv420p ``av.VideoFrame``'s Y, U and V planes."""
    fmt = getattr(getattr(frame, "format", None), "name", None)
    if fmt != "yuv420p":
        raise ValueError(f"frame must be a yuv420p av.VideoFrame, got format {fmt!r}")
    frame.make_writable()  # copies the data if an encoder still references this frame's buffer
    views = []
    for plane in frame.planes:
        view = np.frombuffer(plane, np.uint8, count=plane.height * plane.line_size)
        views.append(view.reshape(plane.height, plane.line_size))
    return views[0], views[1], views[2]


#: FFmpeg's ``AVCOL_*`` codes for BT.709 colourspace, primaries and transfer, and limited ("MPEG") range.
BT709_TAGS = {"colorspace": 1, "color_primaries": 1, "color_trc": 1, "color_range": 1}


def tag_bt709(target: Any) -> Any:
    """Tag an ``av.VideoFrame`` or a video stream's ``codec_context`` as BT.709 limited range; returns it.

    Tag the encoder's codec context before the first frame so the file says BT.709: libx264 takes
    the tags from there, not from frames, and untagged video is read back as BT.601 by swscale (and
    by many players at SD sizes), shifting saturated colours by several levels.
    """
    for name, value in BT709_TAGS.items():
        setattr(target, name, value)
    return target


def rgb_frame_to_av(rgb: np.ndarray, frame: Any) -> Any:
    """Fill an existing ``av.VideoFrame(w, h, "yuv420p")`` from ``rgb`` (uint8[h, w, 3]); returns ``frame``.

    The frame is tagged BT.709 limited range (see :func:`tag_bt709` for the stream). It can be
    reused from frame to frame: its buffer is copied first if an encoder still holds it.
    """
    _check_image("rgb", rgb)
    if (frame.width, frame.height) != (rgb.shape[1], rgb.shape[0]):
        raise ValueError(f"frame is {frame.width} x {frame.height} but rgb is {rgb.shape[1]} x {rgb.shape[0]}")
    y, u, v = yuv420p_planes(frame)
    rgb_to_yuv420p(rgb, y, u, v)
    return tag_bt709(frame)
