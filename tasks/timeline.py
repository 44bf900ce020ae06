"""Scene timing shared by rendering and assembling: how long a scene lasts and where its voice sits.

Both the renderer (a segment's own audio) and the assembler (the final mix) build scene audio
here, so the two can never disagree by a sample.
"""

from __future__ import annotations

import math

import numpy as np

from tasks.models import Narration

#: Silence before the narration starts: the scene fades in under it.
LEAD_S = 0.3
#: Silence after the narration ends, before the next scene.
TAIL_S = 0.5
MIN_SCENE_S = 2.0
OUTPUT_SAMPLE_RATE = 48_000


def scene_frames(narration_s: float, fps: int) -> int:
    """Frames a scene needs to hold its narration with the lead-in and the pause after it."""
    return max(math.ceil(MIN_SCENE_S * fps), math.ceil((LEAD_S + narration_s + TAIL_S) * fps))


def samples_for(frames: int, fps: int, sample_rate: int) -> int:
    """Audio samples that last exactly as long as ``frames`` video frames."""
    return round(frames * sample_rate / fps)


def scene_pcm(narration: Narration, frames: int, fps: int) -> np.ndarray:
    """The scene's mono int16 audio: lead-in silence, the narration, then silence to the last frame."""
    total = samples_for(frames, fps, narration.sample_rate)
    out = np.zeros(total, np.int16)
    voice = np.frombuffer(narration.pcm, dtype="<i2")
    start = min(total, round(LEAD_S * narration.sample_rate))
    n = min(len(voice), total - start)
    out[start : start + n] = voice[:n]
    return out
