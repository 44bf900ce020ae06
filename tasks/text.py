"""Plain-text helpers shared by the stages: words, sentences, content tokens and speaking time."""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e u.s u.k a.m p.m no fig inc ltd co corp jan feb mar apr jun "
    "jul aug sep sept oct nov dec gen gov sen rep rev approx dept est mt ft".split()
)
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])")
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
TERMINAL = re.compile(r"[.!?…][\"'”’)\]]*$")
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can could did do does doing don't down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it it's its itself just let me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that that's the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your yours
    yourself yourselves one two new said says like get got also may might many much even still us says told
    however though although yet s t re ve ll d m""".split()
)


#: Shortest a title scene lasts, however short the title: long enough to read it.
TITLE_MIN_S = 3.0


def spoken_title(title: str) -> str:
    """The title as the title scene says it: a sentence, with its closing punctuation."""
    title = title.strip()
    return title if TERMINAL.search(title) else f"{title}."


def estimate_seconds(text: str, words_per_minute: float) -> float:
    """How long ``text`` takes to say at ``words_per_minute``, with a short pause after it."""
    words = len(WORD.findall(text))
    return round(max(1.5, words * 60.0 / words_per_minute + 0.6), 2)


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph into sentences, keeping abbreviations and initials intact."""
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        before = paragraph[start : match.start()].rstrip("\"'”’)]")
        last = before.rsplit(None, 1)[-1].lower().rstrip(".") if before.strip() else ""
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        sentences.append(paragraph[start : match.start()].strip())
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


_CONTRACTION = re.compile(r"['’](?:t|m|re|ve|ll|d)$", re.IGNORECASE)


def is_stopword(word: str) -> bool:
    """True for function words and contractions ("didn't", "we're"), which carry no topic."""
    w = word.lower().replace("’", "'")
    return len(w) < 2 or w in STOPWORDS or bool(_CONTRACTION.search(w))


def tokenize(text: str) -> list[str]:
    """Lower-cased content words of ``text`` (stop words, contractions and one-letter words removed)."""
    return [m.group(0).lower().replace("’", "'") for m in WORD.finditer(text) if not is_stopword(m.group(0))]


def count_words(text: str) -> int:
    """Number of words in ``text``."""
    return len(WORD.findall(text))


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters at a word boundary, with an ellipsis if it was cut."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    if " " in cut[max_chars // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"
