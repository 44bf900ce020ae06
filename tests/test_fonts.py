"""Text in every script: no empty boxes (tofu) and no text layer past the frame's edge, at every frame size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tasks import fonts
from tasks.layout import PALETTES, break_units, fit_text, subtitle_cues, text_panel, text_width, wrap_px
from tasks.models import RenderOptions, Scene, WordTiming
from tasks.scene_plan import STANDARD

ROOT = Path(__file__).resolve().parents[1]
#: A caption and a subtitle line in each script (the caption of wide letters is the hardest to fit).
SCRIPTS = {
    "latin": ("WWW MMM Wide Letters Caption", "Lighthouses guide ships safely home at night across the bay."),
    "vietnamese": ("Tiếng Việt có dấu", "Người dân trong làng đã cùng nhau dọn sạch giếng cổ."),
    "combining": ("Cafe\u0301 na\u0308ive", "A cafe\u0301 whose re\u0301sume\u0301 says na\u0308ive things."),
    "greek": ("Η ιστορία του φάρου", "Οι φάροι οδηγούν τα πλοία με ασφάλεια στο λιμάνι τη νύχτα."),
    "cyrillic": ("Последний паром", "Каждое утро в шесть часов старый паром отходит от причала."),
    "arabic": ("مكتبة متنقلة في الصحراء", "تنطلق حافلة صغيرة محملة بالكتب من المدينة نحو القرى البعيدة في الصحراء."),
    "hebrew": ("ספרייה ניידת במדבר", "אוטובוס קטן מלא בספרים יוצא מהעיר אל הכפרים הרחוקים."),
    "devanagari": ("पुरानी बावड़ी में लौटा पानी", "गाँव के लोगों ने मिलकर बावड़ी को साफ़ करने का फ़ैसला किया।"),
    "thai": ("ตลาดน้ำยามเช้า", "ชาวบ้านพายเรือนำผักและผลไม้มาขายที่ตลาดน้ำทุกเช้า"),
}
CJK = {
    "chinese": ("山间茶园的春天",
                "每年清明前后，云雾缭绕的山坡上便会出现背着竹篓的采茶人，村里的老茶树大多已有上百年的历史。"),
    "japanese": ("商店街の弁当屋", "駅から歩いて五分ほどの商店街に、朝六時から明かりがともる小さな弁当屋がある。"),
    "korean": ("오래된 시장", "해가 지면 항구 도시의 오래된 시장 골목에 하나둘 불이 켜진다."),
}
FRAMES = [(resolution, aspect) for resolution in (144, 720, 1080) for aspect in ("16:9", "9:16")]
_NOTDEF = "\U0010fffd"  # a private-use character no font here has: its drawing is the font's .notdef box


def has_cjk_font() -> bool:
    return not fonts.missing("中あ한")


def glyph(face: fonts.Face, ch: str) -> bytes:
    mask = fonts.load(face, 40).getmask(ch)
    return bytes(mask) + bytes(str(mask.size), "ascii")


def assert_no_tofu(text: str) -> None:
    """Every character drawn in ``text`` is a glyph of its face, not that face's .notdef box."""
    assert not fonts.missing(text), f"no font draws {fonts.missing(text)!r}"
    for face, run in fonts.runs(text):
        notdef = glyph(face, _NOTDEF)
        for ch in set(run):
            if ch.isspace() or fonts.joins_previous(ch):
                continue
            assert face.covers(ch), (face.name, ch)
            assert glyph(face, ch) != notdef, f"{ch!r} is drawn as an empty box in {face.name}"


def test_the_tofu_check_catches_pillows_built_in_font() -> None:
    builtin = fonts.faces()[0]
    assert builtin.path is None
    assert glyph(builtin, "ب") == glyph(builtin, _NOTDEF)  # what every Arabic letter looked like before
    assert glyph(builtin, "A") != glyph(builtin, _NOTDEF)


def layers_of(caption: str, line: str, resolution: int, aspect: str) -> tuple[int, int, list]:
    width, height = RenderOptions(resolution=resolution, aspect=aspect).size
    palette = PALETTES["midnight"]
    out = []
    for kind, narration in (("body", line), ("title", caption + "."), ("closing", line)):
        scene = Scene(id="s", kind=kind, narration=narration, caption=caption if kind != "closing" else line,
                      hint_s=3.0)
        out += STANDARD.text(scene, palette, width, height)
    size, max_width = STANDARD.subtitle_fit(width, height)
    words = line.split()
    timings = [WordTiming(word=w, t0=i * 0.5, t1=(i + 1) * 0.5) for i, w in enumerate(words)]
    for n, cue in enumerate(subtitle_cues(timings, len(words) * 0.5, size=size, max_width=max_width)):
        assert 1 <= len(cue.lines) <= 2, cue
        assert all(text_width(x, size) <= max_width for x in cue.lines), cue
        rgba, x, y = STANDARD.subtitle(cue, width, height)
        out.append((f"subtitle {n}", rgba, x, y))
    return width, height, out


