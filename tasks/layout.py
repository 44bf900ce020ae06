"""Text and shapes laid out once per scene with Pillow, as RGBA layers ready to composite.

Nothing here runs per frame: the renderer asks for each layer once and then only blends it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tasks import fonts
from tasks.models import WordTiming

SUBTITLE_CHARS = 42
SUBTITLE_LINES = 2
CUE_MAX_S = 6.0


@dataclass(frozen=True)
class Overlay:
    """A picture drawn once per scene, its place in the frame, and when it shows on the voice's clock.

    A layout's states and a caption style's pictures are overlays; the plan turns each into a layer
    shown in the frames of its seconds. ``start_s`` and ``end_s`` are seconds from the start of the
    narration (``-inf`` and ``inf``: from the scene's first frame, to its last); ``fade`` says
    whether it fades in.
    """

    name: str
    rgba: np.ndarray
    x: int
    y: int
    start_s: float
    end_s: float
    fade: bool = False


@dataclass(frozen=True)
class Palette:
    """Colours of a theme, RGB."""

    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    accent: tuple[int, int, int]
    text: tuple[int, int, int]
    panel: tuple[int, int, int, int]


PALETTES: dict[str, Palette] = {
    "midnight": Palette((14, 22, 48), (52, 28, 92), (255, 196, 61), (245, 245, 250), (10, 12, 28, 200)),
    "paper": Palette((244, 239, 228), (214, 204, 186), (196, 64, 44), (30, 30, 30), (255, 252, 245, 215)),
    "sunrise": Palette((255, 140, 90), (120, 40, 110), (255, 236, 140), (255, 255, 255), (60, 20, 50, 190)),
    "forest": Palette((16, 60, 48), (8, 30, 26), (180, 230, 120), (240, 248, 240), (6, 24, 20, 200)),
}


@dataclass(frozen=True)
class Cue:
    """A subtitle: text shown from ``start_s`` to ``end_s`` (seconds from the start of its scene).

    ``wrapped`` holds its lines when they were fitted by drawn width at the frame's size.
    """

    start_s: float
    end_s: float
    text: str
    wrapped: tuple[str, ...] = ()

    @property
    def lines(self) -> list[str]:
        return list(self.wrapped) if self.wrapped else wrap(self.text, SUBTITLE_CHARS)


def font(size: int, text: str = "") -> ImageFont.FreeTypeFont:
    """A font at ``size`` pixels that draws ``text`` (Pillow's built-in one for Latin text: see ``tasks.fonts``)."""
    return fonts.load(fonts.face_for_text(text), size)


@functools.lru_cache(maxsize=8192)
def text_width(text: str, size: int) -> float:
    """How wide ``text`` is drawn at ``size`` pixels, shaped, in whichever faces draw its characters.

    A character no installed face draws still takes its place (a full em when wide, else about half):
    subtitle files are drawn by the viewer's player, so where cues break must not depend on this
    machine's fonts.
    """
    runs = fonts.runs(text)
    width = sum(fonts.load(face, size).getlength(run) for face, run in runs)
    drawn = sum(len(run) for _, run in runs)
    if drawn < len(text):
        kept = Counter("".join(run for _, run in runs))
        for ch, n in (Counter(text) - kept).items():
            if not ch.isspace() and unicodedata.category(ch) != "Cf":
                width += n * (size if is_wide(ch) else 0.55 * size)
    return width


def wrap(text: str, max_chars: int) -> list[str]:
    """Greedy word wrap to lines of at most ``max_chars`` characters (long words are split)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > max_chars:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:max_chars])
            word = word[max_chars:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= max_chars:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def wrap_px(text: str, size: int, max_width: int) -> list[str]:
    """Greedy wrap by drawn width: no line of ``text`` at ``size`` pixels is wider than ``max_width``.

    Lines break at spaces and, in Chinese and Japanese, between characters (never before closing
    punctuation nor after opening punctuation). A word wider than a whole line is broken between
    characters (never between a letter and its marks), not drawn past the edge.
    """
    lines: list[str] = []
    current = ""
    for piece, spaced in break_units(text):
        candidate = (f"{current} {piece}" if spaced else current + piece) if current else piece
        if text_width(candidate, size) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
        clusters = graphemes(piece)
        while len(clusters) > 1 and text_width("".join(clusters), size) > max_width:
            cut = 1
            while cut + 1 < len(clusters) and text_width("".join(clusters[: cut + 1]), size) <= max_width:
                cut += 1
            lines.append("".join(clusters[:cut]))
            clusters = clusters[cut:]
        current = "".join(clusters)
    if current:
        lines.append(current)
    return lines


def fit_text(text: str, size: int, max_width: int, max_lines: int, min_size: int = 10) -> tuple[list[str], int]:
    """``text`` wrapped by drawn width into at most ``max_lines`` lines, shrinking the size down to ``min_size``.

    Returns the lines and the size they fit at. Where even ``min_size`` needs more lines, the last
    line kept ends in an ellipsis that still fits the width.
    """
    size = max(min_size, size)
    while True:
        lines = wrap_px(text, size, max_width)
        if len(lines) <= max_lines or size <= min_size:
            break
        size = max(min_size, int(size * 0.9))
    if len(lines) > max_lines:
        clusters = graphemes(lines[max_lines - 1])
        while clusters and text_width("".join(clusters) + "…", size) > max_width:
            clusters.pop()
        lines = [*lines[: max_lines - 1], "".join(clusters).rstrip() + "…"]
    return lines, size


def subtitle_cues(words: list[WordTiming], duration_s: float, *, size: int | None = None,
                  max_width: int | None = None) -> list[Cue]:
    """Group timed words into cues of at most two lines, broken at sentence ends.

    Lines are of at most 42 characters. With ``size`` and ``max_width`` they must also fit as drawn
    (else they are wrapped by drawn width, as Chinese always is) and are kept in the cue; a word
    too long for one cue (a Chinese sentence has no spaces) is cut at its commas, else by width,
    its time shared by length.
    """
    pieces = _pieces(words, size, max_width) if size and max_width else [(w, " ") for w in words]

    def lines_of(text: str) -> list[str]:
        lines = wrap(text, SUBTITLE_CHARS)
        if not (size and max_width) or (not any(map(is_wide, text)) and (len(lines) > SUBTITLE_LINES or all(
                text_width(line, size) <= max_width for line in lines))):
            return lines  # lines of at most 42 characters read best, wherever they fit as drawn
        return wrap_px(text, size, max_width)

    cues: list[Cue] = []
    group: list[tuple[WordTiming, str]] = []

    def flush(end: float) -> None:
        if group:
            start = group[0][0].t0
            text = join_pieces(group)
            wrapped = tuple(lines_of(text)) if size and max_width else ()
            cues.append(Cue(round(start, 3), round(max(end, start + 0.2), 3), text, wrapped))
            group.clear()

    for w, glue in pieces:
        too_long = len(lines_of(join_pieces([*group, (w, glue)]))) > SUBTITLE_LINES
        too_slow = bool(group) and w.t1 - group[0][0].t0 > CUE_MAX_S
        if group and (too_long or too_slow):
            flush(w.t0)
        group.append((w, glue))
        if w.word.endswith(SENTENCE_ENDS):
            flush(w.t1)
    flush(words[-1].t1 if words else 0.0)
    # Each cue lasts until the next one starts; the last one until the scene ends.
    out: list[Cue] = []
    for i, cue in enumerate(cues):
        end = cues[i + 1].start_s if i + 1 < len(cues) else max(cue.end_s, duration_s)
        out.append(Cue(cue.start_s, round(min(end, duration_s), 3), cue.text, cue.wrapped))
    return [c for c in out if c.end_s > c.start_s]


#: Words that end a sentence, so a subtitle ends with them: Latin, CJK full-width, Arabic, Devanagari.
SENTENCE_ENDS = (".", "!", "?", "。", "！", "？", "؟", "।", "॥")
_CLAUSE = re.compile(r"[^，、。；：！？,;]+[，、。；：！？,;]*[」』”’）)]*")


def join_pieces(pieces: list[tuple[WordTiming, str]]) -> str:
    """The words of a cue as one text: each after its glue (a space, or nothing inside a word that was cut)."""
    return "".join((glue if n else "") + w.word for n, (w, glue) in enumerate(pieces))


def _pieces(words: list[WordTiming], size: int, max_width: int) -> list[tuple[WordTiming, str]]:
    """The words, with any too wide for a cue cut into clauses (then lines), each with its share of the time."""
    out: list[tuple[WordTiming, str]] = []
    for w in words:
        if len(wrap_px(w.word, size, max_width)) <= SUBTITLE_LINES:
            out.append((w, " "))
            continue
        parts: list[str] = []
        for clause in _CLAUSE.findall(w.word) or [w.word]:
            lines = wrap_px(clause, size, max_width)
            # A clause too long for a whole cue is cut in two-line pieces, else it stays whole.
            parts += ["".join(lines[i : i + SUBTITLE_LINES]) for i in range(0, len(lines), SUBTITLE_LINES)] \
                if len(lines) > SUBTITLE_LINES else [clause]
        total = sum(len(p) for p in parts) or 1
        done = 0
        for n, part in enumerate(parts):
            t0 = w.t0 + (w.t1 - w.t0) * done / total
            done += len(part)
            t1 = w.t0 + (w.t1 - w.t0) * done / total
            out.append((WordTiming(word=part, t0=round(t0, 3), t1=round(t1, 3)), "" if n else " "))
    return out


# Characters a line never starts with, and ones it never ends with (Chinese and Japanese line breaking).
_NO_START = frozenset("、。，．・：；？！」』）〕］｝〉》】〙〗ー…‥々ゝゞ"
                      "ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ,.:;!?)]}%")
_NO_END = frozenset("「『（〔［｛〈《【〘〖([{")


def is_wide(ch: str) -> bool:
    """True for characters of scripts written without spaces between words (Han, kana, full-width forms)."""
    code = ord(ch)
    return (0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFF60
            or 0x20000 <= code <= 0x3FFFF)


def break_units(text: str) -> list[tuple[str, bool]]:
    """The pieces a line may break between, each with whether a space stood before it."""
    out: list[tuple[str, bool]] = []
    for word in text.split():
        spaced = True
        piece = ""
        for ch in word:
            prev = piece[-1:] if piece else ""
            breakable = prev and (is_wide(ch) or is_wide(prev)) and ch not in _NO_START and prev not in _NO_END
            if breakable and not fonts.joins_previous(ch):
                out.append((piece, spaced))
                piece, spaced = "", False
            piece += ch
        if piece:
            out.append((piece, spaced))
    return out


def graphemes(text: str) -> list[str]:
    """``text`` as the clusters a reader sees as one character: a letter with its marks, joined emoji."""
    out: list[str] = []
    for ch in text:
        if out and (fonts.joins_previous(ch) or out[-1].endswith("\u200d")):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def text_panel(
    lines: list[str],
    size: int,
    fg: tuple[int, int, int],
    panel: tuple[int, int, int, int] | None,
    *,
    pad: int | None = None,
    align: str = "center",
    max_width: int | None = None,
) -> np.ndarray:
    """Render ``lines`` on an optional rounded panel; returns a C-contiguous RGBA uint8 array.

    Each line is shaped (raqm: joined Arabic, Devanagari conjuncts, right-to-left order) in the
    faces that draw its characters; a right-to-left line set ``align="left"`` starts at the right.
    """
    pad = size // 2 if pad is None else pad
    spacing = size // 4
    line_runs = [[(fonts.load(face, size), run) for face, run in fonts.runs(line)] for line in lines]
    if lines and not any(run.strip() for runs in line_runs for _, run in runs):
        return np.zeros((2, 2, 4), np.uint8)  # nothing drawable (no installed font has it): no empty panel
    widths = [int(sum(f.getlength(run) for f, run in runs)) for runs in line_runs] or [0]
    used = {id(f): f for runs in line_runs for f, _ in runs} or {0: font(size)}
    ascent = max(f.getmetrics()[0] for f in used.values())
    descent = max(f.getmetrics()[1] for f in used.values())
    line_h = ascent + descent
    w = max(widths) + 2 * pad
    h = len(lines) * line_h + max(0, len(lines) - 1) * spacing + 2 * pad
    if max_width is not None:
        w = min(w, max_width)
    img = Image.new("RGBA", (max(2, w), max(2, h)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if panel is not None:
        draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=max(4, size // 3), fill=panel)
    y = pad
    for line, runs, lw in zip(lines, line_runs, widths, strict=False):
        rtl = is_rtl(line)
        x = (w - pad - lw if rtl else pad) if align == "left" else (w - lw) // 2
        # Runs go left to right, or right to left in a right-to-left line; raqm orders each run within.
        for f, run in reversed(runs) if rtl else runs:
            top = y + ascent - f.getmetrics()[0]
            if panel is None:  # text straight on the picture needs a shadow to stay readable
                draw.text((x + 2, top + 2), run, font=f, fill=(0, 0, 0, 180))
            draw.text((x, top), run, font=f, fill=(*fg, 255))
            x += int(f.getlength(run)) if len(runs) > 1 else 0
        y += line_h + spacing
    return np.array(img, dtype=np.uint8, order="C")


def is_rtl(text: str) -> bool:
    """True when the first letter of ``text`` that has a direction is right-to-left (Arabic, Hebrew)."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def gradient(width: int, height: int, palette: Palette) -> np.ndarray:
    """A diagonal two-colour gradient with soft light blobs: the backdrop of scenes without a picture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (yy / max(1, height - 1)) * 0.7 + (xx / max(1, width - 1)) * 0.3
    top = np.array(palette.top, np.float32)
    bottom = np.array(palette.bottom, np.float32)
    rgb = top[None, None, :] * (1 - t[..., None]) + bottom[None, None, :] * t[..., None]
    accent = np.array(palette.accent, np.float32)
    for cx, cy, r, k in ((0.22, 0.3, 0.35, 0.18), (0.78, 0.72, 0.45, 0.12)):
        d2 = ((xx / width - cx) ** 2 + (yy / height - cy) ** 2) / (r * r)
        glow = np.exp(-d2)[..., None] * k
        rgb = rgb * (1 - glow) + accent[None, None, :] * glow
    return np.ascontiguousarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))


def bar(width: int, height: int, colour: tuple[int, int, int], alpha: int = 230) -> np.ndarray:
    """A solid RGBA rectangle (the progress bar)."""
    out = np.empty((max(1, height), max(1, width), 4), np.uint8)
    out[..., :3] = colour
    out[..., 3] = alpha
    return out
