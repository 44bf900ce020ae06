"""BS.1770 loudness and true peak against signals whose values the standard gives, and the normaliser."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.loudness import integrated_loudness, k_weighted, normalize_loudness, peak_limit, true_peak


def sine(freq: float, dbfs: float, seconds: float, rate: int = 48000, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)


@pytest.mark.parametrize("rate", [48000, 44100, 22050])
def test_full_scale_997_hz_sine_reads_minus_3_01(rate: int) -> None:
    # BS.1770-4, 2.1: a 0 dBFS sine at 997 Hz in one channel reads -3.01 LKFS.
    # (At 22.05 kHz the bilinear transform bends the shelf a little: 0.03 dB.)
    assert integrated_loudness(sine(997, 0.0, 5, rate), rate) == pytest.approx(-3.01, abs=0.04)
    assert integrated_loudness(sine(997, -20.0, 5, rate), rate) == pytest.approx(-23.01, abs=0.04)


def test_k_weighting_shapes_the_spectrum() -> None:
    def gain_db(freq: float) -> float:
        x = sine(freq, 0.0, 2)
        y = k_weighted(x, 48000)[24000:-24000]
        return 10 * math.log10(np.mean(y**2) / np.mean(x[24000:-24000] ** 2))

    assert gain_db(20) < -10  # the high-pass: rumble hardly counts
    assert gain_db(100) == pytest.approx(-1.17, abs=0.1)  # the 38 Hz high-pass, Q 0.5, an octave and more above
    assert gain_db(997) == pytest.approx(0.69, abs=0.05)  # why a full-scale sine reads -3.01, not -3.70
    assert gain_db(10000) == pytest.approx(4.0, abs=0.3)  # the shelf: +4 dB for the head's effect


def test_gating_drops_silence_and_quiet_passages() -> None:
    loud = sine(997, -20.0, 10)
    # 97 blocks of the sine alone, and 3 that straddle the change and hold 3/4, 1/2 and 1/4 of it.
    edge = -23.01 + 10 * math.log10((97 + 1.5) / 100)
    # Silence never counts (absolute gate, -70 LUFS) ...
    assert integrated_loudness(np.concatenate([loud, np.zeros(48000 * 10)]), 48000) == pytest.approx(edge, abs=0.02)
    # ... nor a passage 20 LU under the rest (relative gate, -10 LU).
    quiet = sine(997, -40.0, 10)
    assert integrated_loudness(np.concatenate([loud, quiet]), 48000) == pytest.approx(edge, abs=0.02)
    # A passage 6 LU under stays in: the mean power of both, -20.0 and -26.0 dBFS.
    closer = sine(997, -26.0, 10)
    expected = -3.01 + 10 * math.log10((10 ** -2.0 + 10 ** -2.6) / 2)
    assert integrated_loudness(np.concatenate([loud, closer]), 48000) == pytest.approx(expected, abs=0.03)
    assert integrated_loudness(np.zeros(48000), 48000) == -math.inf


def test_true_peak_finds_the_peak_between_samples() -> None:
    # A quarter-rate sine sampled 45 degrees off its crest: the samples read 0.707 of the true peak.
    x = sine(12000, -6.0, 1, phase=np.pi / 4)
    assert np.abs(x).max() == pytest.approx(0.5 * 0.7071, rel=0.01)
    assert true_peak(x) == pytest.approx(0.5012, rel=0.015)  # within 0.13 dB (edges ring a little)


@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_normalize_reaches_the_target_under_the_ceiling(target: float) -> None:
    rng = np.random.default_rng(3)
    # Speech-like: bursts of a harmonic tone with a high crest factor, quiet gaps between them.
    bursts = np.concatenate([np.concatenate([sine(180 * (1 + k % 3), -30, 0.3) * np.hanning(14400),
                                             np.zeros(4800)]) for k in range(20)])
    bursts[::997] += rng.uniform(-0.2, 0.2, bursts[::997].size)  # clicks make the peaks the limiter must catch
    pcm = np.round(bursts * 32767).astype("<i2")
    out = normalize_loudness(pcm, 48000, target, -1.0)
    x = out.astype(np.float64) / 32768
    assert integrated_loudness(x, 48000) == pytest.approx(target, abs=0.2)
    assert np.abs(x).max() <= 10 ** (-1 / 20) + 1e-4
    assert normalize_loudness(np.zeros(100, dtype="<i2"), 48000, target, -1.0).tolist() == [0] * 100


# --------------------------------------------------------------------------- the same numbers as the plain forms


def reference_k_weighted(samples: np.ndarray, rate: int) -> np.ndarray:
    """K-weighting with its response made afresh on every call, as it was before the response was kept."""
    from kernels.loudness import _biquads

    x = np.asarray(samples, dtype=np.float64)
    size = 1 << max(1, (x.size + int(rate) - 1).bit_length())
    z = np.exp(-1j * np.pi * np.arange(size // 2 + 1) / (size // 2))
    response = np.ones(size // 2 + 1, dtype=np.complex128)
    for b, a in _biquads(rate):
        response *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return np.fft.irfft(np.fft.rfft(x, size) * response, size)[: x.size]


def reference_peak_limit(x: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """The limiter worked out at every sample of the signal, as it was before it looked at the peaks alone."""
    if not (np.abs(x) > ceiling).any():
        return x
    width = max(1, round(0.005 * rate))
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12))
    padded = np.pad(need, (width, width), constant_values=1.0)
    held = np.lib.stride_tricks.sliding_window_view(padded, 2 * width + 1).min(axis=1)
    smooth = np.convolve(np.pad(held, (width - 1, 0), constant_values=1.0), np.ones(width) / width, mode="valid")
    return np.clip(x * np.minimum(smooth, need), -ceiling, ceiling)


def peaky(n: int, seed: int) -> np.ndarray:
    """Speech-like bursts over the ceiling here and there: lone clicks, dense runs, peaks at both ends."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.2, n) * np.abs(np.sin(np.arange(n) / 3000.0))
    x[rng.integers(0, n, 40)] = rng.uniform(-1.5, 1.5, 40)  # lone clicks
    start = int(rng.integers(0, n // 2))
    x[start : start + n // 10] *= 6.0  # a loud run: peaks closer together than the limiter's reach
    x[[0, 1, n - 2, n - 1]] = [1.2, -1.1, 0.95, -1.3]
    return x


@pytest.mark.parametrize("rate", [8000, 22050, 24000, 44100, 48000, 96000])
def test_peak_limit_gives_the_whole_signal_pass_bit_for_bit(rate: int) -> None:
    # The limiter works out its gain around clusters of peaks only; every sample must come out as the
    # pass over the whole signal gives it, down to the last bit (the assembled sound's bytes rest on it).
    for seed, n in enumerate([3, 700, 48_000, 300_001]):
        x = peaky(n, seed)
        for ceiling in (10 ** (-1 / 20), 0.5):
            got, want = peak_limit(x, ceiling, rate), reference_peak_limit(x, ceiling, rate)
            assert got.dtype == want.dtype == np.float64
            assert got.tobytes() == want.tobytes(), (rate, n, ceiling)
            assert np.abs(got).max() <= ceiling
    quiet = np.linspace(-0.5, 0.5, 1000)
    assert peak_limit(quiet, 0.9, rate) is quiet  # nothing to limit: the very same array


def test_peak_limit_keeps_the_resting_gain_of_the_smoothing() -> None:
    # At 48 kHz the box filter over a window of ones sums to 0.9999999999999999, not 1.0: samples far
    # from any peak are scaled by it, as the whole-signal pass scales them. One peak in a long signal.
    x = np.full(96_000, 0.3)
    x[50_000] = 1.0
    got = peak_limit(x, 0.9, 48000)
    assert got.tobytes() == reference_peak_limit(x, 0.9, 48000).tobytes()
    assert got[0] != 0.3 and got[0] == 0.3 * np.convolve(np.ones(479), np.ones(240) / 240, mode="valid")[0]


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_k_weighting_gives_the_same_bits_call_after_call(rate: int) -> None:
    # Its frequency response is made once per transform size and kept; the numbers must not move.
    rng = np.random.default_rng(rate)
    for n in (1, 1000, rate, 5 * rate + 17, 1000):
        x = rng.normal(0.0, 0.3, n)
        assert k_weighted(x, rate).tobytes() == reference_k_weighted(x, rate).tobytes()


def test_normalize_gives_the_same_samples_as_the_whole_signal_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    import kernels.loudness as loudness

    pcm = np.round(np.clip(peaky(200_000, 9) * 0.5, -1, 1) * 32767).astype("<i2")
    fast = normalize_loudness(pcm, 48000, -16.0, -1.0)
    monkeypatch.setattr(loudness, "peak_limit", reference_peak_limit)
    monkeypatch.setattr(loudness, "k_weighted", reference_k_weighted)
    assert fast.tobytes() == normalize_loudness(pcm, 48000, -16.0, -1.0).tobytes()
