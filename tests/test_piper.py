"""The Piper engine on the real en_US-joe-medium voice: names, same bytes everywhere, words where they are heard."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tasks.errors import ConfigurationError
from tasks.models import Narration
from tasks.narrate import narrate
from tasks.voices import engine_version, narrator, resolve_voice
from tasks.voices.piper import installed_voices, model_path

ROOT = Path(__file__).resolve().parents[1]
JOE = "piper:en_US-joe-medium"
#: Numbers, currency, abbreviations and pauses: where word alignment goes wrong first.
TRICKY = (
    "Dr. Smith paid $12.50 in 1990. Then, on May 3rd, the U.S. team scored 42 points. "
    "Prices rose 7%, and Mr. Jones left at 5 p.m."
)


def _onsets(pcm: np.ndarray, rate: int) -> list[float]:
    """Times where sound starts after at least 80 ms of near silence (10 ms frames, -40 dB of the loudest)."""
    frame = rate // 100
    x = pcm[: pcm.size // frame * frame].astype(np.float64).reshape(-1, frame)
    energy = np.sqrt((x * x).mean(axis=1))
    loud = energy > energy.max() * 10 ** (-40 / 20)
    onsets, quiet = [], 8
    for i, on in enumerate(loud):
        if on and quiet >= 8:
            onsets.append(i / 100)
        quiet = 0 if on else quiet + 1
    return onsets


@pytest.fixture(scope="module")
def tricky() -> Narration:
    return narrate(TRICKY, scene_id="t", voice=JOE, rate_wpm=165)


def test_the_installed_voice_is_found_by_name_and_by_path(tmp_path: Path) -> None:
    assert "en_US-joe-medium" in installed_voices()
    assert resolve_voice(JOE) == JOE
    assert resolve_voice("piper:en_us-JOE-medium") == JOE
    path = model_path("en_US-joe-medium")
    assert resolve_voice(f"piper:{path}") == f"piper:{path.resolve()}"
    piper = narrator("piper")
    assert "en_US-joe-medium" in piper.voices()
    about = piper.about("en_US-joe-medium")
    assert "22050 Hz" in about and "CC0" in about and "lessac" in about, about
    assert "onnxruntime==" in engine_version(JOE) and "model " in engine_version(JOE)


def test_bad_piper_voices_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown Piper voice 'en_US-jo'.*did you mean en_US-joe-medium"):
        resolve_voice("piper:en_US-jo")
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_voice(f"piper:{tmp_path / 'none.onnx'}")
    lonely = tmp_path / "lonely.onnx"
    shutil.copy(model_path("en_US-joe-medium"), lonely)
    with pytest.raises(ConfigurationError, match=r"no lonely\.onnx\.json beside it"):
        resolve_voice(f"piper:{lonely}")


def test_a_voice_given_as_a_path_speaks_like_the_installed_one(tmp_path: Path) -> None:
    source = model_path("en_US-joe-medium")
    for suffix in ("", ".json"):
        (tmp_path / f"joe.onnx{suffix}").symlink_to(Path(f"{source}{suffix}"))
    by_name = narrate("Two goats.", scene_id="a", voice=JOE)
    by_path = narrate("Two goats.", scene_id="a", voice=f"piper:{tmp_path / 'joe.onnx'}")
    assert by_name.pcm == by_path.pcm and by_name.words == by_path.words


def test_piper_speaks_every_word_in_order(tricky: Narration) -> None:
    assert tricky.sample_rate == 22050
    assert [w.word for w in tricky.words] == TRICKY.split()
    pcm = np.frombuffer(tricky.pcm, dtype="<i2")
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 500
    for a, b in zip(tricky.words, tricky.words[1:], strict=False):
        assert a.t0 < b.t0, (a, b)  # every word timed by the model's own durations, none shared out
    assert tricky.words[-1].t1 == pytest.approx(tricky.duration_s, abs=0.3)


def test_words_start_where_they_are_heard(tricky: Narration) -> None:
    """Words said after a pause start within 60 ms of the sound coming back, through numbers and abbreviations."""
    pcm = np.frombuffer(tricky.pcm, dtype="<i2")
    onsets = _onsets(pcm, tricky.sample_rate)
    starts = [w.t0 for w in tricky.words]
    # The words after "1990.", "Then,", "3rd,", "points." and "7%,": each comes after a pause.
    for index in (6, 7, 10, 16, 19):
        word = tricky.words[index]
        assert min(abs(word.t0 - o) for o in onsets) <= 0.06, (word, onsets)
    # Nearly every return of sound after a pause is a word starting (the rest fall inside "$12.50" and the
    # like, several spoken words, or on a stop consonant's closure).
    near = [o for o in onsets if min(abs(t - o) for t in starts) <= 0.06]
    assert len(near) >= 0.8 * len(onsets), (onsets, starts)


_SPEAK = (
    "import hashlib, sys; from tasks.narrate import narrate; "
    "n = narrate(sys.argv[1], scene_id='d', voice=sys.argv[2], sample_rate=48000); "
    "print(hashlib.sha256(n.pcm).hexdigest(), hashlib.sha256(n.model_dump_json().encode()).hexdigest())"
)


def test_same_text_same_bytes_in_two_processes() -> None:
    text = "The same words, said twice, give the same samples: 1990, $12.50, Dr. Who."
    runs = [
        subprocess.run([sys.executable, "-c", _SPEAK, text, JOE], cwd=ROOT, capture_output=True, text=True,
                       timeout=240, check=True).stdout.split()
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    here = narrate("Something else first.", scene_id="x", voice=JOE)
    again = narrate(text, scene_id="d", voice=JOE, sample_rate=48000)
    assert hashlib.sha256(again.pcm).hexdigest() == runs[0][0]
    assert here.pcm != again.pcm


def test_rate_changes_the_length() -> None:
    slow = narrate("The goats climb the cliffs every spring.", scene_id="r", voice=JOE, rate_wpm=120)
    fast = narrate("The goats climb the cliffs every spring.", scene_id="r", voice=JOE, rate_wpm=240)
    assert fast.duration_s < 0.7 * slow.duration_s