def check_script(caption: str, line: str) -> None:
    assert_no_tofu(caption)
    assert_no_tofu(line)
    for resolution, aspect in FRAMES:
        width, height, layers = layers_of(caption, line, resolution, aspect)
        for name, rgba, x, y in layers:
            h, w = rgba.shape[:2]
            assert 0 <= x and 0 <= y and x + w <= width and y + h <= height, (name, resolution, aspect, x, y, w, h)
            assert rgba[..., 3].any(), name  # something is drawn


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_text_layers_draw_every_script_inside_the_frame(script: str) -> None:
    check_script(*SCRIPTS[script])


@pytest.mark.parametrize("script", sorted(CJK))
def test_cjk_glyphs_render_with_a_system_font(script: str) -> None:
    if not has_cjk_font():
        pytest.skip("no CJK font installed (Debian: apt-get install fonts-noto-cjk, or `make fonts`)")
    check_script(*CJK[script])


def test_a_long_word_is_broken_to_fit_and_long_text_shrinks() -> None:
    word = "Donaudampfschifffahrtsgesellschaftskapitänsmütze"
    lines = wrap_px(word, 20, 120)
    assert len(lines) > 1 and "".join(lines) == word
    assert all(text_width(x, 20) <= 120 for x in lines)
    lines, size = fit_text("a " * 200, 40, 200, 2, min_size=10)
    assert len(lines) == 2 and size == 10 and lines[-1].endswith("…")


def test_lines_break_between_chinese_characters_but_not_before_closing_punctuation() -> None:
    units = break_units("村里的老茶树。「茶」好 tea")
    assert ("树。", False) in units and ("「茶」", False) in units and ("tea", True) in units
    assert wrap_px("abc def", 20, 10_000) == ["abc def"]


def test_right_to_left_text_is_shaped_and_starts_at_the_right() -> None:
    arabic = "مكتبة"
    joined = text_width(arabic, 40)
    isolated = sum(text_width(ch, 40) for ch in arabic)
    assert joined < isolated  # letters joined by raqm, not drawn one by one
    panel = text_panel([arabic], 40, (255, 255, 255), None, align="left", pad=4)
    wide = text_panel([arabic, "مكتبة متنقلة في الصحراء"], 40, (255, 255, 255), None, align="left", pad=4)
    ink = np.nonzero(wide[..., 3][: panel.shape[0] - 4] > 200)[1]
    assert ink.max() > wide.shape[1] - 12 and ink.min() > wide.shape[1] // 3  # the short line hugs the right edge


def test_missing_cjk_font_warns_once_naming_the_package() -> None:
    code = (
        "import logging; logging.basicConfig(level=logging.WARNING)\n"
        "from tasks.layout import text_panel, wrap_px\n"
        "from tasks import fonts\n"
        "for text in ('山间茶园的春天', '商店街の弁当屋', '오래된 시장'):\n"
        "    text_panel(wrap_px(text, 20, 200), 20, (255, 255, 255), None)\n"
        "print('missing', len(fonts.missing('中')))\n"
    )
    env = {**os.environ, fonts.SYSTEM_FONTS_ENV: "0"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert "missing 1" in done.stdout
    assert done.stderr.count("fonts-noto-cjk") == 2  # one warning: "install fonts-noto-cjk (apt-get install ...)"
    assert done.stderr.count("WARNING") == 1


def test_render_cache_key_follows_the_font_files() -> None:
    from tasks.cachekeys import libraries_of, library_fingerprint

    assert "fontTools" in libraries_of("tasks.render_stages")
    key = library_fingerprint("fontTools")
    assert "fontpkg_noto_sans_arabic=" in key and "fonttools==" in key
    for face in fonts.faces():
        if face.path and "fontpkg_" not in face.path:  # a system font: its file, size and time
            assert face.path in key


def test_a_font_whose_character_map_cannot_be_read_draws_nothing_rather_than_failing(tmp_path) -> None:
    from fontTools.ttLib import TTFont

    from tasks.fonts import Face, faces

    good = next(face for face in faces() if face.path)
    data = bytearray(open(good.path, "rb").read())
    offset = TTFont(good.path, lazy=True).reader.tables["cmap"].offset
    data[offset:offset + 64] = b"\xff" * 64  # the file still opens; its character map does not
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(bytes(data))
    face = Face("broken", str(broken), 0)
    assert not face.covers("a") and face.coverage == frozenset()
