"""Subtitle files (SRT and WebVTT) from the cues the renderer burns in.

Narration is plain text, and both formats read markup in cue text: WebVTT escapes ``&``, ``<``
and ``>`` as its specification says (so ``-->`` never appears in a cue). SubRip has no escapes,
and players (FFmpeg's decoder among them) read ``<b>`` and even ``< b && c >`` as styling; a
WORD JOINER (U+2060: invisible, never a line break) after each ``<`` and inside each ``-->``
keeps what is shown equal to what was said. No cue holds a blank line, which would end it early.
"""

from __future__ import annotations

from collections.abc import Iterable

from tasks.layout import Cue


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


#: Invisible, and no line break opportunity: splits markup apart without changing what a viewer reads.
WORD_JOINER = "\u2060"
_VTT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _cue_lines(cue: Cue) -> list[str]:
    """The cue's lines, each on one line and none blank (a blank line ends a cue in both formats)."""
    return [line for line in (" ".join(raw.split()) for raw in cue.lines) if line]


def srt_text(line: str) -> str:
    """One line of SubRip cue text that players show as ``line``: no tags and no ``-->``."""
    return line.replace("<", "<" + WORD_JOINER).replace("-->", "--" + WORD_JOINER + ">")


def vtt_text(line: str) -> str:
    """One line of WebVTT cue text, escaped as the specification asks (``&amp;``, ``&lt;``, ``&gt;``)."""
    return line.translate(_VTT_ESCAPES)


def to_srt(cues: Iterable[Cue]) -> str:
    """SubRip text: numbered cues, comma before milliseconds, lines of at most 42 characters."""
    blocks: list[str] = []
    for cue in cues:
        text = "\n".join(srt_text(line) for line in _cue_lines(cue))
        if not text:
            continue  # a cue without text would read as the end of the file to some players
        n = len(blocks) + 1
        blocks.append(f"{n}\n{_stamp(cue.start_s, ',')} --> {_stamp(cue.end_s, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(cues: Iterable[Cue]) -> str:
    """WebVTT text: a header, then cues with a dot before milliseconds."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = "\n".join(vtt_text(line) for line in _cue_lines(cue))
        if not text:
            continue
        blocks.append(f"{_stamp(cue.start_s, '.')} --> {_stamp(cue.end_s, '.')}\n{text}\n")
    return "\n".join(blocks)


def shift(cues: Iterable[Cue], offset_s: float) -> list[Cue]:
    """The same cues, ``offset_s`` later."""
    return [Cue(round(c.start_s + offset_s, 3), round(c.end_s + offset_s, 3), c.text) for c in cues]
