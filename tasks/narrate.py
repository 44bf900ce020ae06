"""Narration, whatever the engine: speakable text, word timings, resampling.

The engines themselves (espeak-ng, Piper, an HTTP speech API) live in :mod:`tasks.voices`; a voice
named ``ENGINE:NAME`` picks one (a bare name is espeak-ng's). This module turns what an engine
gives into a :class:`Narration`: one timing per word of the text and PCM at the output rate.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import threading
import unicodedata

import numpy as np

from kernels.loudness import normalize_loudness
from tasks.blobs import StoredNarration, run_storage, stored_narration
from tasks.errors import ConfigurationError, RenderError
from tasks.models import Narration, Scene, SpeechOptions, WordTiming
from tasks.pcm import resample
from tasks.voices import narrator, resolve_voice, split_voice
from tasks.voices.base import MAX_RATE_WPM, MIN_RATE_WPM

log = logging.getLogger("pagereel.narrate")

#: Output rates ``narrate`` resamples to.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000
_SILENCE = 328  # about 1% of full scale: quieter samples at the end are not speech
#: The loudness pass filters a narration span by span, through FFTs of some 25 MB whatever its length:
#: narrations in one process take turns at it, so scenes narrated side by side on a thread runner do not
#: stack those buffers.
_LOUDNESS_PASS = threading.Lock()


# --------------------------------------------------------------------------- public API


def narrate(
    text: str,
    *,
    scene_id: str,
    voice: str = "en",
    rate_wpm: int = 165,
    sample_rate: int | None = None,
    loudness_lufs: float | None = -16.0,
    peak_dbfs: float = -1.0,
    speech: SpeechOptions | None = None,
) -> Narration:
    """Speak ``text``: mono 16-bit little-endian PCM and the time of each word.

    ``voice`` is ``ENGINE:NAME`` or a bare espeak-ng voice or language. ``words`` holds every
    whitespace-separated token of the text, punctuation attached, in order; tokens the engine gives
    no time of their own (e-mail, numbers it splits) get times shared out between their
    neighbours. ``sample_rate`` resamples (PyAV/libswresample) when given. Every engine's speech is
    brought to ``loudness_lufs`` (BS.1770 integrated loudness) with no sample above ``peak_dbfs``;
    None leaves the engine's level as it is. ``speech`` configures the ``http`` engine.
    """
    spoken = _speakable(text)
    if not spoken.strip():
        raise RenderError(f"scene {scene_id!r} has no narration text to speak; give it at least one word")
    if not MIN_RATE_WPM <= rate_wpm <= MAX_RATE_WPM:
        raise ConfigurationError(f"speech rate {rate_wpm} wpm is out of range; use {MIN_RATE_WPM} to {MAX_RATE_WPM}")
    if sample_rate is not None and not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ConfigurationError(
            f"sample rate {sample_rate} Hz is out of range; use {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}"
        )
    resolved = resolve_voice(voice, speech)
    engine, name = split_voice(resolved)
    said = narrator(engine, speech).synthesize(spoken, name, int(rate_wpm))
    samples, rate = said.samples, said.sample_rate
    if samples.size == 0:
        raise RenderError(f"{engine} produced no audio for scene {scene_id!r}; check that its narration has words")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _SILENCE)
    speech_end_s = (int(loud[-1]) + 1 if loud.size else samples.size) / rate
    words = _word_timings(spoken, said.marks, speech_end_s)
    pcm = samples.astype("<i2", copy=False)
    if sample_rate is not None and sample_rate != rate:
        pcm = resample(pcm, rate, sample_rate)
        rate = sample_rate
    if loudness_lufs is not None:
        with _LOUDNESS_PASS:
            pcm = normalize_loudness(pcm, rate, loudness_lufs, peak_dbfs)
    return Narration(scene_id=scene_id, pcm=pcm.tobytes(), sample_rate=rate, voice=resolved, words=words)


def narrate_scene(scene: Scene, *, voice: str, rate_wpm: int, sample_rate: int = 48000,
                  loudness_lufs: float | None = -16.0, peak_dbfs: float = -1.0,
                  speech: SpeechOptions | None = None, blobs: bool = False) -> Narration | StoredNarration:
    """Narrate one scene of the storyboard.

    With ``blobs``, inside a task run, the PCM goes to the run's result storage and a small
    :class:`~tasks.blobs.StoredNarration` naming it is returned (:mod:`tasks.blobs`).
    """
    narration = narrate(scene.narration, scene_id=scene.id, voice=voice, rate_wpm=rate_wpm,
                        sample_rate=sample_rate, loudness_lufs=loudness_lufs, peak_dbfs=peak_dbfs, speech=speech)
    storage = run_storage() if blobs else None
    return stored_narration(storage, narration) if storage is not None else narration


# --------------------------------------------------------------------------- text and timings


def _speakable(text: str) -> str:
    """The text as an engine gets it: NFC, valid UTF-8, control characters and line breaks as spaces."""
    text = unicodedata.normalize("NFC", text.encode("utf-8", "replace").decode("utf-8"))
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


def _word_timings(text: str, events: list[tuple[int, int, int]], end_s: float) -> list[WordTiming]:
    """One timing per token of ``text``, from an engine's word marks (1-based character positions)."""
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    if not tokens:
        return []
    starts = [start for start, _, _ in tokens]
    heard: dict[int, float] = {}
    for position, _length, ms in events:
        i = bisect.bisect_right(starts, position - 1) - 1
        if i < 0 or position - 1 >= tokens[i][1]:
            i += 1  # the event points between tokens: it belongs to the next one
        if i < len(tokens) and i not in heard:
            heard[i] = ms / 1000.0
    # Anchors in time: the tokens the engine timed, plus the start and the end of the speech.
    anchors = sorted(heard.items())
    if not anchors or anchors[0][0] != 0:
        anchors.insert(0, (0, 0.0))
    anchors.append((len(tokens), max(end_s, anchors[-1][1])))
    t0 = [0.0] * len(tokens)
    latest = 0.0
    for (a, ta), (b, tb) in itertools.pairwise(anchors):
        # Tokens between two anchors share the gap in proportion to their length.
        weights = [len(tokens[k][2]) + 1 for k in range(a, b)]
        total, done = sum(weights), 0
        for k, weight in zip(range(a, b), weights, strict=True):
            latest = max(latest, ta + (max(tb, ta) - ta) * done / total)
            t0[k] = latest
            done += weight
    end_s = max(end_s, t0[-1])
    return [
        WordTiming(word=word, t0=round(t0[k], 3), t1=round(t0[k + 1] if k + 1 < len(tokens) else end_s, 3))
        for k, (_, _, word) in enumerate(tokens)
    ]
