"""Subtitle files show what was said: markup characters in narration are escaped, read back through FFmpeg."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from tasks.layout import Cue
from tasks.subtitles import WORD_JOINER, to_srt, to_vtt

pytestmark = pytest.mark.reliability

SENTENCES = [
    "prices < 5 & rising for AT&T <tag",
    "If a < b && c > d then <b>bold</b>",
    "00:00:05,000 --> 00:00:09,000 was the time",  # a cue line that reads as a timing line
    "an arrow --> and &amp; stay as written",
]


def _cues() -> list[Cue]:
    return [Cue(2.0 * i, 2.0 * i + 1.5, text) for i, text in enumerate(SENTENCES)]


def _read_back(path: Path) -> list[str]:
    """Each cue's text as FFmpeg's demuxer and decoder give it: the text field of its ASS event."""
    with av.open(str(path)) as container:
        events = [sub.ass.decode("utf-8") for sub in container.decode(subtitles=0)]
    # ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, then the text (PyAV's
    # .dialogue would also drop {...} blocks, which FFmpeg's decoders leave to the renderer).
    return [event.split(",", 8)[8].replace("\\N", "\n") for event in events]


@pytest.mark.parametrize("kind", ["vtt", "srt"])
def test_cue_text_reads_back_as_the_sentence(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"video.{kind}"
    path.write_text((to_vtt if kind == "vtt" else to_srt)(_cues()), encoding="utf-8")
    shown = _read_back(path)
    # The word joiner (U+2060) is invisible: a viewer reads exactly the sentence.
    assert [text.replace(WORD_JOINER, "") for text in shown] == SENTENCES


def test_no_cue_text_holds_an_arrow_or_a_blank_line() -> None:
    cues = [*_cues(), Cue(9.0, 9.5, "   "), Cue(10.0, 11.0, "one\n\n\ntwo")]
    for text, header in ((to_srt(cues), None), (to_vtt(cues), "WEBVTT")):
        blocks = text.strip().split("\n\n")
        if header:
            assert blocks.pop(0) == header
        assert len(blocks) == len(SENTENCES) + 1  # the blank cue is left out; the others keep their lines
        for block in blocks:
            lines = block.split("\n")
            timing = 1 if header is None else 0
            assert lines[timing].count("-->") == 1
            assert all("-->" not in line and line.strip() for line in lines[timing + 1:])
