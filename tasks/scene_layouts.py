"""Layouts for scenes without a picture: a quote, a list, a key figure, a section card.

What a scene holds chooses its layout (the writer's marks on :class:`~tasks.models.Scene`): a
scene that opens a section of the article starts on a section card; a list scene shows its items
as bullets; a scene with a key figure shows the number counting up with its label; any other
scene sets its key sentence large. Each layout is drawn once per scene with Pillow, as a few
RGBA states shown in turn, timed to the narration's words: a bullet appears when its item starts
being spoken, a phrase of the quote lights up as it is said, the figure counts up as it is said.
Per frame nothing here runs: the plan shows one pre-drawn state at a time.

Text is measured and drawn only through ``tasks.layout`` (``fit_text``, ``wrap_px``, ``font``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from tasks.layout import Overlay, Palette, fit_text, font, is_rtl, text_panel, text_width
from tasks.models import Narration, Scene
from tasks.text import WORD, split_sentences

#: Every layout layer's name starts with one of these (the frames that show one show a layout).
LAYOUT_NAMES = ("section", "quote", "list", "figure")
#: How long (voice clock, seconds) a section card stays before the scene's own layout follows.
SECTION_S = 2.2
#: Most words a phrase of a quote lights up at once; longest quote set large, in words.
PHRASE_WORDS = 5
QUOTE_WORDS = 24
#: The most of the layout area's height a quote fills, so it never crowds the caption or the subtitles.
QUOTE_FILL = 0.8
#: The count-up of a figure: how long it takes and how many states it shows.
COUNT_S = 0.9
COUNT_STEPS = 12
#: How strongly a quote's words still to be said show (alpha, 0-255).
UNSAID_ALPHA = 70
_SCALES = frozenset("thousand million billion trillion percent per cent".split())
_COUNTABLE = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^\d+(?:\.\d+)?$")
_NUMERIC = re.compile(r"\d")
_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+[—–]\s+")
FOREVER = math.inf
#: The layout area's top and bottom, as shares of the frame's height: wide and square frames, tall ones.
WIDE_AREA = (0.2, 0.74)
TALL_AREA = (0.13, 0.55)


@dataclass(frozen=True)
class Area:
    """Where a layout may draw: between the caption at the top and the subtitles at the bottom.

    A tall frame's captions sit in its lower middle (the bold style's place, above the presenter):
    its layouts draw higher, in the band between the caption and that place.
    """

    left: int
    top: int
    width: int
    height: int
    unit: int

    @classmethod
    def of(cls, width: int, height: int) -> Area:
        unit = min(height, int(width * 1.25))
        top, bottom = (TALL_AREA if height > width else WIDE_AREA)
        left = int(width * 0.08)
        return cls(left, int(height * top), width - 2 * left, int(height * bottom) - int(height * top), unit)

    def centred(self, rgba: np.ndarray, y: int | None = None) -> tuple[int, int]:
        h, w = rgba.shape[:2]
        return self.left + (self.width - w) // 2, self.top + (self.height - h) // 2 if y is None else y


def is_layout(name: str) -> bool:
    """Whether a plan's layer named ``name`` is part of a layout."""
    return name.split(" ", 1)[0] in LAYOUT_NAMES


def layout_of(scene: Scene) -> str | None:
    """The layout a body scene without a picture gets: list, figure or quote (None: not a body scene)."""
    if scene.kind != "body":
        return None
    if scene.layout == "list" and scene.items and len(scene.items) >= 2:
        return "list"
    if scene.figure and _NUMERIC.search(scene.figure):
        return "figure"
    return "quote"


def scene_layout(scene: Scene, narration: Narration, palette: Palette, width: int, height: int,
                 has_picture: bool) -> list[Overlay]:
    """The layout states of ``scene`` (none for a scene with a picture, a title or a closing)."""
    kind = None if has_picture else layout_of(scene)
    if kind is None:
        return []
    area = Area.of(width, height)
    clock = WordClock(scene.narration, narration)
    drawn = {"list": list_layout, "figure": figure_layout, "quote": quote_layout}[kind](scene, clock, palette, area)
    if scene.section:
        card = section_card(scene.section, palette, area)
        card_end = _card_end(clock)
        drawn = [replace(card, end_s=card_end), *after(drawn, card_end)]
    return [trimmed(d) for d in drawn]


