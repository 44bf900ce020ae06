"""Mono int16 PCM through PyAV: resampled with libswresample and encoded frame by frame, one way everywhere.

Narration (an engine's rate to the run's), assembling (a scene's narration and the music to 48 kHz),
the speech API's answers, and the two encoders (a scene's segment, the assembled video) share these.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np

#: Samples per encoded audio frame (AAC's frame size).
AUDIO_FRAME = 1024


def resampled_chunks(frames: Iterable[av.AudioFrame], target: int, *, enough: int | None = None) -> list[np.ndarray]:
    """``frames`` (any format, rate or layout) as mono int16 chunks at ``target`` Hz, the delay line flushed.

    With ``enough``, decoding stops at the first frame after which that many samples are out (the
    flush still follows), so a long music file is not decoded past what a video needs.
    """
    resampler = av.AudioResampler(format="s16", layout="mono", rate=target)
    chunks: list[np.ndarray] = []
    total = 0
    for frame in frames:
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
            total += chunks[-1].size
        if enough is not None and total >= enough:
            break
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return chunks


def resample(pcm: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono int16 samples at ``rate`` Hz resampled to ``target`` Hz (little-endian int16)."""
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16",
                                       layout="mono")
    frame.sample_rate = rate
    chunks = resampled_chunks([frame], target)
    if not chunks:
        return np.zeros(0, dtype="<i2")
    return np.concatenate(chunks).astype("<i2", copy=False)


def encode(out: av.container.OutputContainer, stream: av.AudioStream, pcm: np.ndarray, sample_rate: int, *,
           first_sample: int = 0, flush: bool = True) -> None:
    """Encode and mux mono int16 ``pcm`` in frames of :data:`AUDIO_FRAME`; pts count samples from the stream's start.

    ``first_sample`` is where ``pcm`` starts in the stream (for a track encoded in spans); ``flush``
    drains the encoder after the last frame, for the last span.
    """
    time_base = Fraction(1, sample_rate)
    for at in range(0, len(pcm), AUDIO_FRAME):
        chunk = np.ascontiguousarray(pcm[at : at + AUDIO_FRAME]).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = first_sample + at
        frame.time_base = time_base
        out.mux(stream.encode(frame))
    if flush:
        out.mux(stream.encode(None))
