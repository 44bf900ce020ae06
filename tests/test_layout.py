"""Text layout, subtitle cues and files, scene timing and presenters: the pieces laid out once per scene."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tasks.avatar import BUILTIN_AVATARS, check_avatar, load_avatar
from tasks.errors import ConfigurationError
from tasks.layout import PALETTES, Cue, gradient, subtitle_cues, text_panel, wrap
from tasks.models import THEMES, Narration, WordTiming
from tasks.subtitles import shift, to_srt, to_vtt
from tasks.timeline import LEAD_S, MIN_SCENE_S, samples_for, scene_frames, scene_pcm


def words(text: str, step: float = 0.3) -> list[WordTiming]:
    return [WordTiming(word=w, t0=i * step, t1=(i + 1) * step) for i, w in enumerate(text.split())]


def test_every_theme_has_a_palette() -> None:
    assert set(THEMES) == set(PALETTES)


def test_wrap_respects_width_and_keeps_words() -> None:
    text = "The quick brown fox jumps over the lazy dog " * 4 + "supercalifragilisticexpialidociousandmore" * 2
    lines = wrap(text, 42)
    assert all(len(line) <= 42 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_cues_are_short_ordered_and_cover_the_speech() -> None:
    text = "Every lighthouse has a character. " * 3 + "A pattern of flashes that belongs to it alone and nobody else."
    cues = subtitle_cues(words(text), duration_s=12.0)
    assert len(cues) >= 4
    for a, b in zip(cues, cues[1:], strict=False):
        assert a.end_s <= b.start_s + 1e-9 and a.start_s < a.end_s
    assert all(len(c.lines) <= 2 and all(len(line) <= 42 for line in c.lines) for c in cues)
    assert " ".join(c.text for c in cues) == " ".join(text.split())
    assert cues[-1].end_s == 12.0


def test_srt_and_vtt() -> None:
    cues = shift([Cue(0.0, 1.5, "Hello there."), Cue(1.5, 3661.25, "A long one --> with arrow")], 2.0)
    srt = to_srt(cues)
    assert srt.startswith("1\n00:00:02,000 --> 00:00:03,500\nHello there.\n")
    assert "01:01:03,250" in srt
    vtt = to_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:02.000 --> 00:00:03.500\n")
    assert len(re.findall("-->", vtt)) == 2  # the arrow inside a cue's text is escaped


def test_text_panel_is_rgba_and_drawn() -> None:
    panel = text_panel(["Hello", "World"], 40, (255, 255, 255), (0, 0, 0, 200))
    assert panel.dtype == np.uint8 and panel.shape[2] == 4 and panel.flags.c_contiguous
    assert panel[..., 3].max() == 255 and (panel[..., :3] > 200).any()


def test_gradient_is_smooth_and_themed() -> None:
    g = gradient(320, 180, PALETTES["forest"])
    assert g.shape == (180, 320, 3) and g.flags.c_contiguous
    assert np.abs(np.diff(g.astype(int), axis=0)).max() <= 6


def test_scene_timing_and_audio() -> None:
    assert scene_frames(0.1, 30) == int(MIN_SCENE_S * 30)
    assert scene_frames(10.0, 30) == int(np.ceil((LEAD_S + 10.0 + 0.5) * 30))
    pcm = (np.ones(22050, np.int16) * 1000).tobytes()
    n = Narration(scene_id="s1", pcm=pcm, sample_rate=22050, voice="en")
    frames = scene_frames(n.duration_s, 30)
    audio = scene_pcm(n, frames, 30)
    assert len(audio) == samples_for(frames, 30, 22050)
    lead = round(LEAD_S * 22050)
    assert not audio[:lead].any() and (audio[lead : lead + 22050] == 1000).all() and not audio[lead + 22050 :].any()


@pytest.mark.parametrize("name", BUILTIN_AVATARS)
def test_builtin_presenters_open_their_mouths(name: str) -> None:
    assert check_avatar(name.upper()) == name
    sprites = load_avatar(name, 200)
    quiet, loud = sprites.for_level(0.0), sprites.for_level(1.0)
    assert quiet.shape == loud.shape and quiet.shape[0] == 200
    assert np.abs(quiet.astype(int) - loud.astype(int)).sum() > 1000
    assert quiet[0, 0, 3] == 0  # transparent corners


def test_png_presenter_pulses(tmp_path: Path) -> None:
    png = tmp_path / "me.png"
    Image.new("RGBA", (300, 400), (200, 30, 30, 255)).save(png)
    assert check_avatar(str(png)) == str(png.resolve())
    sprites = load_avatar(str(png), 160)
    assert (sprites.for_level(0)[..., 3] > 0).sum() < (sprites.for_level(1)[..., 3] > 0).sum()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "neither a built-in"),
        (lambda p: p.with_suffix(".png"), "does not exist"),
        (lambda p: (p.with_suffix(".png").write_text("not an image"), p.with_suffix(".png"))[1], "not a PNG"),
        (lambda p: (p.with_suffix(".png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), p.with_suffix(".png"))[1],
         "cannot be read"),
    ],
)
def test_bad_avatars_are_refused(tmp_path: Path, make, message: str) -> None:
    target = make(tmp_path / "face")
    with pytest.raises(ConfigurationError, match=message):
        check_avatar(str(target) if target else "nobody")


def test_huge_avatar_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("1", (5000, 5000)).save(big)
    with pytest.raises(ConfigurationError, match="4096"):
        check_avatar(str(big))


def test_wrap_px_keeps_every_line_inside_the_width_and_breaks_overlong_words():
    from tasks.layout import font, wrap_px

    lines = wrap_px("Supercalifragilisticexpialidocious is a long word indeed", 30, 140)
    assert all(font(30).getlength(line) <= 140 for line in lines)
    assert "".join(lines).replace(" ", "") == "Supercalifragilisticexpialidociousisalongwordindeed"


def test_fit_text_shrinks_to_the_line_limit_and_ends_an_overflow_with_an_ellipsis():
    from tasks.layout import fit_text, font

    lines, size = fit_text("The quick brown fox jumps over the lazy dog and keeps running far away", 40, 300, 2)
    assert len(lines) <= 2 and size < 40
    assert all(font(size).getlength(line) <= 300 for line in lines)
    lines, size = fit_text("word " * 200, 30, 200, 2, min_size=12)
    assert len(lines) == 2 and size == 12 and lines[-1].endswith("…")
    assert all(font(size).getlength(line) <= 200 for line in lines)
