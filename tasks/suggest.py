"""An extractive video script: the article's most central sentences, in order, fitted to a duration.

Sentences are ranked with TextRank (``kernels.textrank``), picked best-first until the word
budget for the target duration is spent, put back in article order and grouped into scenes.
A sentence that leans on the one before ("This", "However", "The third ...") comes with it or
not at all, and a "first ... second ... third" run is narrated whole or not at all. Boilerplate
(newsletter prompts, cookie notes, share buttons, credits) is never narrated. A scene's caption
is the heading it sits under, else its heaviest noun phrase; a scene that opens one of the
article's sections carries that heading (``Scene.section``). A title scene opens the video and
a closing scene names the source. Deterministic.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from kernels.textrank import rank_sentences
from tasks.errors import ExtractionError
from tasks.models import NARRATION_MAX_CHARS, Article, Scene, Storyboard, StoryboardOptions
from tasks.phrasebook import byline_caption, closing_line, source_word
from tasks.text import (
    LETTER,
    TERMINAL,
    TITLE_MIN_S,
    WIDE,
    WORD,
    clip,
    count_words,
    estimate_seconds,
    is_stopword,
    join_sentences,
    speaking_words,
    split_sentences,
    spoken_title,
    tokenize,
)
from tasks.wordlists import (
    FUNCTION_WORDS,
    ORDINALS,
    REFERRING_OPENERS,
    VERBS,
    WIDE_OPENERS,
    function_words,
    verb_endings,
)

logger = logging.getLogger("pagereel.suggest")

MIN_SENTENCEWORDS = 5
#: Words in a run that a sentence and a paragraph share when one repeats the other (a pull quote).
_SHINGLE = 4
MAX_SENTENCEWORDS = 70
CAPTION_MAXWORDS = 6
CAPTION_MAX_CHARS = 48
#: Longest caption in Chinese or Japanese characters, each about twice as wide as a Latin letter.
CAPTION_WIDE_MAX_CHARS = 16
WORDS_PER_SCENE = 30
IMAGE_REACH = 3  # paragraphs an image may sit away from the scene it illustrates
#: Longest title, byline and site name used (as an edited title may be); pages may carry far longer ones.
TITLE_MAX_CHARS = 300
NAME_MAX_CHARS = 120
#: Sentences longer than this are not narration (a run-on list, a table flattened into text).
MAX_SENTENCE_CHARS = 1000
#: Scenes are planned to fill at most this share of a narration, so uneven groups still fit.
_SCENE_FILL = 0.8
MAX_ITEMS = 8  # list items a list scene shows
WRITER = "extractive"  # the name this writer is registered under, on each scene it writes

# Caption words: numbers whole ("30,000", "4.5%", "1990s"), hyphenated and apostrophed words whole.
_CAPTION_WORD = re.compile(rf"\d+(?:[.,:]\d+)*(?:%|st|nd|rd|th|s)?|{LETTER}+(?:['’-]{LETTER}+)*")
_NUMBER = re.compile(r"^\d+(?:[.,:]\d+)*(?:%|st|nd|rd|th|s)?$")
_YEAR = re.compile(r"^(?:1[5-9]|20)\d\d$")
_MONTHS = frozenset("january february march april may june july august september october november december "
                    "jan feb mar apr jun jul aug sep sept oct nov dec".split())
_PHRASE_BREAK = frozenset(".;:!?()[]\"“”—–…")
# Text that is page furniture, never narration.
_BOILERPLATE = re.compile(
    r"\b(?:sign(?:ing)?[ -]up|subscribe|subscription|newsletter|inbox)\b"
    r"|\bcookies?\b|\ball rights reserved\b|©|\(c\)\s*\d{4}|\bcopyright\s+(?:©\s*)?\d{4}"
    r"|\bshare\s+(?:this|on|via|with)\b|\b(?:follow|like|join)\s+us\b|\bclick\s+here\b"
    r"|\b(?:photo(?:graph)?s?|images?|pictures?|illustrations?|video)\s*(?:credit|courtesy|by)?\s*:"
    r"|\b(?:photo(?:graph)?|image|picture|illustration)\s+(?:by|courtesy\s+of)\b|\bcredits?\s*:"
    r"|\bgetty\s+images\b|\bshutterstock\b|\b(?:AP|AFP|Reuters)\s+photo\b|\badvertisement\b"
    r"|\bprivacy\s+policy\b|\bterms\s+of\s+(?:use|service)\b|\bread\s+(?:more|next)\s*:",
    re.IGNORECASE,
)

# Sections that are page furniture: what sits under these headings is never narrated.
_FURNITURE_SECTION = re.compile(
    r"^(?:references|notes|footnotes|citations|sources|bibliography|external links|see also|further reading"
    r"|related(?: \w+)?|more (?:from|on|in|like)\b.*|read more|comments?|share(?: this)?(?: \w+)?|about the author"
    r"|newsletter|sign up.*|subscribe.*|tags|categories|popular(?: \w+)?|trending(?: \w+)?|you might also like)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Sentence:
    text: str
    paragraph: int
    words: float  # its speaking time, in words (``tasks.text.speaking_words``)
    tokens: tuple[str, ...]
    item: bool = False  # a list item of the article


def suggest_storyboard(article: Article, options: StoryboardOptions | None = None) -> Storyboard:
    """Cut ``article`` into a storyboard that lasts about ``options.target_duration_s``."""
    options = options or StoryboardOptions()
    sentences = _sentences(article)
    if not sentences:
        raise ExtractionError("the article has no complete sentences to narrate; try another URL")
    wpm = options.words_per_minute
    lang = options.language or article.lang or "en"

    title_scene = title_scene_of(article, wpm, lang=lang)
    closing_scene = closing_scene_of(article, wpm, lang=lang)
    budget = options.target_duration_s * wpm / 60.0
    budget -= speaking_words(title_scene.narration, lang) + speaking_words(closing_scene.narration, lang)
    min_body = max(1, options.min_scenes - 2)
    max_body = max(min_body, options.max_scenes - 2)

    scores = _scores(sentences)
    units = _units(sentences, article.title, _said_elsewhere(sentences, article))
    picked = _pick(sentences, scores, units, budget, min_body)
    planned = _group(picked, sentences, min_body, max_body)
    groups = [_within_limit(g, sentences, scores, units) for g in planned]
    left_out = sum(len(g) for g in planned) - sum(len(g) for g in groups)
    if left_out:
        logger.warning("left out %d sentences that would make a scene narrate more than %d characters; raise "
                       "storyboard.max_scenes for a longer video", left_out, NARRATION_MAX_CHARS)

    weights = token_weights(sentences)
    headings = section_headings(article)
    images = ImagePicker(article)
    body: list[Scene] = []
    section = None  # the heading the scene before ended under
    for n, group in enumerate(groups, start=1):
        text = join_sentences([sentences[i].text for i in group])
        first = sentences[group[0]]
        heading = headings.get(first.paragraph)
        opens = heading if heading and heading != section else None
        section = headings.get(sentences[group[-1]].paragraph)
        body.append(
            Scene(
                id=f"s{n}",
                kind="body",
                narration=text,
                caption=headings.get(first.paragraph) or key_phrase(text, weights, lang=article.lang),
                image=images.near(first.paragraph),
                hint_s=estimate_seconds(text, wpm, lang),
                writer=WRITER,
                section=opens,
                **_layout([sentences[i] for i in group], weights),
            )
        )
    title_scene = title_scene.model_copy(update={"image": images.lead()})
    return Storyboard(
        title=clip(article.title, TITLE_MAX_CHARS),
        source_url=article.source_url,
        lang=lang,
        scenes=[title_scene, *body, closing_scene],
    )


def section_headings(article: Article) -> dict[int, str]:
    """For each paragraph under one of the article's own headings, that heading (when it fits a caption).

    The heading that repeats the title covers everything and says nothing: it is not a section.
    """
    out: dict[int, str] = {}
    current: str | None = None
    title = _normal(article.title).split()
    for p, text in enumerate(article.paragraphs):
        if article.kind_of(p) == "heading":
            said = _normal(text).split()
            fits = len(text) <= CAPTION_MAX_CHARS and said and said != title[: len(said)]
            current = text.rstrip(":.") if fits else None
        elif current:
            out[p] = current
    return out


def caption_weights(article: Article) -> dict[str, float]:
    """The weight of each content word of ``article``, as :func:`key_phrase` uses it."""
    return token_weights(_sentences(article))


def is_caption_phrase(caption: str, lang: str | None = None) -> bool:
    """True if ``caption`` fits on screen and neither starts nor ends on a function word (of ``lang`` too)."""
    words = _CAPTION_WORD.findall(caption)
    also = function_words(lang)
    return bool(words) and _fits_caption(caption) and not (
        _is_edge_word(words[0], also) or _is_edge_word(words[-1], also)
    )


def _fits_caption(text: str) -> bool:
    return len(text) <= (CAPTION_WIDE_MAX_CHARS if WIDE.search(text) else CAPTION_MAX_CHARS)


def key_phrase(text: str, weights: dict[str, float], lang: str | None = None) -> str:
    """The heaviest noun phrase of ``text``, whole, as a short on-screen caption.

    A phrase never starts or ends on a function word, preposition, adverb or conjunction
    (``tasks.wordlists``), never ends on a verb, keeps numbers whole and is never cut in the
    middle of a name; at most ``CAPTION_MAXWORDS`` words and ``CAPTION_MAX_CHARS`` characters.
    ``lang`` adds that language's function words; Chinese and Japanese, which have no spaces,
    give a whole clause between punctuation marks.
    """
    best: tuple[float, int, list[str]] | None = None
    also = function_words(lang)
    said = Counter(tokenize(text, also))
    for n, run in enumerate(_phrases(text, also, verb_endings(lang))):
        # A word the scene says again is what the scene is about.
        score = sum(_weight(w, weights) * (1 + 0.5 * max(0, said[_token(w)] - 1)) for w in run) / math.sqrt(len(run))
        if len(run) >= 2:
            score *= 1.25  # a phrase reads better than a lone word
        if best is None or score > best[0]:
            best = (score, n, run)
    if best is None:
        words = [w for w in _CAPTION_WORD.findall(text) if not _is_edge_word(w, also)]
        if WIDE.search(text):  # the shortest clause: never a sentence cut in the middle of a word
            words = sorted(words, key=len)
        caption = words[0] if words else ""
    else:
        caption = " ".join(best[2])
    return caption[:1].upper() + caption[1:]


# --------------------------------------------------------------------------- internals


def _normal(text: str) -> str:
    return " ".join(w.lower() for w in WORD.findall(text))


def is_boilerplate(text: str) -> bool:
    return bool(_BOILERPLATE.search(text))


def narrated_paragraphs(article: Article) -> list[int]:
    """Paragraphs a script may narrate: no headings, table cells, or sections such as "References"."""
    out: list[int] = []
    furniture = False
    for p, paragraph in enumerate(article.paragraphs):
        kind = article.kind_of(p)
        if kind == "heading":
            furniture = bool(_FURNITURE_SECTION.match(paragraph.strip(" :.")))
        elif kind != "cell" and not furniture:
            out.append(p)
    return out


def _sentences(article: Article) -> list[_Sentence]:
    out: list[_Sentence] = []
    also = function_words(article.lang)
    for p in narrated_paragraphs(article):
        paragraph, kind = article.paragraphs[p], article.kind_of(p)
        for text in split_sentences(paragraph):
            words = count_words(text)
            # Headings, datelines and captions have no closing punctuation: they are not narration.
            if (MIN_SENTENCEWORDS <= words <= MAX_SENTENCEWORDS and len(text) <= MAX_SENTENCE_CHARS
                    and TERMINAL.search(text) and not is_boilerplate(text)):
                out.append(_Sentence(text, p, speaking_words(text, article.lang), tuple(tokenize(text, also)),
                                     item=kind == "item"))
    return out


def _scores(sentences: list[_Sentence]) -> list[float]:
    vocab: dict[str, int] = {}
    token_ids = [[vocab.setdefault(t, len(vocab)) for t in s.tokens] for s in sentences]
    ranks = rank_sentences(token_ids)
    # A light lead bias: articles state their point early.
    return [float(r) * (1.0 + 0.25 / (1 + s.paragraph)) for r, s in zip(ranks, sentences, strict=True)]


def _opening(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text[:80])[:3]]


def _ordinal(text: str) -> int | None:
    """The ordinal a sentence opens with: "The third problem ..." or "Second, ..." give 3 and 2."""
    words = _opening(text)
    if len(words) >= 2 and words[0] == "the" and words[1] in ORDINALS:
        return ORDINALS[words[1]]
    if words and words[0] in ORDINALS:
        return ORDINALS[words[0]]
    return None


def _refers_back(text: str) -> bool:
    words = _opening(text)
    if not words:
        return False
    ordinal = _ordinal(text)
    # "These towers ...", "Keeping that rhythm ...": a demonstrative early on points back too.
    pointing = any(w in ("this", "these", "those") for w in words) or (
        len(words) > 1 and words[0].endswith("ing") and words[1] == "that"
    )
    return words[0] in REFERRING_OPENERS or pointing or (ordinal is not None and ordinal > 1)


def _units(sentences: list[_Sentence], title: str,
           repeated: frozenset[int] = frozenset()) -> list[frozenset[int] | None]:
    """For each sentence, every sentence it must be narrated with (itself included), or None if it cannot be.

    A sentence that refers back needs the one before it (in the same or the previous paragraph);
    members of a "first ... second ... third" run need each other. A sentence that repeats the
    title is never narrated: the title scene has just said it; nor is one of ``repeated``.
    """
    units: list[frozenset[int] | None] = []
    for i, s in enumerate(sentences):
        if _repeats(s.text, title) or i in repeated:
            units.append(None)
        elif not _refers_back(s.text) or (_ordinal(s.text) or 0) > 1:
            units.append(frozenset({i}))
        elif i > 0 and sentences[i - 1].paragraph >= s.paragraph - 1 and units[i - 1] is not None:
            units.append(units[i - 1] | {i})
        else:
            units.append(None)  # leans on something the script cannot say
    for run in _ordinal_runs(sentences):
        whole: frozenset[int] | None = frozenset()
        for i in run:
            whole = None if whole is None or units[i] is None else whole | units[i]
        for j, unit in enumerate(units):
            if unit is not None and unit & set(run):
                units[j] = None if whole is None else unit | whole
    # An ordinal above one outside any run has nothing to follow.
    in_runs = {i for run in _ordinal_runs(sentences) for i in run}
    for i, s in enumerate(sentences):
        if (_ordinal(s.text) or 0) > 1 and i not in in_runs:
            units[i] = None
    return units


def _said_elsewhere(sentences: list[_Sentence], article: Article) -> frozenset[int]:
    """The sentences another narrated paragraph already says whole: a pull quote repeats a line of the body.

    A sentence is such a repeat when another paragraph holds every run of :data:`_SHINGLE` of its
    words and that paragraph comes first or says more (of two equal lines the first is kept).
    """
    said = {p: _normal(article.paragraphs[p]).split() for p in {s.paragraph for s in sentences}}
    holders: dict[tuple[str, ...], set[int]] = {}
    for p, words in said.items():
        for k in range(len(words) - _SHINGLE + 1):
            holders.setdefault(tuple(words[k : k + _SHINGLE]), set()).add(p)
    out = set()
    for i, s in enumerate(sentences):
        words = _normal(s.text).split()
        if len(words) < _SHINGLE:
            continue
        runs = sorted((holders.get(tuple(words[k : k + _SHINGLE]), set())
                       for k in range(len(words) - _SHINGLE + 1)), key=len)
        others = set.intersection(*runs) - {s.paragraph}
        if any(q < s.paragraph or len(said[q]) > len(words) for q in others):
            out.add(i)
    return frozenset(out)


def _ordinal_runs(sentences: list[_Sentence]) -> list[list[int]]:
    runs: list[list[int]] = []
    last = 0
    for i, s in enumerate(sentences):
        n = _ordinal(s.text)
        if n == 1:
            runs.append([i])
            last = 1
        elif n is not None and runs and n == last + 1:
            runs[-1].append(i)
            last = n
    return [run for run in runs if len(run) > 1]


def _repeats(text: str, title: str) -> bool:
    said, heading = _normal(text), _normal(title)
    if not heading:
        return False
    if said.startswith(heading):
        return True
    a, b = set(said.split()), set(heading.split())
    return len(a & b) >= 0.8 * len(a)


def _pick(sentences: list[_Sentence], scores: list[float], units: list[frozenset[int] | None],
          budget: float, min_count: int) -> list[int]:
    order = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    picked: set[int] = set()
    used = 0.0
    for i in order:
        unit = units[i]
        if unit is None or i in picked:
            continue
        cost = sum(sentences[j].words for j in unit - picked)
        if used + cost <= budget:
            picked |= unit
            used += cost
    for i in order:  # a short budget still gets the fewest scenes asked for
        if len(picked) >= min_count:
            break
        if units[i] is not None:
            picked |= units[i]
    for i in order:  # an article of nothing but dependent sentences still gets narrated
        if len(picked) >= min(min_count, len(sentences)):
            break
        picked.add(i)
    return sorted(picked)


def _layout(group: list[_Sentence], weights: dict[str, float]) -> dict[str, object]:
    """The renderer's hint for a scene: its list items, or the key figure it carries."""
    items = [s.text for s in group if s.item]
    if len(items) >= 2:
        return {"layout": "list", "items": items[:MAX_ITEMS]}
    for s in group:
        figure = key_figure(s.text)
        if figure:
            return {"layout": "figure", "figure": figure}
    return {}


