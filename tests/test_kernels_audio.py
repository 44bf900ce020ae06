"""Audio kernels against their NumPy references: integer sums make the two agree exactly (atol 0)."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.audio import (
    _mix_ducked_kernel,
    _rms_envelope_kernel,
    mix_ducked,
    mix_ducked_reference,
    rms_envelope,
    rms_envelope_reference,
)
from tests.conftest import run_python


def noise(n: int, seed: int, amplitude: int = 32767) -> np.ndarray:
    return np.random.default_rng(seed).integers(-amplitude, amplitude + 1, n).astype(np.int16)


def tone(n: int, sample_rate: int, amplitude: float, hz: float = 220.0) -> np.ndarray:
    return np.round(amplitude * np.sin(2 * np.pi * hz * np.arange(n) / sample_rate)).astype(np.int16)


# --- RMS envelope -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "sample_rate", "fps", "n_frames"),
    [(0, 22050, 30, 5), (1, 22050, 30, 1), (22050, 22050, 30, 30), (22050 * 2 + 17, 22050, 29.97, 70),
     (48000, 48000, 25, 10), (4800, 48000, 24, 200), (100, 10, 30, 12)],
)
def test_rms_envelope_matches_reference(n, sample_rate, fps, n_frames) -> None:
    pcm = noise(n, seed=n)
    got = rms_envelope(pcm, sample_rate, fps, n_frames)
    want = rms_envelope_reference(pcm, sample_rate, fps, n_frames)
    assert got.dtype == np.float32 and got.shape == (n_frames,)
    np.testing.assert_allclose(got, want, atol=0)
    np.testing.assert_array_equal(_rms_envelope_kernel(pcm, sample_rate, float(fps), n_frames), want)


def test_rms_envelope_levels_and_frames_past_the_end() -> None:
    sr, fps = 48000, 30
    pcm = np.zeros(sr, np.int16)  # one second: 30 frames of 1600 samples
    pcm[:1600] = 16384  # frame 0: constant half scale
    pcm[1600:3200] = tone(1600, sr, 32767, hz=300.0)  # frame 1: full-scale sine, 10 whole cycles
    pcm[3200:4800:2], pcm[3201:4800:2] = -32768, 32767  # frame 2: full-scale square wave
    env = rms_envelope(pcm, sr, fps, 40)
    assert env[0] == pytest.approx(0.5, abs=1e-6)
    assert env[1] == pytest.approx(1 / np.sqrt(2), abs=1e-4)
    assert env[2] == pytest.approx(1.0, abs=1e-4)
    assert (env[3:] == 0).all()  # silence, then frames 30..39 past the end
    assert env.max() <= 1.0


def test_rms_envelope_partial_last_frame_uses_what_is_left() -> None:
    pcm = np.full(1600 + 400, 8192, np.int16)  # frame 1 holds 400 of its 1600 samples
    env = rms_envelope(pcm, 48000, 30, 3)
    np.testing.assert_allclose(env, [0.25, 0.25, 0.0], atol=0)


# --- ducking ------------------------------------------------------------------------------------


def speech_like(sample_rate: int, seconds: float, talk: list[tuple[float, float]]) -> np.ndarray:
    voice = np.zeros(int(sample_rate * seconds), np.int16)
    for t0, t1 in talk:
        a, b = min(int(t0 * sample_rate), len(voice)), min(int(t1 * sample_rate), len(voice))
        voice[a:b] = tone(b - a, sample_rate, 9000.0, hz=180.0)
    return voice


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("voice_s", "music_s"), [(3.0, 3.0), (3.0, 1.2), (1.0, 4.0), (0.001, 0.0)])
def test_mix_ducked_matches_reference(seed, voice_s, music_s) -> None:
    sr = 8000
    voice = speech_like(sr, voice_s, [(0.5, 1.1), (1.3, 2.0)])
    voice[: len(voice) // 3] += noise(len(voice) // 3, seed, amplitude=300)
    music = noise(int(music_s * sr), seed + 10, amplitude=30000)
    got = mix_ducked(voice, music, sr, 0.2, 0.6, threshold=0.03, window_s=0.02, hold_s=0.1, fade_s=0.05)
    args = (0.2, 0.6, 0.03 * 32768, 160, 800, 400)
    want = mix_ducked_reference(voice, music, *args)
    assert got.dtype == np.int16 and got.shape == voice.shape
    np.testing.assert_allclose(got, want, atol=0)
    if len(voice):
        np.testing.assert_array_equal(_mix_ducked_kernel(voice, music, *args), want)


def test_mix_ducked_dips_the_music_while_the_voice_speaks() -> None:
    sr = 8000
    voice = speech_like(sr, 4.0, [(1.5, 2.5)])
    music = np.full(4 * sr, 10000, np.int16)
    mixed = mix_ducked(voice, music, sr, duck_gain=0.25, music_gain=0.5, hold_s=0.1, fade_s=0.2)
    bed = mixed.astype(np.int64) - voice
    assert (bed[: int(1.1 * sr)] == 5000).all()  # before the voice (and its ramp): music_gain
    assert (bed[int(1.7 * sr) : int(2.3 * sr)] == 2500).all()  # while speaking: duck_gain
    assert (bed[int(2.9 * sr) :] == 5000).all()  # back up after the hold and the ramp
    ramp = bed[int(1.1 * sr) : int(1.7 * sr)]
    assert (np.diff(ramp) <= 0).all() and ramp[0] > ramp[-1]  # a monotone fade down, not a jump


def test_mix_ducked_clips_and_pads() -> None:
    sr = 8000
    voice = np.full(sr, 30000, np.int16)
    music = np.full(sr // 2, 30000, np.int16)
    mixed = mix_ducked(voice, music, sr, duck_gain=1.0, music_gain=1.0)
    assert (mixed[: sr // 2] == 32767).all()  # clipped, not wrapped
    assert (mixed[sr // 2 :] == 30000).all()  # music ran out: the voice alone
    low = mix_ducked(-voice, -music, sr, duck_gain=1.0, music_gain=1.0)
    assert (low[: sr // 2] == -32768).all()
    assert mix_ducked(np.zeros(0, np.int16), music, sr).shape == (0,)


def test_validation_errors() -> None:
    pcm = noise(100, 0)
    with pytest.raises(TypeError, match="int16"):
        rms_envelope(pcm.astype(np.float32), 8000, 30, 2)
    with pytest.raises(ValueError, match="1-D"):
        rms_envelope(pcm.reshape(2, 50), 8000, 30, 2)
    with pytest.raises(ValueError, match="C-contiguous"):
        rms_envelope(pcm[::2], 8000, 30, 2)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        rms_envelope(list(pcm), 8000, 30, 2)
    with pytest.raises(TypeError, match="sample_rate"):
        rms_envelope(pcm, 8000.5, 30, 2)
    with pytest.raises(ValueError, match="fps"):
        rms_envelope(pcm, 8000, 0, 2)
    with pytest.raises(ValueError, match="n_frames"):
        rms_envelope(pcm, 8000, 30, -1)
    with pytest.raises(ValueError, match="duck_gain"):
        mix_ducked(pcm, pcm, 8000, duck_gain=-0.1)
    with pytest.raises(ValueError, match="fade_s"):
        mix_ducked(pcm, pcm, 8000, fade_s=0)
    with pytest.raises(TypeError, match="int16"):
        mix_ducked(pcm, pcm.astype(np.int32), 8000)


def test_kernels_run_as_python_with_jit_disabled() -> None:
    script = """
        import numpy as np
        from kernels import audio
        from kernels._jit import kernel_backend

        assert kernel_backend() == "numpy", kernel_backend()
        assert not hasattr(audio._rms_envelope_kernel, "py_func"), "kernel is still a numba dispatcher"
        rng = np.random.default_rng(0)
        pcm = rng.integers(-32768, 32768, 5000).astype(np.int16)
        np.testing.assert_array_equal(audio.rms_envelope(pcm, 8000, 30, 20),
                                      audio.rms_envelope_reference(pcm, 8000, 30, 20))
        music = rng.integers(-9000, 9000, 4000).astype(np.int16)
        got = audio.mix_ducked(pcm, music, 8000, window_s=0.01, hold_s=0.02, fade_s=0.02)
        want = audio.mix_ducked_reference(pcm, music, 0.25, 0.5, 0.02 * 32768, 80, 160, 160)
        np.testing.assert_array_equal(got, want)
        print("python path ok")
    """
    done = run_python(script, NUMBA_DISABLE_JIT="1")
    assert done.returncode == 0, done.stderr
    assert "python path ok" in done.stdout