def _card_end(clock: WordClock) -> float:
    """When (voice clock) a section card gives way to the scene's own layout."""
    return min(SECTION_S, clock.end_s * 0.5)


def quote_said_s(scene: Scene, narration: Narration, has_picture: bool) -> tuple[float, float] | None:
    """When (voice clock) the scene's quote is said while it shows, or None where it shows no quote.

    The quote lights up on screen phrase by phrase as it is said: a caption of the same words then
    would only say it twice, so the plan shows none in that time (the subtitle files keep them).
    """
    if has_picture or layout_of(scene) != "quote":
        return None
    clock = WordClock(scene.narration, narration)
    sentence = key_sentence(scene)
    first = clock.find(sentence)
    if first is None:
        return None
    start, end = clock.at(first), clock.at(first + len(sentence.split()))
    if scene.section:  # said under the section card, it is not on screen yet
        start = max(start, _card_end(clock))
    return (start, end) if end > start else None


def trimmed(drawn: Overlay) -> Overlay:
    """``drawn`` cut to the box its visible pixels fill: every frame blends only what it shows."""
    rows = np.flatnonzero(drawn.rgba[..., 3].any(axis=1))
    cols = np.flatnonzero(drawn.rgba[..., 3].any(axis=0))
    if not len(rows):
        return drawn
    rgba = np.ascontiguousarray(drawn.rgba[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    return replace(drawn, rgba=rgba, x=drawn.x + int(cols[0]), y=drawn.y + int(rows[0]))


def after(drawn: list[Overlay], start_s: float) -> list[Overlay]:
    """The states of ``drawn`` shown no earlier than ``start_s`` (a state that ends before is left out)."""
    out = []
    for d in drawn:
        if d.end_s > start_s:
            out.append(replace(d, start_s=max(d.start_s, start_s), fade=d.fade or d.start_s < start_s))
    return out


# --------------------------------------------------------------------------- timing


class WordClock:
    """When each whitespace token of a scene's narration starts being said, from the narration's word timings."""

    def __init__(self, text: str, narration: Narration) -> None:
        self.text = text
        self.tokens = text.split()
        words = narration.words
        self.end_s = words[-1].t1 if words else narration.duration_s
        if len(words) == len(self.tokens):
            self.starts = [w.t0 for w in words]
        elif words:  # the engine's tokens differ a little from the text's: map by position
            self.starts = [words[min(len(words) - 1, i * len(words) // max(1, len(self.tokens)))].t0
                           for i in range(len(self.tokens))]
        else:
            self.starts = [self.end_s * i / max(1, len(self.tokens)) for i in range(len(self.tokens))]

    def find(self, phrase: str, from_token: int = 0) -> int | None:
        """The token where ``phrase`` starts being said, at or after ``from_token``; None if it is not said."""
        want = [_norm(t) for t in phrase.split()][:4]
        want = [w for w in want if w]
        if not want:
            return None
        said = [_norm(t) for t in self.tokens]
        for i in range(from_token, len(said) - len(want) + 1):
            if said[i : i + len(want)] == want:
                return i
        return None

    def at(self, token: int) -> float:
        return self.starts[token] if 0 <= token < len(self.starts) else self.end_s


def _norm(token: str) -> str:
    return "".join(WORD.findall(token.lower()))


# --------------------------------------------------------------------------- drawing


def _canvas(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGBA", (max(2, width), max(2, height)), (0, 0, 0, 0))
    return image, ImageDraw.Draw(image)


def _words(draw: ImageDraw.ImageDraw, x: int, y: int, words: list[tuple[str, tuple[int, int, int, int]]],
           size: int) -> None:
    """Draw ``words`` on one line from ``(x, y)``, each in its own colour, each with a soft shadow.

    Each word is drawn in a font that has its letters; a right-to-left line is laid from its right end.
    """
    line = ""
    offset = max(1, size // 20)
    rtl = is_rtl(" ".join(word for word, _ in words))
    total = text_width(" ".join(word for word, _ in words), size)
    for word, colour in words:
        f = font(size, word)
        start = x + text_width(line + " ", size) if line else x
        if rtl:
            start = x + total - (start - x) - text_width(word, size)
        draw.text((start + offset, y + offset), word, font=f, fill=(0, 0, 0, min(180, colour[3] * 2 // 3)))
        draw.text((start, y), word, font=f, fill=colour)
        line = f"{line} {word}" if line else word


def _line_height(size: int) -> int:
    ascent, descent = font(size).getmetrics()
    return ascent + descent + size // 4


# --------------------------------------------------------------------------- quote


def key_sentence(scene: Scene) -> str:
    """What a quote sets large: the sentence that says the caption, else the first short one.

    Where every sentence is too long to set large, the clause that says the caption (or the longest
    short clause) stands for it, and failing that the first words of the sentence.
    """
    sentences = split_sentences(scene.narration) or [scene.narration]
    caption = scene.caption.lower()
    fitting = [s for s in sentences if len(s.split()) <= QUOTE_WORDS]
    if not fitting:
        clauses = (c.rstrip(",;:").strip() for s in sentences for c in _CLAUSE.split(s))
        fitting = [c[:1].upper() + c[1:] for c in clauses if 4 <= len(c.split()) <= QUOTE_WORDS]
        fitting.sort(key=lambda c: -len(c.split()))
    for sentence in fitting:
        if caption and caption in sentence.lower():
            return sentence
    if fitting:
        return fitting[0]
    return " ".join(sentences[0].split()[:QUOTE_WORDS]).rstrip(",;:") + "…"


def phrases(tokens: list[str]) -> list[int]:
    """For each token of a sentence, the phrase it belongs to: phrases end at punctuation or after a few words."""
    out, phrase, length = [], 0, 0
    for token in tokens:
        out.append(phrase)
        length += 1
        if token.endswith((",", ";", ":", "—", "–")) or length >= PHRASE_WORDS:
            phrase, length = phrase + 1, 0
    return out


def quote_layout(scene: Scene, clock: WordClock, palette: Palette, area: Area) -> list[Overlay]:
    """The key sentence set large; one state per phrase, each lighting the phrases said so far."""
    sentence = key_sentence(scene)
    lines, size = _fit_quote(sentence, area)
    shown = [line.split() for line in lines]
    tokens = sentence.split()
    count = sum(len(line) for line in shown)
    # Shown words line up with the sentence's tokens unless a word too wide for a line was broken
    # (then the whole quote lights at once); a quote cut short with an ellipsis shows fewer.
    which = phrases(tokens)[:count] if count <= len(tokens) else [0] * count
    first = clock.find(sentence)
    said_at = [clock.at((first or 0) + i) for i in range(len(which))]
    last = max(which, default=0)
    phrase_start = [min(t for t, p in zip(said_at, which, strict=True) if p == q) for q in range(last + 1)]
    height = len(lines) * _line_height(size) + size // 2  # the lines, and the accent rule under them
    y0 = area.top + (area.height - height) // 2
    out = []
    for state in range(-1, last + 1):
        rgba = _quote_state(shown, which, state, size, palette, area.width, height)
        begin = -FOREVER if state < 0 else phrase_start[state]
        end = phrase_start[state + 1] if state < last else FOREVER
        if end > begin:
            out.append(Overlay(f"quote {state + 1}", rgba, area.left, y0, begin, end, fade=state < 0))
    return out


def _fit_quote(sentence: str, area: Area) -> tuple[list[str], int]:
    """The quote's lines and size: large, but filling at most ``QUOTE_FILL`` of the area's height."""
    size, least = int(area.unit * 0.1), int(area.unit * 0.045)
    most = 4 if area.width >= area.height else 7  # a tall frame has room for more, shorter lines
    while True:
        lines, size = fit_text(sentence, size, area.width, most, min_size=least)
        if len(lines) * _line_height(size) + size // 2 <= area.height * QUOTE_FILL or size <= least:
            return lines, size
        size = max(least, int(size * 0.9))


def _quote_state(lines: list[list[str]], which: list[int], state: int, size: int, palette: Palette,
                 width: int, height: int) -> np.ndarray:
    """The quote with the phrases up to ``state`` in full colour and the rest faint, lines centred."""
    image, draw = _canvas(width, height)
    i = 0
    lit, faint = (*palette.text, 255), (*palette.text, UNSAID_ALPHA)
    for n, line in enumerate(lines):
        x = (width - int(text_width(" ".join(line), size))) // 2
        words = []
        for word in line:
            words.append((word, lit if which[i] <= state else faint))
            i += 1
        _words(draw, x, n * _line_height(size), words, size)
    # An accent rule under the quote ties it to the theme.
    rule = max(2, size // 10)
    draw.rectangle((width // 2 - size, height - rule, width // 2 + size, height - 1), fill=(*palette.accent, 255))
    return np.array(image, dtype=np.uint8, order="C")


# --------------------------------------------------------------------------- list


def item_starts(items: list[str], clock: WordClock) -> list[float]:
    """When each item starts being said; an item not found in the narration is placed by its order."""
    starts: list[float] = []
    token = 0
    for n, item in enumerate(items):
        found = clock.find(item, token)
        if found is None:
            at = max(starts[-1] if starts else 0.0, clock.end_s * n / len(items))
        else:
            token, at = found + 1, clock.at(found)
        starts.append(max(at, starts[-1]) if starts else at)
    return starts


def fit_items(items: list[str], area: Area) -> tuple[list[list[str]], int]:
    """The items wrapped at one size, as large as lets them all fit the area (one line each if need be)."""
    size = int(area.unit * 0.055)
    indent = size
    max_lines = 2 if len(items) <= 4 else 1
    while True:
        wrapped = [fit_text(item, size, area.width - indent, max_lines, min_size=size)[0] for item in items]
        lines = sum(len(w) for w in wrapped)
        height = lines * _line_height(size) + (len(items) - 1) * size // 2
        if height <= area.height or size <= area.unit * 0.03:
            return wrapped, size
        size = max(int(area.unit * 0.03), int(size * 0.9))
        indent = size


def list_layout(scene: Scene, clock: WordClock, palette: Palette, area: Area) -> list[Overlay]:
    """Bullets: one state per item, each showing the items said so far."""
    items = list(scene.items or [])
    wrapped, size = fit_items(items, area)
    starts = item_starts(items, clock)
    block_h = sum(len(w) for w in wrapped) * _line_height(size) + (len(items) - 1) * size // 2
    width = area.width
    y0 = area.top + max(0, (area.height - block_h) // 2)
    out = []
    for k in range(len(items)):
        image, draw = _canvas(width, block_h)
        y = 0
        for item in wrapped[: k + 1]:
            r = max(3, size // 6)
            cy = y + _line_height(size) // 2 - size // 8
            draw.ellipse((size // 3 - r, cy - r, size // 3 + r, cy + r), fill=(*palette.accent, 255))
            for line in item:
                _words(draw, size, y, [(line, (*palette.text, 255))], size)
                y += _line_height(size)
            y += size // 2
        end = starts[k + 1] if k + 1 < len(items) else FOREVER
        if end > starts[k]:
            out.append(Overlay(f"list {k + 1}", np.array(image, dtype=np.uint8, order="C"), area.left, y0, starts[k],
                             end, fade=k == 0))
    return out


# --------------------------------------------------------------------------- figure


@dataclass(frozen=True)
class Figure:
    """A key figure split for display: ``prefix`` + number + ``suffix``, and the words it counts."""

    prefix: str
    number: str
    suffix: str
    label: str
    token: str

    @property
    def text(self) -> str:
        return f"{self.prefix}{self.number}{self.suffix}"

    def at(self, share: float) -> str:
        """The figure counted ``share`` (0..1) of the way up, written the way the article writes it."""
        if share >= 1 or not _COUNTABLE.match(self.number):
            return self.text
        decimals = len(self.number.split(".")[1]) if "." in self.number else 0
        value = float(self.number.replace(",", "")) * share
        grouped = "," in self.number
        number = f"{value:,.{decimals}f}" if grouped else f"{value:.{decimals}f}"
        return f"{self.prefix}{number}{self.suffix}"


def parse_figure(figure: str, narration: str, caption: str) -> Figure:
    """The number of ``figure`` ("30,000 contracted teaching staff") with its unit, currency and label."""
    words = figure.split()
    n = next(i for i, w in enumerate(words) if _NUMERIC.search(w))
    token = words[n]
    found = re.search(r"\d+(?:[.,]\d+)*", token)
    number = found.group(0).rstrip(".,")
    suffix = token[found.start() + len(number) :].rstrip(".,;:)!?\"'”’")
    rest = words[n + 1 :]
    if rest and rest[0].lower() in _SCALES:
        scale = rest.pop(0)
        suffix += "%" if scale.lower() in ("percent", "per") else f" {scale}"
        if rest and rest[0].lower() == "cent":
            rest.pop(0)
    currency = re.search(rf"([$€£¥])\s?{re.escape(number)}", narration)
    label = " ".join(w.strip("()[]\"“”") for w in words[:n] + rest).strip() or caption
    return Figure(currency.group(1) if currency else "", number, suffix, label[:1].upper() + label[1:], token)


def figure_layout(scene: Scene, clock: WordClock, palette: Palette, area: Area) -> list[Overlay]:
    """The figure large with its label under it: faint until it is said, then counting up to it."""
    figure = parse_figure(scene.figure or "", scene.narration, scene.caption)
    _, big_size = fit_text(figure.text, int(area.unit * 0.2), area.width, 1, min_size=int(area.unit * 0.06))
    label_lines, label_size = fit_text(figure.label, int(area.unit * 0.055), area.width, 2,
                                       min_size=int(area.unit * 0.035))
    label = text_panel(label_lines, label_size, palette.accent, None, pad=label_size // 4)
    number_h = _line_height(big_size)
    top = area.top + max(0, (area.height - number_h - label.shape[0]) // 2)
    said = clock.find(figure.token)
    said_s = clock.at(said) if said is not None else 0.0
    out = [Overlay("figure label", label, *area.centred(label, top + number_h), -FOREVER, FOREVER, fade=True)]
    # Until it is said the figure waits faint, as a quote's words do.
    waiting = text_panel([figure.text], big_size, palette.text, None, pad=big_size // 8)
    waiting[..., 3] = (waiting[..., 3].astype(np.uint16) * UNSAID_ALPHA // 255).astype(np.uint8)
    out.append(Overlay("figure 0", waiting, *area.centred(waiting, top), -FOREVER, said_s, fade=True))
    steps = COUNT_STEPS if _COUNTABLE.match(figure.number) else 1
    for step in range(1, steps + 1):
        number = text_panel([figure.at(_ease(step / steps))], big_size, palette.text, None, pad=big_size // 8)
        begin = said_s + COUNT_S * (step - 1) / steps
        end = said_s + COUNT_S * step / steps if step < steps else FOREVER
        out.append(Overlay(f"figure {step}", number, *area.centred(number, top), begin, end, fade=steps == 1))
    return [d for d in out if d.end_s > d.start_s]


def _ease(t: float) -> float:
    """Ease-out: fast at first, settling on the figure."""
    return 1 - (1 - t) ** 3


# --------------------------------------------------------------------------- section


def section_card(heading: str, palette: Palette, area: Area) -> Overlay:
    """The heading of the section a scene opens, large and centred over an accent rule."""
    lines, size = fit_text(heading, int(area.unit * 0.095), area.width, 2, min_size=int(area.unit * 0.05))
    text = text_panel(lines, size, palette.text, None, pad=size // 4)
    rule_h = max(3, size // 8)
    h, w = text.shape[:2]
    out = np.zeros((h + 2 * rule_h, w, 4), np.uint8)
    out[:h] = text
    rule_w = min(w, size * 3)
    out[h + rule_h :, (w - rule_w) // 2 : (w + rule_w) // 2, :3] = palette.accent
    out[h + rule_h :, (w - rule_w) // 2 : (w + rule_w) // 2, 3] = 255
    return Overlay("section", out, *area.centred(out), -FOREVER, FOREVER, fade=True)
