"""Text and shapes laid out once per scene with Pillow, as RGBA layers ready to composite.

Nothing here runs per frame: the renderer asks for each layer once and then only blends it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tasks.models import WordTiming

SUBTITLE_CHARS = 42
SUBTITLE_LINES = 2
CUE_MAX_S = 6.0


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
    """A subtitle: text shown from ``start_s`` to ``end_s`` (seconds from the start of its scene)."""

    start_s: float
    end_s: float
    text: str

    @property
    def lines(self) -> list[str]:
        return wrap(self.text, SUBTITLE_CHARS)


@functools.lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at ``size`` pixels: no system fonts needed."""
    return ImageFont.load_default(size=size)


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
    """Greedy word wrap by drawn width: no line of ``text`` at ``size`` pixels is wider than ``max_width``.

    A word wider than a whole line is broken between characters, never drawn past the edge.
    """
    f = font(size)
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if f.getlength(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
        while f.getlength(word) > max_width and len(word) > 1:
            cut = max([1, *(n for n in range(2, len(word)) if f.getlength(word[:n]) <= max_width)])
            lines.append(word[:cut])
            word = word[cut:]
        current = word
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
        f = font(size)
        last = lines[max_lines - 1]
        while last and f.getlength(last + "…") > max_width:
            last = last[:-1].rstrip()
        lines = [*lines[: max_lines - 1], last + "…"]
    return lines, size


def subtitle_cues(words: list[WordTiming], duration_s: float) -> list[Cue]:
    """Group timed words into cues of at most two lines of about 42 characters, broken at sentence ends."""
    cues: list[Cue] = []
    group: list[WordTiming] = []

    def flush(end: float) -> None:
        if group:
            start = group[0].t0
            cues.append(Cue(round(start, 3), round(max(end, start + 0.2), 3), " ".join(w.word for w in group)))
            group.clear()

    for w in words:
        text = " ".join(x.word for x in [*group, w])
        too_long = len(wrap(text, SUBTITLE_CHARS)) > SUBTITLE_LINES
        too_slow = bool(group) and w.t1 - group[0].t0 > CUE_MAX_S
        if group and (too_long or too_slow):
            flush(w.t0)
        group.append(w)
        if w.word.endswith((".", "!", "?")):
            flush(w.t1)
    flush(words[-1].t1 if words else 0.0)
    # Each cue lasts until the next one starts; the last one until the scene ends.
    out: list[Cue] = []
    for i, cue in enumerate(cues):
        end = cues[i + 1].start_s if i + 1 < len(cues) else max(cue.end_s, duration_s)
        out.append(Cue(cue.start_s, round(min(end, duration_s), 3), cue.text))
    return [c for c in out if c.end_s > c.start_s]


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
    """Render ``lines`` on an optional rounded panel; returns a C-contiguous RGBA uint8 array."""
    f = font(size)
    pad = size // 2 if pad is None else pad
    spacing = size // 4
    widths = [int(f.getlength(line)) for line in lines] or [0]
    ascent, descent = f.getmetrics()
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
    for line, lw in zip(lines, widths, strict=False):
        x = pad if align == "left" else (w - lw) // 2
        if panel is None:  # text straight on the picture needs a shadow to stay readable
            draw.text((x + 2, y + 2), line, font=f, fill=(0, 0, 0, 180))
        draw.text((x, y), line, font=f, fill=(*fg, 255))
        y += line_h + spacing
    return np.array(img, dtype=np.uint8, order="C")


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
