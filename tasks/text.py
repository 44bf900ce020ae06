"""Plain-text helpers shared by the stages: words, sentences, content tokens and speaking time."""

from __future__ import annotations

import math
import re
import unicodedata

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e u.s u.k a.m p.m no fig inc ltd co corp jan feb mar apr jun "
    "jul aug sep sept oct nov dec gen gov sen rep rev approx dept est mt ft".split()
)
# A sentence ends at "." "!" "?" "…" before a space and a word that is not lower case; at Chinese and
# Japanese full stops wherever they are, except inside a quotation the sentence goes on after
# (「…。」と答えた); at Arabic "؟" and Devanagari "।" before a space.
_BOUNDARY = re.compile(
    r"(?P<wide>(?<=[。！？])(?:[」』”’）)]+\s+|\s*)(?=[^\s。！？」』”’）)]))"
    r"|(?P<mark>(?<=[؟।॥])[\"'”’)\]]*\s+)"
    r"|(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[¿¡«]?(?P<next>[^\W_]))"
)


def _mark_ranges() -> str:
    """A regex class body of the combining marks (Unicode M*) of the scripts that use them."""
    spans: list[tuple[int, int]] = []
    for lo, hi in ((0x0300, 0x1CFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xA8E0, 0xABFF), (0xFE00, 0xFE2F)):
        for code in range(lo, hi + 1):
            if unicodedata.category(chr(code)).startswith("M"):
                if spans and spans[-1][1] == code - 1:
                    spans[-1] = (spans[-1][0], code)
                else:
                    spans.append((code, code))
    return "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in spans)


#: A letter or digit, or a combining mark on one: Devanagari vowel signs, Arabic vowels and Thai
#: tone marks belong to their word (Python's ``\\w`` alone splits "दशकों" at its vowel signs).
LETTER = f"(?:[^\\W_]|[{_mark_ranges()}])"
WORD = re.compile(f"{LETTER}+(?:['’]{LETTER}+)*", re.UNICODE)
TERMINAL = re.compile(r"[.!?…。！？؟।॥][\"'”’)\]」』）]*$")
#: Characters of scripts written without spaces between words (Han, kana): Chinese and Japanese.
WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
_WIDE_RUN = re.compile(WIDE.pattern + "+")
#: How many Chinese or Japanese characters count as one word, for lengths and speaking time: both
#: languages average one and a half to two characters a word, and a voice says about as many
#: characters a minute as an English one says words times that.
WIDE_CHARS_PER_WORD = 1.6
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
    if TERMINAL.search(title):
        return title
    if WIDE.match(title[-1:]):
        return f"{title}。"
    return f"{title}।" if "\u0900" <= title[-1:] <= "\u097f" else f"{title}."


#: Characters of Chinese or Japanese a voice says in the time an English voice at the same rate says
#: one word, by language. Measured with espeak-ng at 160 words a minute: English 183 words a minute
#: (with its pauses), Mandarin 209 characters, Japanese 98 (its voice spells out kanji slowly).
SPOKEN_CHARS_PER_WORD = {"zh": 1.15, "ja": 0.55}


def speaking_words(text: str, lang: str | None = None) -> float:
    """How many English words' worth of speaking time ``text`` takes in ``lang``: words where there are
    spaces, characters (``SPOKEN_CHARS_PER_WORD``) where there are none."""
    per_char = SPOKEN_CHARS_PER_WORD.get((lang or "").split("-")[0].lower(), WIDE_CHARS_PER_WORD)
    total = 0.0
    for m in WORD.finditer(text):
        wide = len(WIDE.findall(m.group(0)))
        total += wide / per_char + (1 if len(m.group(0)) > wide else 0) if wide else 1
    return total


def estimate_seconds(text: str, words_per_minute: float, lang: str | None = None) -> float:
    """How long ``text`` takes to say at ``words_per_minute`` in ``lang``, with a short pause after it.

    Chinese and Japanese are counted in characters (``speaking_words``).
    """
    return round(max(1.5, speaking_words(text, lang) * 60.0 / words_per_minute + 0.6), 2)


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph into sentences, keeping abbreviations and initials intact.

    Works for scripts without spaces (a Chinese "。" ends a sentence with nothing after it) and
    caseless ones (after ". " any word that is not lower case starts a new sentence).
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        if match.group("next") is not None:
            if match.group("next").islower():
                continue
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


def is_stopword(word: str, also: frozenset[str] = frozenset()) -> bool:
    """True for function words and contractions ("didn't", "we're"), which carry no topic.

    ``also`` adds the function words of the article's language (``tasks.wordlists.function_words``).
    """
    w = word.lower().replace("’", "'")
    return len(w) < 2 or w in STOPWORDS or w in also or bool(_CONTRACTION.search(w))


def tokenize(text: str, also: frozenset[str] = frozenset()) -> list[str]:
    """Lower-cased content words of ``text`` (stop words, contractions and one-letter words removed).

    Chinese and Japanese, which have no spaces, give overlapping pairs of characters instead of words.
    """
    out: list[str] = []
    for m in WORD.finditer(text):
        word = m.group(0)
        if WIDE.search(word):
            for run in _WIDE_RUN.findall(word):
                out += [run[i : i + 2] for i in range(max(1, len(run) - 1))]
            out += [w.lower() for w in _WIDE_RUN.split(word) if w and not is_stopword(w, also)]
        elif not is_stopword(word, also):
            out.append(word.lower().replace("’", "'"))
    return [t for t in out if len(t) >= 2]


def count_words(text: str) -> int:
    """Number of words in ``text``; Chinese and Japanese characters count ``WIDE_CHARS_PER_WORD`` to a word."""
    total = 0
    for m in WORD.finditer(text):
        wide = len(WIDE.findall(m.group(0)))
        total += math.ceil(wide / WIDE_CHARS_PER_WORD) + (1 if len(m.group(0)) > wide else 0) if wide else 1
    return total


def join_sentences(sentences: list[str]) -> str:
    """Sentences as one text: a space between them, none after a Chinese or Japanese full stop."""
    out = ""
    for sentence in sentences:
        glue = "" if not out or out[-1] in "。！？」』）" else " "
        out += glue + sentence
    return out


def length_in_words(text: str) -> int:
    """How many words long ``text`` is, counted between spaces; Chinese and Japanese by characters."""
    return sum(count_words(token) if WIDE.search(token) else 1 for token in text.split())


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters at a word boundary, with an ellipsis if it was cut."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    if " " in cut[max_chars // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"