def key_figure(text: str) -> str | None:
    """The first figure of ``text`` with the noun phrase it counts ("30,000 contracted teaching staff").

    A version or a name's number ("Python 3.6.0", "iOS 13") and a date ("13 April") count nothing.
    """
    for run in _phrases(text):
        if any(_counts(run, i) for i in range(len(run))):
            return " ".join(run)
    return None


def _counts(run: list[str], i: int) -> bool:
    """Whether ``run[i]`` is a number that counts something: no year, version, name's number or day."""
    word = run[i]
    if not _NUMBER.match(word) or _YEAR.match(word) or word.count(".") > 1:
        return False
    before = run[i - 1] if i else ""
    after = run[i + 1].lower() if i + 1 < len(run) else ""
    return not (any(c.isupper() for c in before) or before.lower() in _MONTHS or after in _MONTHS)


def _group(picked: list[int], sentences: list[_Sentence], min_body: int, max_body: int) -> list[list[int]]:
    """Split the picked sentences, in order, into scenes of about equal word counts."""
    words = [sentences[i].words for i in picked]
    total = sum(words)
    # Enough scenes that each narration fits (a long video at a long target), as far as max_body allows.
    chars = sum(len(sentences[i].text) + 1 for i in picked)
    by_chars = math.ceil(chars / (NARRATION_MAX_CHARS * _SCENE_FILL))
    wanted = min(max(min_body, round(total / WORDS_PER_SCENE), by_chars), max_body, len(picked))
    groups: list[list[int]] = [[] for _ in range(wanted)]
    g = 0
    done = 0
    for k, (i, w) in enumerate(zip(picked, words, strict=True)):
        by_words = min(int((done + w / 2) * wanted / total), wanted - 1)
        # Never skip a scene, and leave enough sentences for the scenes still empty.
        lowest = max(g, wanted - (len(picked) - k))
        highest = g + 1 if k else 0
        g = min(max(by_words, lowest), highest)
        groups[g].append(i)
        done += w
    return groups


