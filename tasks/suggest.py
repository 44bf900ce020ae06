"""An extractive video script: the article's most central sentences, in order, fitted to a duration.

Sentences are ranked with TextRank (``kernels.textrank``), picked best-first until the word
budget for the target duration is spent, put back in article order and grouped into scenes.
A title scene opens the video and a closing scene names the source. Deterministic.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from kernels.textrank import rank_sentences
from tasks.errors import ExtractionError
from tasks.models import NARRATION_MAX_CHARS, Article, Scene, Storyboard, StoryboardOptions
from tasks.text import TERMINAL, WORD, clip, count_words, estimate_seconds, is_stopword, split_sentences, tokenize

logger = logging.getLogger("pagereel.suggest")

MIN_SENTENCEWORDS = 5
MAX_SENTENCEWORDS = 70
CAPTION_MAXWORDS = 6
CAPTION_MAX_CHARS = 48
WORDS_PER_SCENE = 30
IMAGE_REACH = 3  # paragraphs an image may sit away from the scene it illustrates
#: Longest title, byline and site name used (as an edited title may be); pages may carry far longer ones.
TITLE_MAX_CHARS = 300
NAME_MAX_CHARS = 120
#: Sentences longer than this are not narration (a run-on list, a table flattened into text).
MAX_SENTENCE_CHARS = 1000
#: Scenes are planned to fill at most this share of a narration, so uneven groups still fit.
_SCENE_FILL = 0.8


@dataclass(frozen=True)
class _Sentence:
    text: str
    paragraph: int
    words: int
    tokens: tuple[str, ...]


def suggest_storyboard(article: Article, options: StoryboardOptions | None = None) -> Storyboard:
    """Cut ``article`` into a storyboard that lasts about ``options.target_duration_s``."""
    options = options or StoryboardOptions()
    sentences = _sentences(article)
    if not sentences:
        raise ExtractionError("the article has no complete sentences to narrate; try another URL")
    wpm = options.words_per_minute

    title_scene = _title_scene(article, wpm)
    closing_scene = _closing_scene(article, wpm)
    budget = options.target_duration_s * wpm / 60.0
    budget -= count_words(title_scene.narration) + count_words(closing_scene.narration)
    min_body = max(1, options.min_scenes - 2)
    max_body = max(min_body, options.max_scenes - 2)

    scores = _scores(sentences)
    picked = _pick(sentences, scores, budget, min_body)
    planned = _group(picked, sentences, min_body, max_body)
    groups = [_within_limit(g, sentences, scores) for g in planned]
    left_out = sum(len(g) for g in planned) - sum(len(g) for g in groups)
    if left_out:
        logger.warning("left out %d sentences that would make a scene narrate more than %d characters; raise "
                       "storyboard.max_scenes for a longer video", left_out, NARRATION_MAX_CHARS)

    weights = _token_weights(sentences)
    images = _ImagePicker(article)
    body: list[Scene] = []
    for n, group in enumerate(groups, start=1):
        text = " ".join(sentences[i].text for i in group)
        body.append(
            Scene(
                id=f"s{n}",
                kind="body",
                narration=text,
                caption=key_phrase(text, weights),
                image=images.near(sentences[group[0]].paragraph),
                hint_s=estimate_seconds(text, wpm),
            )
        )
    title_scene = title_scene.model_copy(update={"image": images.lead()})
    return Storyboard(
        title=clip(article.title, TITLE_MAX_CHARS),
        source_url=article.source_url,
        lang=(options.language or article.lang or "en"),
        scenes=[title_scene, *body, closing_scene],
    )


def key_phrase(text: str, weights: dict[str, float]) -> str:
    """The heaviest run of content words in ``text``, as a short on-screen caption."""
    best: tuple[float, int, list[str]] | None = None
    for n, run in enumerate(_runs(text)):
        score = sum(weights.get(w.lower().replace("’", "'"), 0.0) for w in run) / math.sqrt(len(run))
        if len(run) >= 2:
            score *= 1.25  # a phrase reads better than a lone word
        if best is None or score > best[0]:
            best = (score, n, run)
    words = best[2] if best else WORD.findall(text)
    caption = " ".join(words[:CAPTION_MAXWORDS])
    if len(caption) > CAPTION_MAX_CHARS:
        caption = caption[:CAPTION_MAX_CHARS].rsplit(" ", 1)[0]
    return caption[:1].upper() + caption[1:]


# --------------------------------------------------------------------------- internals


def _sentences(article: Article) -> list[_Sentence]:
    out: list[_Sentence] = []
    for p, paragraph in enumerate(article.paragraphs):
        for text in split_sentences(paragraph):
            words = count_words(text)
            # Headings, datelines and captions have no closing punctuation: they are not narration.
            if (MIN_SENTENCEWORDS <= words <= MAX_SENTENCEWORDS and len(text) <= MAX_SENTENCE_CHARS
                    and TERMINAL.search(text)):
                out.append(_Sentence(text, p, words, tuple(tokenize(text))))
    return out


def _scores(sentences: list[_Sentence]) -> list[float]:
    vocab: dict[str, int] = {}
    token_ids = [[vocab.setdefault(t, len(vocab)) for t in s.tokens] for s in sentences]
    ranks = rank_sentences(token_ids)
    # A light lead bias: articles state their point early.
    return [float(r) * (1.0 + 0.25 / (1 + s.paragraph)) for r, s in zip(ranks, sentences, strict=True)]


def _pick(sentences: list[_Sentence], scores: list[float], budget: float, min_count: int) -> list[int]:
    order = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    picked: list[int] = []
    used = 0.0
    for i in order:
        if used + sentences[i].words <= budget:
            picked.append(i)
            used += sentences[i].words
    for i in order:  # a short budget still gets the fewest scenes asked for
        if len(picked) >= min_count:
            break
        if i not in picked:
            picked.append(i)
    if not picked:
        picked.append(order[0])
    return sorted(picked)


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


def _within_limit(group: list[int], sentences: list[_Sentence], scores: list[float]) -> list[int]:
    """The group, less its weakest sentences until its narration fits in one scene (in article order)."""
    kept = list(group)
    length = sum(len(sentences[i].text) + 1 for i in kept) - 1
    if length <= NARRATION_MAX_CHARS:
        return kept
    for i in sorted(group, key=lambda i: (scores[i], -i)):
        if length <= NARRATION_MAX_CHARS or len(kept) == 1:
            break
        kept.remove(i)
        length -= len(sentences[i].text) + 1
    return kept


def _token_weights(sentences: list[_Sentence]) -> dict[str, float]:
    tf: Counter[str] = Counter()
    df: Counter[str] = Counter()
    for s in sentences:
        tf.update(s.tokens)
        df.update(set(s.tokens))
    n = len(sentences)
    return {t: (1 + math.log(c)) * math.log(1 + n / df[t]) for t, c in tf.items()}


def _runs(text: str) -> list[list[str]]:
    runs: list[list[str]] = []
    current: list[str] = []
    last_end = 0
    for match in WORD.finditer(text):
        gap = text[last_end : match.start()]
        word = match.group(0)
        breaks = any(ch in gap for ch in ".,;:!?()[]\"“”—–") or is_stopword(word)
        if breaks and current:
            runs.append(current)
            current = []
        if not is_stopword(word):
            current.append(word)
        last_end = match.end()
    if current:
        runs.append(current)
    return runs


def _title_scene(article: Article, wpm: float) -> Scene:
    title = clip(article.title, TITLE_MAX_CHARS)
    narration = title if TERMINAL.search(title) else f"{title}."
    byline, site_name = _names(article)
    caption = f"By {byline}" if byline else (site_name or "")
    return Scene(
        id="title",
        kind="title",
        narration=narration,
        caption=caption[:120],
        hint_s=max(3.0, estimate_seconds(narration, wpm)),
    )


def _names(article: Article) -> tuple[str | None, str | None]:
    """The byline and site name, each cut to a length a caption and a sentence can hold."""
    return (clip(article.byline, NAME_MAX_CHARS) if article.byline else None,
            clip(article.site_name, NAME_MAX_CHARS) if article.site_name else None)


def _closing_scene(article: Article, wpm: float) -> Scene:
    byline, site_name = _names(article)
    host = urlsplit(article.source_url).hostname if article.source_url else None
    site = site_name or (clip(host, NAME_MAX_CHARS) if host else None)
    source = f"an article on {site}" if site else "an article from the web"
    by = f" by {byline}" if byline else ""
    narration = f"This video is based on {source}{by}. Read the full story at the source."
    return Scene(
        id="closing",
        kind="closing",
        narration=narration,
        caption=(host or site or "Source")[:120],
        hint_s=max(3.0, estimate_seconds(narration, wpm)),
    )


class _ImagePicker:
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
