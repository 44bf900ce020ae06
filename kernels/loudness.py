"""Loudness as listeners hear it: ITU-R BS.1770-4 / EBU R128 integrated loudness and true peak, in NumPy.

- K-weighting (a high shelf, then a high-pass) is applied in the frequency domain: the signal,
  padded with a second of silence so the filters' tails do not wrap around, times the filters'
  exact frequency response at that rate. That is the IIR filter's output to within rounding, with
  no sample loop.
- Gating: 400 ms blocks every 100 ms; blocks under -70 LUFS are dropped, then those more than
  10 LU under the loudness of the rest.
- True peak: the signal upsampled 4x (band-limited, through the FFT), as BS.1770 Annex 2 asks.
- Long signals are measured and normalised span by span (:func:`spanned_block_powers`): the FFT
  buffers are bounded by the span (some 25 MB at 48 kHz), whatever the signal's length.

A full-scale 997 Hz sine reads -3.01 LUFS; a sine at -20 dBFS reads -23.01 LUFS.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

#: Where EBU R128 puts silence: blocks quieter than this never count.
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_S, STEP_S = 0.4, 0.1
#: Seconds filtered at once by the span-by-span measures; with a second of lead-in either side the FFT
#: fits 2**19 bins at 48 kHz.
SPAN_S = 8.0


def _biquads(rate: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting stages at ``rate``, from their analogue prototypes (as libebur128 derives them)."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = (
        np.array([(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]),
        np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]),
    )
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1.0 + k / q + k * k
    highpass = (np.array([1.0, -2.0, 1.0]), np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]))
    return [shelf, highpass]


def k_weighted(samples: np.ndarray, rate: int) -> np.ndarray:
    """``samples`` (float, mono, any scale) through the K-weighting filter."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.size + int(rate)  # a second of silence for the filters' tails
    size = 1 << max(1, (n - 1).bit_length())
    return np.fft.irfft(np.fft.rfft(x, size) * _k_response(size, rate), size)[: x.size]


