"""Caption styles: the pictures a scene's subtitles are drawn as, where they sit and when each shows.

Three styles, each drawn once per scene with Pillow (through ``tasks.layout``) and NumPy; per
frame the renderer only blends the picture whose time it is:

- ``classic``: a cue of up to two lines, white on a dark band, low in the frame.
- ``karaoke``: the classic band once per spoken word, that word in yellow: one picture per
  (cue, word), shown while the word is said.
- ``bold``: one to three words at a time, large white letters with a dark outline, near the
  middle of the frame (the style of vertical short-form video; the default for 9:16).

Every style keeps clear of the scene's other text and of the presenter: the captions' region is
chosen once per scene (:func:`caption_region`), the nearest free place to where the style wants
it, and each picture is centred at the bottom of that region. The subtitle files (SRT, WebVTT)
stay plain whatever the style.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tasks.layout import Cue, Overlay, break_units, fit_text, is_rtl, is_wide, subtitle_cues, text_panel, text_width
from tasks.models import CaptionStyle, WordTiming

log = logging.getLogger("pagereel.captions")

WHITE = (255, 255, 255)
BAND = (0, 0, 0, 170)
#: The spoken word in the karaoke style.
HIGHLIGHT = (255, 214, 10)
#: Most words a bold caption shows at once, and most characters (longer runs show fewer words).
BOLD_WORDS = 3
BOLD_CHARS = 18
#: Most characters of a bold chunk in a script written without spaces (each is about two letters wide).
BOLD_WIDE_CHARS = 8
_WIDE_STOPS = ("，", "。", "！", "？", "、", "；", "：")
#: Sizes tried, largest first, when the wanted one leaves no free place near where the captions go;
#: text smaller than the readable ones only where no place at all is free for those.
_SHRINK = (1.0, 0.85, 0.7)
_LAST = (0.55, 0.4)


@dataclass(frozen=True)
class Box:
    """A rectangle of the frame: left, top, width, height (pixels)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def overlaps(self, other: Box) -> bool:
        """Whether the two share a pixel (touching edges do not)."""
        return self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom

    def grown(self, by: int) -> Box:
        return Box(self.x - by, self.y - by, self.w + 2 * by, self.h + 2 * by)


