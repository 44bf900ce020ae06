"""Audio kernels: per-video-frame loudness of narration, and music ducked under a voice.

Samples are mono ``int16``. Sums of samples and of squares are taken in ``int64``, so the compiled
kernels and their NumPy references add the same integers in whatever order and agree exactly; the
few floating-point steps after that are the same operations in the same order on both sides.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kernels._jit import call_with_fallback, jit, prange

FULL_SCALE = 32768.0

# --- validation ---------------------------------------------------------------------------------


def _check_pcm(name: str, pcm: Any) -> np.ndarray:
    if not isinstance(pcm, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(pcm).__name__}")
    if pcm.dtype != np.int16:
        raise TypeError(f"{name} must have dtype int16, got {pcm.dtype}")
    if pcm.ndim != 1:
        raise ValueError(f"{name} must be 1-D (mono), got shape {pcm.shape}")
    if not pcm.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    return pcm


def _positive(name: str, value: float, *, integer: bool = False) -> float:
    if isinstance(value, bool) or (integer and not isinstance(value, int | np.integer)):
        raise TypeError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return value


# --- RMS envelope -------------------------------------------------------------------------------


@jit(parallel=True)
def _rms_envelope_kernel(pcm, sample_rate, fps, n_frames):  # pragma: no cover - compiled
    out = np.zeros(n_frames, np.float32)
    n = pcm.shape[0]
    for k in prange(n_frames):
        start = int(math.floor(k * sample_rate / fps))
        stop = min(int(math.floor((k + 1) * sample_rate / fps)), n)
        if start < stop:
            acc = np.int64(0)
            for i in range(start, stop):
                s = np.int64(pcm[i])
                acc += s * s
            out[k] = np.float32(math.sqrt(acc / (stop - start)) / FULL_SCALE)
    return out


def rms_envelope_reference(pcm: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """NumPy reference of :func:`rms_envelope`."""
    bounds = np.floor(np.arange(n_frames + 1) * sample_rate / fps).astype(np.int64)
    start, stop = bounds[:-1], np.minimum(bounds[1:], len(pcm))
    squares = np.zeros(len(pcm) + 1, np.int64)
    np.cumsum(pcm.astype(np.int64) ** 2, out=squares[1:])
    valid = start < stop
    out = np.zeros(n_frames, np.float32)
    sums = squares[stop[valid]] - squares[start[valid]]
    out[valid] = (np.sqrt(sums / (stop[valid] - start[valid])) / FULL_SCALE).astype(np.float32)
    return out


def rms_envelope(pcm: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Loudness of each video frame: ``float32[n_frames]``, the RMS of its samples over full scale (0..1).

    Frame k covers samples ``[floor(k * sample_rate / fps), floor((k + 1) * sample_rate / fps))``;
    frames past the end of the audio are 0, and a frame the audio ends inside covers what is left.
    """
    _check_pcm("pcm", pcm)
    sample_rate = int(_positive("sample_rate", sample_rate, integer=True))
    fps = float(_positive("fps", fps))
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 0:
        raise ValueError(f"n_frames must be a non-negative integer, got {n_frames!r}")
    return call_with_fallback(
        _rms_envelope_kernel, rms_envelope_reference, pcm, sample_rate, fps, int(n_frames), name="rms_envelope"
    )


# --- ducking ------------------------------------------------------------------------------------


@jit()
def _window_sums(values, before, after):  # pragma: no cover - compiled
    """``sums[i] = values[max(i - before, 0) : i + after + 1].sum()`` for every i, in int64."""
    n = values.shape[0]
    prefix = np.zeros(n + 1, np.int64)
    for i in range(n):
        prefix[i + 1] = prefix[i] + values[i]
    sums = np.empty(n, np.int64)
    for i in range(n):
        sums[i] = prefix[min(i + after + 1, n)] - prefix[max(i - before, 0)]
    return sums