@functools.lru_cache(maxsize=4)
def _k_response(size: int, rate: int) -> np.ndarray:
    """The K-weighting filter's exact response on the rfft bins of ``size`` points (read-only).

    Kept, as making it costs as much as a transform: a long signal is measured in spans of one size,
    several times over while it is normalised.
    """
    z = np.exp(-1j * np.pi * np.arange(size // 2 + 1) / (size // 2))  # e^{-jw} on the rfft bins
    response = np.ones(size // 2 + 1, dtype=np.complex128)
    for b, a in _biquads(rate):
        response *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    response.flags.writeable = False
    return response


def block_powers(samples: np.ndarray, rate: int, first: int = 0) -> np.ndarray:
    """Mean K-weighted power of each 400 ms gating block starting at ``first``, ``first + 100 ms``, ...

    Samples before ``first`` only settle the filters: a long signal can be measured span by span
    this way and its blocks gated together (:func:`gated_loudness`).
    """
    y = k_weighted(samples, rate)
    block, step = round(BLOCK_S * rate), round(STEP_S * rate)
    if y.size - first < block:
        return np.zeros(0)
    squares = np.concatenate([[0.0], np.cumsum(y * y)])
    starts = np.arange(first, y.size - block + 1, step)
    return (squares[starts + block] - squares[starts]) / block


def _lufs(power: float) -> float:
    return -0.691 + 10.0 * math.log10(power) if power > 0 else -math.inf


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """Gated integrated loudness (LUFS) of mono ``samples`` scaled to full scale 1.0; -inf when all silent."""
    return gated_loudness(block_powers(samples, rate))


def spanned_block_powers(read: Callable[[int, int], np.ndarray], length: int, rate: int,
                         span_s: float = SPAN_S) -> np.ndarray:
    """The gating blocks' powers of a ``length``-sample signal read ``read(start, stop)`` (float) a span at a time.

    Each span is read with a second before it (the filters settle in it) and all but the last sample of
    a block after it, so the blocks starting in it are whole; blocks start on the 100 ms grid of the
    whole signal and each is measured once: the gated loudness is the whole signal's, to within rounding.
    """
    step, block = round(STEP_S * rate), round(BLOCK_S * rate)
    span = step * max(1, round(span_s / STEP_S))
    powers = []
    for start in range(0, length, span):
        lo = max(0, start - rate)
        hi = min(length, start + span + block - 1)
        powers.append(block_powers(read(lo, hi), rate, start - lo))
    return np.concatenate(powers) if powers else np.zeros(0)


def gated_loudness(powers: np.ndarray) -> float:
    """Integrated loudness (LUFS) of gating blocks' powers, after the absolute and the relative gate."""
    loud = powers[powers > 10.0 ** ((ABSOLUTE_GATE_LUFS + 0.691) / 10.0)]
    if loud.size == 0:
        return -math.inf
    relative = _lufs(float(loud.mean())) + RELATIVE_GATE_LU
    gated = loud[loud > 10.0 ** ((relative + 0.691) / 10.0)]
    return _lufs(float(gated.mean()))


def true_peak(samples: np.ndarray) -> float:
    """Largest absolute value of ``samples`` (full scale 1.0) between samples too, by 4x oversampling."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return 0.0
    n = x.size + 64  # room for the ringing of the last samples
    spectrum = np.fft.rfft(x, n)
    up = np.fft.irfft(spectrum, 4 * n) * 4.0
    return float(max(np.abs(up).max(), np.abs(x).max()))


def loudness_gain(samples: np.ndarray, rate: int, target_lufs: float, ceiling_dbtp: float) -> float:
    """The linear gain that brings ``samples`` to ``target_lufs`` without its true peak passing the ceiling."""
    measured = integrated_loudness(samples, rate)
    if not math.isfinite(measured):
        return 1.0
    gain = 10.0 ** ((target_lufs - measured) / 20.0)
    peak = true_peak(samples)
    if peak > 0:
        gain = min(gain, 10.0 ** (ceiling_dbtp / 20.0) / peak)
    return gain


def dbfs(peak: float) -> float:
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def peak_limit(x: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """``x`` with every sample within ``ceiling``: a 5 ms look-ahead gain that dips smoothly around peaks.

    The gain leaves its resting value only from 5 ms before a sample over the ceiling to 10 ms after
    it, so the dips are worked out around each cluster of such samples alone: every sample comes out
    as :func:`_limited` gives it for the whole of ``x``, at a fraction of the cost.
    """
    over = np.flatnonzero(np.abs(x) > ceiling)
    if over.size == 0:
        return x
    width = max(1, round(0.005 * rate))
    # Each cluster is worked out with 3 widths either side and clusters lie over 6 widths apart, so no
    # pass meets another cluster's peaks: the gain of 1.0 it assumes past its ends is the true one there.
    breaks = np.flatnonzero(np.diff(over) > 6 * width)
    firsts, lasts = over[np.r_[0, breaks + 1]], over[np.r_[breaks, over.size - 1]]
    out = x * np.float64(min(_resting_gain(width), 1.0))  # at most 1.0, so within the ceiling away from peaks
    for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        lo, hi = max(0, first - 3 * width), min(x.size, last + 3 * width + 1)
        out[lo:hi] = _limited(x[lo:hi], ceiling, width)
    return out


def _limited(x: np.ndarray, ceiling: float, width: int) -> np.ndarray:
    """:func:`peak_limit`'s gain worked out at every sample of ``x``: the hold and smoothing, 1.0 past its ends."""
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12))
    padded = np.pad(need, (width, width), constant_values=1.0)
    held = _running_min(padded, 2 * width + 1)  # the dip starts early
    smooth = np.convolve(np.pad(held, (width - 1, 0), constant_values=1.0), _box(width), mode="valid")
    return np.clip(x * np.minimum(smooth, need), -ceiling, ceiling)


def _running_min(values: np.ndarray, window: int) -> np.ndarray:
    """The minimum of every ``window`` consecutive ``values`` in three passes, however long the window.

    Van Herk and Gil-Werman: in blocks of ``window``, minima from each block's start and to its end;
    a window spans at most two blocks, the end of one and the start of the next.
    """
    blocks = -(-values.size // window)
    tiled = np.pad(values, (0, blocks * window - values.size), constant_values=np.inf).reshape(blocks, window)
    from_start = np.minimum.accumulate(tiled, axis=1).ravel()
    to_end = np.minimum.accumulate(tiled[:, ::-1], axis=1)[:, ::-1].ravel()
    n = values.size - window + 1
    return np.minimum(to_end[:n], from_start[window - 1 : window - 1 + n])


def _box(width: int) -> np.ndarray:
    return np.ones(width) / width


def _resting_gain(width: int) -> float:
    """The smoothed gain away from any peak: the box filter over a window of ones, summed as :func:`_limited` sums
    it (within rounding of 1.0, not always 1.0 itself)."""
    return float(np.convolve(np.ones(2 * width - 1), _box(width), mode="valid")[0])


def normalize_loudness(pcm: np.ndarray, rate: int, target_lufs: float, ceiling_dbfs: float,
                       span_s: float = SPAN_S) -> np.ndarray:
    """int16 ``pcm`` brought to ``target_lufs`` with no sample above ``ceiling_dbfs`` (a limiter takes the peaks).

    The gain is measured, applied and limited span by span, so the working memory is a span's, not
    the signal's. Speech shorter than one gating block is measured as a whole. Silence comes back as it was.
    """
    samples = np.asarray(pcm, dtype="<i2")
    if samples.size == 0 or not np.any(samples):
        return samples
    ceiling = 10.0 ** (ceiling_dbfs / 20.0)
    margin = rate // 100  # the limiter looks 5 ms either side of a sample: 10 ms makes each span exact

    def limited(gain: float, start: int, stop: int) -> np.ndarray:
        lo, hi = max(0, start - margin), min(samples.size, stop + margin)
        x = samples[lo:hi].astype(np.float64) * (gain / 32768.0)
        return peak_limit(x, ceiling, rate)[start - lo : stop - lo]

    gain = 1.0
    for _ in range(4):  # limiting takes some loudness away: measure again and make it up
        measured = _limited_loudness(lambda a, b, g=gain: limited(g, a, b), samples.size, rate, span_s)
        if not math.isfinite(measured) or abs(measured - target_lufs) < 0.05:
            break
        gain *= 10.0 ** ((target_lufs - measured) / 20.0)
    out = np.empty(samples.size, dtype="<i2")
    span = max(1, round(span_s * rate))
    for start in range(0, samples.size, span):
        stop = min(samples.size, start + span)
        out[start:stop] = np.clip(np.round(limited(gain, start, stop) * 32768.0), -32768, 32767)
    return out


def _limited_loudness(read: Callable[[int, int], np.ndarray], length: int, rate: int, span_s: float) -> float:
    """Gated loudness of the signal ``read`` gives; where no block passes the gates, the blocks' mean power."""
    powers = spanned_block_powers(read, length, rate, span_s)
    measured = gated_loudness(powers)
    if math.isfinite(measured):
        return measured
    if powers.size:  # all quieter than the absolute gate
        return _lufs(float(powers.mean()))
    return _lufs(float(np.mean(k_weighted(read(0, length), rate) ** 2)))  # shorter than one block