def _within_limit(group: list[int], sentences: list[_Sentence], scores: list[float],
                  units: list[frozenset[int] | None]) -> list[int]:
    """The group, less its weakest sentences until its narration fits in one scene (in article order).

    A sentence leaves together with every sentence of the group that leans on it, so cutting for
    length never leaves a reference without what it refers to.
    """
    kept = list(group)
    length = sum(len(sentences[i].text) + 1 for i in kept) - 1
    if length <= NARRATION_MAX_CHARS:
        return kept
    for i in sorted(group, key=lambda i: (scores[i], -i)):
        if length <= NARRATION_MAX_CHARS:
            break
        if i not in kept:
            continue
        leaving = [j for j in kept if j == i or (units[j] is not None and i in units[j])]
        if len(leaving) == len(kept):
            continue  # the scene would be empty; a lighter sentence may still go
        for j in leaving:
            kept.remove(j)
            length -= len(sentences[j].text) + 1
    return kept


def token_weights(sentences: list[_Sentence]) -> dict[str, float]:
    tf: Counter[str] = Counter()
    df: Counter[str] = Counter()
    for s in sentences:
        tf.update(s.tokens)
        df.update(set(s.tokens))
    n = len(sentences)
    return {t: (1 + math.log(c)) * math.log(1 + n / df[t]) for t, c in tf.items()}