@jit()
def _mix_ducked_kernel(voice, music, duck_gain, music_gain, level, window, hold, fade):  # pragma: no cover
    n = voice.shape[0]
    loud = np.empty(n, np.int64)
    for i in range(n):
        loud[i] = abs(np.int64(voice[i]))
    # Mean |voice| over a centred window, compared as sum > level * count to avoid a division.
    env = _window_sums(loud, window // 2, window - 1 - window // 2)
    speaking = np.empty(n, np.int64)
    for i in range(n):
        count = min(i + window - window // 2, n) - max(i - window // 2, 0)
        speaking[i] = 1 if env[i] > level * count else 0
    # Hold the duck across the gaps between words, then ramp the gain linearly over ``fade`` samples.
    near = _window_sums(speaking, hold, hold)
    for i in range(n):
        speaking[i] = 1 if near[i] > 0 else 0
    ramp = _window_sums(speaking, fade // 2, fade - 1 - fade // 2)
    out = np.empty(n, np.int16)
    m = music.shape[0]
    for i in range(n):
        count = min(i + fade - fade // 2, n) - max(i - fade // 2, 0)
        gain = music_gain + (duck_gain - music_gain) * (ramp[i] / count)
        bed = music[i] * gain if i < m else 0.0
        mixed = math.floor(voice[i] + bed + 0.5)
        out[i] = min(max(mixed, -32768.0), 32767.0)
    return out


def _window_sums_reference(values: np.ndarray, before: int, after: int) -> np.ndarray:
    n = len(values)
    prefix = np.zeros(n + 1, np.int64)
    np.cumsum(values, out=prefix[1:])
    i = np.arange(n)
    return prefix[np.minimum(i + after + 1, n)] - prefix[np.maximum(i - before, 0)]


def _window_counts(n: int, before: int, after: int) -> np.ndarray:
    i = np.arange(n)
    return np.minimum(i + after + 1, n) - np.maximum(i - before, 0)


def mix_ducked_reference(
    voice: np.ndarray,
    music: np.ndarray,
    duck_gain: float,
    music_gain: float,
    level: float,
    window: int,
    hold: int,
    fade: int,
) -> np.ndarray:
    """NumPy reference of :func:`mix_ducked` (lengths in samples, ``level`` in sample units)."""
    n = len(voice)
    loud = np.abs(voice.astype(np.int64))
    env = _window_sums_reference(loud, window // 2, window - 1 - window // 2)
    speaking = (env > level * _window_counts(n, window // 2, window - 1 - window // 2)).astype(np.int64)
    speaking = (_window_sums_reference(speaking, hold, hold) > 0).astype(np.int64)
    ramp = _window_sums_reference(speaking, fade // 2, fade - 1 - fade // 2)
    gain = music_gain + (duck_gain - music_gain) * (ramp / _window_counts(n, fade // 2, fade - 1 - fade // 2))
    bed = np.zeros(n)
    m = min(n, len(music))
    bed[:m] = music[:m] * gain[:m]
    mixed = np.floor(voice + bed + 0.5)
    return np.clip(mixed, -32768.0, 32767.0).astype(np.int16)


def mix_ducked(
    voice: np.ndarray,
    music: np.ndarray,
    sample_rate: int,
    duck_gain: float = 0.25,
    music_gain: float = 0.5,
    *,
    threshold: float = 0.02,
    window_s: float = 0.05,
    hold_s: float = 0.25,
    fade_s: float = 0.2,
) -> np.ndarray:
    """Voice over background music that dips while the voice speaks: ``int16[len(voice)]``, clipped.

    The music plays at ``music_gain`` and moves to ``duck_gain`` wherever the voice's mean absolute
    level over ``window_s`` exceeds ``threshold`` (of full scale), held ``hold_s`` either side so
    the gaps between words do not pump, with linear ramps of ``fade_s`` that start ahead of the
    voice (the whole track is known). Music past its end is silence; music longer than the voice is cut.
    """
    _check_pcm("voice", voice)
    _check_pcm("music", music)
    sample_rate = int(_positive("sample_rate", sample_rate, integer=True))
    for name, gain in (("duck_gain", duck_gain), ("music_gain", music_gain), ("threshold", threshold)):
        if not (math.isfinite(gain) and 0.0 <= gain <= 4.0):
            raise ValueError(f"{name} must lie in [0, 4], got {gain}")
    for name, seconds in (("window_s", window_s), ("fade_s", fade_s)):
        _positive(name, seconds)
    if not (math.isfinite(hold_s) and hold_s >= 0):
        raise ValueError(f"hold_s must be non-negative and finite, got {hold_s}")
    window = max(1, round(window_s * sample_rate))
    hold = round(hold_s * sample_rate)
    fade = max(1, round(fade_s * sample_rate))
    level = float(threshold) * FULL_SCALE
    if len(voice) == 0:
        return np.zeros(0, np.int16)
    return call_with_fallback(
        _mix_ducked_kernel,
        mix_ducked_reference,
        voice,
        music,
        float(duck_gain),
        float(music_gain),
        level,
        window,
        hold,
        fade,
        name="mix_ducked",
    )
