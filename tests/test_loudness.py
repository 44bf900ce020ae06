"""BS.1770 loudness and true peak against signals whose values the standard gives, and the normaliser."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.loudness import integrated_loudness, k_weighted, normalize_loudness, true_peak


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