def _token(word: str) -> str:
    return word.lower().replace("’", "'")


def _weight(word: str, weights: dict[str, float]) -> float:
    if WIDE.search(word):  # a Chinese or Japanese clause weighs what its pairs of characters weigh
        parts = tokenize(word)
        return sum(weights.get(p, 0.0) for p in parts) / math.sqrt(max(1, len(parts)))
    parts = [w.lower().replace("’", "'") for w in WORD.findall(word)]
    return sum(weights.get(p, 0.0) for p in parts) / max(1, len(parts))


def _is_edge_word(word: str, also: frozenset[str] = frozenset()) -> bool:
    """A word no caption starts or ends on: function words, prepositions, adverbs, conjunctions.

    ``also`` holds the function words of the article's language.
    """
    w = word.lower().replace("’", "'")
    if WIDE.match(w):  # a Chinese or Japanese clause: edge when it opens on a conjunction ("而", "但是")
        return w.startswith(WIDE_OPENERS)
    return w in FUNCTION_WORDS or w in also or is_stopword(word) or (w.endswith("ly") and len(w) > 4)


def _is_verb_end(word: str, endings: tuple[str, ...] = ()) -> bool:
    w = word.lower()
    return w in VERBS or (word.islower() and len(w) > 4 and w.endswith(("ed", "ing", *endings)))