@dataclass(frozen=True)
class Stage:
    """The frame the captions go on and what they must keep clear of."""

    width: int
    height: int
    #: The lowest row a caption may reach (the top of the progress bar).
    floor: int
    #: Boxes of the scene's other text layers and of the presenter.
    keep_clear: tuple[Box, ...] = ()
    presenter: Box | None = None

    @property
    def gap(self) -> int:
        return max(2, self.height // 90)


def caption_pictures(style: CaptionStyle, words: list[WordTiming], duration_s: float,
                     stage: Stage) -> list[Overlay]:
    """Every caption picture of a narration (``words`` over ``duration_s``) in ``style``, in time order."""
    if style == "bold":
        cues = subtitle_cues(words, duration_s)
        return _bold(cues, cue_words(cues, words), stage) if cues else []
    size = band_size(stage.width, stage.height)
    region, scale = caption_region(stage, _band_widths(stage), lambda s: _band_height(s, 2), size, _low(stage))
    size = max(10, int(size * scale))
    # Cues are cut to fit the region as drawn (in any script), at the region's text size.
    cues = subtitle_cues(words, duration_s, size=size, max_width=region.w - 2 * (size // 3))
    grouped = cue_words(cues, words)
    out: list[Overlay] = []
    for n, (cue, said) in enumerate(zip(cues, grouped, strict=True)):
        if cue.wrapped:  # already fitted to the region as drawn
            lines, fitted = list(cue.wrapped), size
        else:
            lines, fitted = fit_text(cue.text, size, region.w - 2 * (size // 3), 2)
        base = text_panel(lines, fitted, WHITE, BAND, pad=fitted // 3)
        x, y = _seat(base, region)
        if style == "classic" or not said:
            out.append(Overlay(f"subtitle {n}", base, x, y, cue.start_s, cue.end_s))
            continue
        lit = text_panel(lines, fitted, HIGHLIGHT, BAND, pad=fitted // 3)
        boxes = word_boxes(lines, fitted, base.shape[1], base.shape[0], fitted // 3)
        for i, word in enumerate(said):
            start = cue.start_s if i == 0 else word.t0
            end = said[i + 1].t0 if i + 1 < len(said) else cue.end_s
            picture = highlighted(base, lit, boxes[i] if i < len(boxes) else None)
            out.append(Overlay(f"karaoke {n} {i}", picture, x, y, start, max(start, end)))
    return out


def cue_words(cues: list[Cue], words: list[WordTiming]) -> list[list[WordTiming]]:
    """The timed words of each cue: those that start inside it (a cue starts at its first word)."""
    out: list[list[WordTiming]] = [[] for _ in cues]
    for w in words:
        t0 = round(w.t0, 3)
        for n, cue in enumerate(cues):
            last = n + 1 == len(cues)
            if cue.start_s <= t0 and (t0 < cue.end_s or last):
                out[n].append(w)
                break
    return out


# --------------------------------------------------------------------------- where the captions go


def band_size(width: int, height: int) -> int:
    """Text size of the classic and karaoke bands: about 4 % of the height, a twentieth of the width at most.

    A cue that does not fit two lines at that size is drawn smaller (``fit_text``).
    """
    return max(14, min(int(height * 0.042), int(width * 0.05)))


def bold_size(width: int, height: int) -> int:
    """Text size of the bold style: a tenth of the frame's short side."""
    return max(16, int(min(width, height) * 0.1))


def _band_height(size: int, lines: int) -> int:
    return text_panel(["Ag"] * lines, size, WHITE, BAND, pad=size // 3).shape[0]


def _band_widths(stage: Stage) -> list[int]:
    """Widths tried for a band centred in the frame: beside the presenter first, where that is wide enough."""
    full = int(stage.width * 0.9)
    if stage.presenter is None:
        return [full]
    beside = 2 * (stage.presenter.x - stage.gap - stage.width // 2)
    return [min(full, beside), full] if beside >= stage.width * 0.55 else [full]


def _low(stage: Stage) -> Callable[[int], int]:
    """The classic place: the band's bottom 6 % of the height above the frame's bottom."""
    return lambda h: min(stage.height - h - int(stage.height * 0.06), stage.floor - stage.gap - h)


def caption_region(stage: Stage, widths: list[int], height_at: Callable[[int], int], size: int,
                   wanted_top: Callable[[int], int]) -> tuple[Box, float]:
    """The captions' region (centred, one of ``widths`` wide) near its wanted top, clear of everything.

    ``height_at(size)`` is the region's height for a text size. Text down to 70 % is tried before
    a place far (over a fifth of the frame) from the wanted one; smaller text only where nothing
    else is free. Returns the region and the share of ``size`` it was found at.
    """
    found: list[tuple[int, Box, float]] = []
    for scale in (*_SHRINK, *_LAST):
        h = height_at(max(10, int(size * scale)))
        for w in widths:
            x = (stage.width - w) // 2
            y = free_top(stage, x, w, h, wanted_top(h))
            if y is not None:
                found.append((abs(y - wanted_top(h)), Box(x, y, w, h), scale))
        near = [f for f in found if f[0] <= stage.height // 5]
        if near:
            return near[0][1], near[0][2]
        if found and scale == _SHRINK[-1]:  # readable text further away rather than small text nearby
            _, box, scale = min(found, key=lambda f: (-f[2], f[0]))
            return box, scale
    if found:
        _, box, scale = min(found, key=lambda f: (-f[2], f[0]))
        return box, scale
    h = height_at(max(10, int(size * _LAST[-1])))
    log.warning("no free place for the captions in a %dx%d frame; they may cover other text", stage.width,
                stage.height)
    return Box((stage.width - widths[-1]) // 2, wanted_top(h), widths[-1], h), _LAST[-1]


def free_top(stage: Stage, x: int, w: int, h: int, wanted: int) -> int | None:
    """The top nearest ``wanted`` of a ``w`` x ``h`` box at ``x`` that overlaps nothing kept clear, or None."""
    gap = stage.gap
    clear = [b.grown(gap) for b in stage.keep_clear]
    tops = [wanted, *(b.y - h for b in clear), *(b.bottom for b in clear)]
    free = [y for y in tops if gap <= y and y + h <= stage.floor - gap
            and not any(Box(x, y, w, h).overlaps(b) for b in clear)]
    return min(free, key=lambda y: (abs(y - wanted), y)) if free else None


def _seat(rgba: np.ndarray, region: Box) -> tuple[int, int]:
    """A picture's place: centred across ``region`` and resting on its bottom."""
    h, w = rgba.shape[:2]
    return region.x + (region.w - w) // 2, region.bottom - h


# --------------------------------------------------------------------------- karaoke


def word_boxes(lines: list[str], size: int, width: int, height: int,
               pad: int) -> list[tuple[int, int, int, int] | None]:
    """Where each word of ``lines`` (as ``text_panel`` centres them) lies in the panel: (x0, y0, x1, y1).

    A word's columns run half a space either side of its drawn width; the panel's inside is shared
    evenly between the lines. Words of a right-to-left line have no box (None).
    """
    space = text_width(" ", size)
    inside = (height - 2 * pad) / max(1, len(lines))
    boxes: list[tuple[int, int, int, int] | None] = []
    for j, line in enumerate(lines):
        if is_rtl(line):  # laid from the right: no word is lit rather than the wrong one
            boxes.extend(None for _ in line.split())
            continue
        left = (width - int(text_width(line, size))) // 2
        y0, y1 = int(pad + j * inside), int(pad + (j + 1) * inside)
        said: list[str] = []
        for word in line.split():
            start = text_width(" ".join([*said, ""]), size) if said else 0.0
            said.append(word)
            end = text_width(" ".join(said), size)
            boxes.append((max(0, int(left + start - space / 2)), y0, min(width, int(left + end + space / 2 + 1)), y1))
    return boxes


def highlighted(base: np.ndarray, lit: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """``base`` with the pixels of ``box`` taken from ``lit`` (the same panel, drawn in the highlight colour)."""
    out = base.copy()
    if box is not None:
        x0, y0, x1, y1 = box
        out[y0:y1, x0:x1] = lit[y0:y1, x0:x1]
    return out


# --------------------------------------------------------------------------- bold


def _bold(cues: list[Cue], grouped: list[list[WordTiming]], stage: Stage) -> list[Overlay]:
    size = bold_size(stage.width, stage.height)
    widths = [w for w in _band_widths(stage) if w >= stage.width * 0.55] or [int(stage.width * 0.9)]
    region, scale = caption_region(stage, widths, lambda s: _bold_height(s, 2),
                                   size, lambda h: int(stage.height * 0.64) - h // 2)
    size = max(12, int(size * scale))
    out: list[Overlay] = []
    for n, (cue, said) in enumerate(zip(cues, grouped, strict=True)):
        chunks = bold_chunks(said) if said else [[WordTiming(word=w, t0=cue.start_s, t1=cue.end_s)
                                                  for w in cue.text.split()]]
        for i, chunk in enumerate(chunks):
            text = " ".join(w.word for w in chunk)
            lines, fitted = fit_text(text, size, region.w - 2 * _outline(size), 2, min_size=max(10, size // 2))
            rgba = outlined(text_panel(lines, fitted, WHITE, None, pad=2 * _outline(fitted)), _outline(fitted))
            x, y = region.x + (region.w - rgba.shape[1]) // 2, region.y + (region.h - rgba.shape[0]) // 2
            start = cue.start_s if i == 0 else chunk[0].t0
            end = chunks[i + 1][0].t0 if i + 1 < len(chunks) else cue.end_s
            out.append(Overlay(f"bold {n} {i}", rgba, x, y, start, max(start, end)))
    return out


def bold_chunks(words: list[WordTiming]) -> list[list[WordTiming]]:
    """Runs of one to three words, ending at punctuation, of at most about 18 characters."""
    chunks: list[list[WordTiming]] = []
    run: list[WordTiming] = []
    for w in (piece for word in words for piece in _wide_pieces(word)):
        if any(is_wide(ch) for ch in w.word):  # no spaces to join by: a piece of such a script shows alone
            chunks += [run, [w]] if run else [[w]]
            run = []
            continue
        if run and (len(run) == BOLD_WORDS or len(" ".join(x.word for x in [*run, w])) > BOLD_CHARS):
            chunks.append(run)
            run = []
        run.append(w)
        if w.word.endswith((",", ".", "!", "?", ";", ":")):
            chunks.append(run)
            run = []
    if run:
        chunks.append(run)
    return chunks


def _wide_pieces(word: WordTiming) -> list[WordTiming]:
    """A long run of Chinese or Japanese (a voice may time a whole clause as one word) cut at the places a
    line may break, at most :data:`BOLD_WIDE_CHARS` characters each, its time shared by length."""
    if len(word.word) <= BOLD_WIDE_CHARS or not any(is_wide(ch) for ch in word.word):
        return [word]
    pieces: list[str] = []
    closed = True
    for unit, _ in break_units(word.word):
        if not closed and len(pieces[-1]) + len(unit) <= BOLD_WIDE_CHARS:
            pieces[-1] += unit
        else:
            pieces.append(unit)
        closed = unit.endswith(_WIDE_STOPS)  # a piece ends at a comma or a stop where it can
    total = sum(len(p) for p in pieces)
    out: list[WordTiming] = []
    t = word.t0
    for piece in pieces:
        end = t + (word.t1 - word.t0) * len(piece) / total
        out.append(WordTiming(word=piece, t0=round(t, 3), t1=round(end, 3)))
        t = end
    return out


def _outline(size: int) -> int:
    return max(2, size // 14)


def _bold_height(size: int, lines: int) -> int:
    return text_panel(["Ag"] * lines, size, WHITE, None, pad=2 * _outline(size)).shape[0]


def outlined(rgba: np.ndarray, radius: int) -> np.ndarray:
    """``rgba`` over a dark outline ``radius`` pixels wide around its letters (a square dilation of its alpha)."""
    alpha = rgba[..., 3]
    grown = alpha.copy()
    for axis in (0, 1):
        source = grown.copy()
        for shift in range(1, radius + 1):
            for sign in (1, -1):
                np.maximum(grown, np.roll(source, sign * shift, axis=axis), out=grown)
    under = grown.astype(np.float32) / 255.0 * 0.9
    over = alpha.astype(np.float32) / 255.0
    a = over + under * (1.0 - over)
    out = np.empty_like(rgba)
    # The outline is black: only the letters add colour.
    rgb = rgba[..., :3].astype(np.float32) * over[..., None] / np.maximum(a, 1e-6)[..., None]
    out[..., :3] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    out[..., 3] = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)
