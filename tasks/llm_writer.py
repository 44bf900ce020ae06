"""The ``llm`` script writer: a language model writes the script, checked against the article.

Any OpenAI-compatible chat-completions endpoint will do (OpenAI, Ollama at
``http://localhost:11434/v1``, vLLM, llama.cpp's server, LM Studio), set in the ``[llm]``
settings; the key comes only from ``PAGEREEL_LLM__API_KEY``. The prompt (``tasks/llm_prompt.py``)
gives the article as numbered sentences and asks for JSON scenes that cite the sentences they
draw on. Every scene is checked: its citations exist, and every number, name and quoted phrase
of its narration occurs in the sentences it cites. A scene that fails is replaced by the text of
its cited sentences (``Scene.repair`` says why) or dropped when its citations are bad.

An endpoint that cannot be reached or keeps answering badly gives one warning and the extractive
storyboard: a run never fails because a model did. A refused key (401, 403) is a configuration
error, said in one line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks import llm_prompt
from tasks.errors import ConfigurationError, FetchError
from tasks.guarded_http import endpoint_client, post_bounded
from tasks.models import Article, LLMOptions, Scene, Storyboard, StoryboardOptions
from tasks.suggest import (
    ImagePicker,
    caption_weights,
    closing_scene_of,
    is_boilerplate,
    is_caption_phrase,
    key_figure,
    key_phrase,
    narrated_paragraphs,
    section_headings,
    suggest_storyboard,
    title_scene_of,
)
from tasks.text import WORD, count_words, estimate_seconds, split_sentences

log = logging.getLogger("pagereel.llm_writer")

API_KEY_ENV = "PAGEREEL_LLM__API_KEY"
WRITER = "llm"
MAX_SENTENCES = 400
MAX_REPAIR_WORDS = 90
#: Most bytes of one answer read from the endpoint: a script is a few kilobytes.
MAX_REPLY_BYTES = 4_000_000
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_QUOTED = re.compile(r"[\"“]([^\"”]{3,})[\"”]")


class _LLMScene(BaseModel):
    model_config = ConfigDict(extra="ignore")

    narration: str = Field(min_length=1, max_length=3000)
    caption: str = Field("", max_length=300)
    sources: list[int] = Field(default_factory=list, max_length=50)


class _LLMScript(BaseModel):
    model_config = ConfigDict(extra="ignore")

    scenes: list[_LLMScene] = Field(min_length=1, max_length=60)


class _Unusable(Exception):
    """The endpoint gave nothing a storyboard can be made of."""


def llm_storyboard(article: Article, options: StoryboardOptions | None = None) -> Storyboard:
    """The storyboard a model writes for ``article``, checked; the extractive one if the model fails."""
    options = options or StoryboardOptions()
    if not options.llm.base_url:
        log.warning("the llm writer has no endpoint (set llm.base_url or PAGEREEL_LLM__BASE_URL); "
                    "using the extractive writer")
        return suggest_storyboard(article, options)
    sentences = numbered_sentences(article)
    try:
        script = _ask(article, [s for s, _ in sentences], options)
        return _storyboard(article, sentences, script, options)
    except _Unusable as exc:
        log.warning("the llm writer at %s gave no usable script (%s); using the extractive writer",
                    options.llm.base_url, exc)
        return suggest_storyboard(article, options)


def numbered_sentences(article: Article) -> list[tuple[str, int]]:
    """The article's sentences the model may cite, with the paragraph each comes from; numbered from 1."""
    out: list[tuple[str, int]] = []
    for p in narrated_paragraphs(article):
        for text in split_sentences(article.paragraphs[p]):
            if count_words(text) >= 3 and not is_boilerplate(text):
                out.append((text, p))
    return out[:MAX_SENTENCES]


def parse_script(content: str) -> _LLMScript:
    """The scenes in a model's reply: ``<think>`` blocks and code fences stripped, JSON validated."""
    text = _THINK.sub("", content).strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the reply")
    return _LLMScript.model_validate(json.loads(text[start : end + 1]))


# --------------------------------------------------------------------------- the request


def _ask(article: Article, sentences: list[str], options: StoryboardOptions) -> _LLMScript:
    llm = options.llm
    body_scenes = max(1, min(options.max_scenes - 2, round(options.target_duration_s / 12)))
    numbered = "\n".join(f"{n}. {s}" for n, s in enumerate(sentences, start=1))
    user = llm_prompt.USER.format(title=article.title, sentences=numbered, scenes=body_scenes,
                                  words=round(options.target_duration_s * options.words_per_minute / 60))
    body: dict[str, object] = {
        "model": llm.model,
        "temperature": llm.temperature,
        "messages": [{"role": "system", "content": llm_prompt.SYSTEM}, {"role": "user", "content": user}],
    }
    # The strictest structured output the server accepts: a JSON schema, a JSON object, plain text.
    formats: list[dict[str, object] | None] = [
        {"type": "json_schema", "json_schema": {"name": "storyboard", "schema": _LLMScript.model_json_schema()}},
        {"type": "json_object"},
        None,
    ]
    key = os.environ.get(API_KEY_ENV)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = llm.base_url.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
    problem = "no attempt made"
    tries = 0
    with endpoint_client(llm.timeout_s) as client:
        while tries < llm.attempts:
            request = {**body, "response_format": formats[0]} if formats[0] else body
            outcome = _exchange(client, url, request, headers, llm)
            if isinstance(outcome, _LLMScript):
                return outcome
            if outcome.plainer and formats[0] is not None:  # a downgrade is not an attempt: at most two
                problem = f"the server refused response_format {formats.pop(0)['type']}"
                continue
            if outcome.plainer:
                raise _Unusable(outcome.problem)
            problem, tries = outcome.problem, tries + 1
            if tries < llm.attempts:
                time.sleep(outcome.wait_s if outcome.wait_s >= 0 else min(5.0, 0.25 * 2 ** (tries - 1)))
    raise _Unusable(f"{problem}, after {llm.attempts} attempts")