def _runs(text: str, also: frozenset[str] = frozenset()) -> list[list[str]]:
    """Runs of words between punctuation and function words; numbers and hyphenated words whole.

    In Chinese and Japanese any mark between words breaks the run: there are no spaces to keep.
    """
    runs: list[list[str]] = []
    current: list[str] = []
    last_end = 0
    for match in _CAPTION_WORD.finditer(text):
        gap = text[last_end : match.start()]
        word = match.group(0)
        edge = _is_edge_word(word, also) and not _NUMBER.match(word)
        wide_gap = bool(gap) and (WIDE.search(word) or (current and WIDE.search(current[-1])))
        if (edge or wide_gap or any(ch in _PHRASE_BREAK or ch == "," for ch in gap)) and current:
            runs.append(current)
            current = []
        if not edge:
            current.append(word)
        last_end = match.end()
    if current:
        runs.append(current)
    return runs


def _phrases(text: str, also: frozenset[str] = frozenset(), endings: tuple[str, ...] = ()) -> list[list[str]]:
    """Candidate noun phrases: runs trimmed of verbs (``endings``: the language's) at their ends, fitted whole."""
    out: list[list[str]] = []
    for run in _runs(text, also):
        for k in range(len(run) - 1, 0, -1):
            if _NUMBER.match(run[k]) and _is_verb_end(run[k - 1], endings):
                run = run[k:]  # "ministry hired 30,000 staff": the count starts the phrase
                break
        while run and (_is_verb_end(run[-1], endings) or _is_edge_word(run[-1], also)):
            run = run[:-1]
        while run and (run[0].lower() in VERBS or _is_edge_word(run[0], also)):
            run = run[1:]
        # Too long: keep the end, where an English noun phrase has its head, never splitting a name.
        while run and (len(run) > CAPTION_MAXWORDS or not _fits_caption(" ".join(run))):
            dropped, run = run[0], run[1:]
            while run and dropped[:1].isupper() and run[0][:1].isupper() and not _NUMBER.match(run[0]):
                dropped, run = run[0], run[1:]  # never start in the middle of a name
        if run and not _is_edge_word(run[0], also) and not _is_edge_word(run[-1], also):
            out.append(run)
    return out


