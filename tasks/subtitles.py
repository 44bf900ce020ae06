"""Subtitle files (SRT and WebVTT) from the cues the renderer burns in."""

from __future__ import annotations

from collections.abc import Iterable

from tasks.layout import Cue


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: Iterable[Cue]) -> str:
    """SubRip text: numbered cues, comma before milliseconds, lines of at most 42 characters."""
    blocks = []
    for n, cue in enumerate(cues, start=1):
        text = "\n".join(cue.lines)
        blocks.append(f"{n}\n{_stamp(cue.start_s, ',')} --> {_stamp(cue.end_s, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(cues: Iterable[Cue]) -> str:
    """WebVTT text: a header, then cues with a dot before milliseconds."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = "\n".join(cue.lines).replace("-->", "→")
        blocks.append(f"{_stamp(cue.start_s, '.')} --> {_stamp(cue.end_s, '.')}\n{text}\n")
    return "\n".join(blocks)


def shift(cues: Iterable[Cue], offset_s: float) -> list[Cue]:
    """The same cues, ``offset_s`` later."""
    return [Cue(round(c.start_s + offset_s, 3), round(c.end_s + offset_s, 3), c.text) for c in cues]