@dataclass(frozen=True)
class _Failure:
    problem: str
    wait_s: float = -1.0  # how long the server asked to wait; negative: back off
    plainer: bool = False  # the server refused the request as made: ask with a plainer output format


def _exchange(client: httpx.Client, url: str, request: dict[str, object], headers: dict[str, str],
              llm: LLMOptions) -> _LLMScript | _Failure:
    """One request and what came of it: the script, or why not."""
    try:
        reply = post_bounded(client, url, json=request, headers=headers, max_bytes=MAX_REPLY_BYTES)
    except FetchError as exc:  # an answer over the limit, or one that cannot be decompressed
        return _Failure(f"unusable answer: {exc}", wait_s=0.0)
    except httpx.TimeoutException:
        return _Failure(f"no answer within {llm.timeout_s:g} s", wait_s=0.0)
    except httpx.HTTPError as exc:
        return _Failure(f"cannot be reached: {type(exc).__name__}")
    if reply.status_code in (401, 403):
        raise ConfigurationError(
            f"the llm endpoint {llm.base_url} refused the request (HTTP {reply.status_code}): "
            f"check the key in {API_KEY_ENV} and llm.model"
        )
    if reply.status_code == 429 or reply.status_code >= 500:
        return _Failure(f"HTTP {reply.status_code}", wait_s=_retry_after(reply.headers.get("retry-after")))
    if reply.status_code >= 400:
        return _Failure(f"HTTP {reply.status_code}", plainer=True)
    try:
        return parse_script(reply.json()["choices"][0]["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError, ValidationError) as exc:
        return _Failure(f"invalid output: {str(exc).splitlines()[0][:120]}", wait_s=0.0)


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value), 0.0), 5.0) if value else -1.0
    except ValueError:
        return -1.0


# --------------------------------------------------------------------------- checking


def _storyboard(article: Article, sentences: list[tuple[str, int]], script: _LLMScript,
                options: StoryboardOptions) -> Storyboard:
    wpm = options.words_per_minute
    weights = caption_weights(article)
    images = ImagePicker(article)
    headings = section_headings(article)
    section = None  # the heading the scene before ended under
    body: list[Scene] = []
    for proposed in script.scenes[: max(1, options.max_scenes - 2)]:
        checked = _check(proposed, sentences)
        if checked is None:
            continue
        narration, writer, repair = checked
        caption = " ".join(proposed.caption.split())
        if not is_caption_phrase(caption, article.lang) or repair:
            caption = key_phrase(narration, weights, lang=article.lang)
        # The same layout hints as the extractive writer's: the section a scene opens, its key figure.
        first, last = (sentences[n - 1][1] for n in (min(proposed.sources), max(proposed.sources)))
        opens = headings.get(first) if headings.get(first) != section else None
        section = headings.get(last)
        figure = key_figure(narration)
        body.append(Scene(
            id=f"s{len(body) + 1}", kind="body", narration=narration, caption=caption,
            image=images.near(sentences[proposed.sources[0] - 1][1]), hint_s=estimate_seconds(narration, wpm),
            writer=writer, sources=sorted(set(proposed.sources)), repair=repair, section=opens,
            layout="figure" if figure else None, figure=figure,
        ))
    if len(body) < max(1, options.min_scenes - 2):
        raise _Unusable(f"only {len(body)} of its {len(script.scenes)} scenes could be used")
    lang = options.language or article.lang or "en"
    title = title_scene_of(article, wpm, lang=lang).model_copy(update={"image": images.lead()})
    return Storyboard(title=article.title, source_url=article.source_url, lang=lang,
                      scenes=[title, *body, closing_scene_of(article, wpm, lang=lang)])


def _check(scene: _LLMScene, sentences: list[tuple[str, int]]) -> tuple[str, str, str | None] | None:
    """(narration, writer, repair reason) for a proposed scene, or None when it must be dropped."""
    if not scene.sources:
        log.warning("llm scene dropped: it cites no sentence")
        return None
    missing = [n for n in scene.sources if not 1 <= n <= len(sentences)]
    if missing:
        log.warning("llm scene dropped: it cites sentence %s, which does not exist", missing[0])
        return None
    cited = " ".join(sentences[n - 1][0] for n in sorted(set(scene.sources)))
    narration = " ".join(scene.narration.split())
    reason = _ungrounded(narration, cited)
    if reason is None:
        return narration, WRITER, None
    log.warning("llm scene replaced by its cited sentences: %s", reason)
    words = cited.split()
    text = cited if len(words) <= MAX_REPAIR_WORDS else " ".join(split_sentences(cited)[:2])
    return text, "extractive", reason


def _ungrounded(narration: str, cited: str) -> str | None:
    """Why ``narration`` says something ``cited`` does not, or None when it is grounded."""
    digits = {n.replace(",", "") for n in _NUMBER.findall(cited)}
    for number in _NUMBER.findall(narration):
        if number.replace(",", "") not in digits:
            return f"the number {number} is not in the cited sentences"
    cited_words = {w.lower() for w in WORD.findall(cited)}
    for sentence in split_sentences(narration):
        for word in WORD.findall(sentence)[1:]:
            if word[:1].isupper() and word.lower() not in cited_words:
                return f"the name {word!r} is not in the cited sentences"
    lowered = " ".join(cited.lower().split())
    for quote in _QUOTED.findall(narration):
        if " ".join(quote.lower().split()) not in lowered:
            return f"the quotation {quote[:40]!r} is not in the cited sentences"
    return None