def title_scene_of(article: Article, wpm: float, lang: str | None = None) -> Scene:
    narration = spoken_title(clip(article.title, TITLE_MAX_CHARS))
    byline, site_name = _names(article)
    caption = byline_caption(lang or article.lang, byline) if byline else (site_name or "")
    return Scene(
        id="title",
        kind="title",
        narration=narration,
        caption=caption[:120],
        hint_s=max(TITLE_MIN_S, estimate_seconds(narration, wpm, lang or article.lang)),
    )


def _names(article: Article) -> tuple[str | None, str | None]:
    """The byline and site name, each cut to a length a caption and a sentence can hold."""
    return (clip(article.byline, NAME_MAX_CHARS) if article.byline else None,
            clip(article.site_name, NAME_MAX_CHARS) if article.site_name else None)


def closing_scene_of(article: Article, wpm: float, lang: str | None = None) -> Scene:
    """The closing scene: where the video comes from, said in ``lang`` (the article's language by default)."""
    byline, site_name = _names(article)
    host = urlsplit(article.source_url).hostname if article.source_url else None
    site = site_name or (clip(host, NAME_MAX_CHARS) if host else None)
    narration = closing_line(lang or article.lang, site, byline)
    return Scene(
        id="closing",
        kind="closing",
        narration=narration,
        caption=(host or site or source_word(lang or article.lang))[:120],
        hint_s=max(3.0, estimate_seconds(narration, wpm, lang or article.lang)),
    )


class ImagePicker:
    """Hands out the article's images to the scenes nearest to them, each image once."""

    def __init__(self, article: Article) -> None:
        positions = article.image_positions or [0] * len(article.images)
        self._images = list(zip(article.images, positions, strict=False))
        self._used: set[str] = set()

    def near(self, paragraph: int) -> str | None:
        best = None
        for url, pos in self._images:
            distance = abs(pos - paragraph)
            if url not in self._used and distance <= IMAGE_REACH and (best is None or distance < best[0]):
                best = (distance, url)
        if best is None:
            return None
        self._used.add(best[1])
        return best[1]

    def lead(self) -> str | None:
        # The first image, when it opens the article, is the story's own picture.
        return self._images[0][0] if self._images and self._images[0][1] <= 2 else None
