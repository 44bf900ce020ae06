"""The contract every registered script writer meets, on the project's own pages and the extra corpus."""

from __future__ import annotations

import functools
import re

import pytest

from flows.settings import load_settings
from tasks.errors import ConfigurationError, ExtractionError
from tasks.extract import extract_article
from tasks.models import Article, StoryboardOptions
from tasks.writers import WRITERS, write_storyboard, writer_for
from tests.conftest import OWN_PAGES, OWN_PAGES_DIR, PAGES_DIR, corpus_params

CAPTION_MAX_CHARS = 48


@functools.cache
def article_of(folder: str, name: str) -> Article | None:
    """The article of a saved page, or None when the page has none worth narrating."""
    path = (OWN_PAGES_DIR if folder == "own" else PAGES_DIR) / name
    try:
        return extract_article(path.read_text(encoding="utf-8", errors="replace"), f"https://example.org/{name}")
    except ExtractionError:
        return None


def check_contract(writer: str, article: Article, options: StoryboardOptions) -> None:
    board = write_storyboard(article, options.model_copy(update={"writer": writer}))
    scenes = board.scenes
    assert options.min_scenes <= len(scenes) <= options.max_scenes
    assert scenes[0].kind == "title" and scenes[-1].kind == "closing"
    assert all(s.kind == "body" for s in scenes[1:-1])
    assert len({s.id for s in scenes}) == len(scenes)
    assert [s.id for s in scenes[1:-1]] == [f"s{n}" for n in range(1, len(scenes) - 1)]
    for scene in scenes:
        assert scene.narration.strip(), scene
        assert re.search(r"\w", scene.narration)
    for scene in scenes[1:-1]:
        assert scene.caption and len(scene.caption) <= CAPTION_MAX_CHARS, scene.caption
    # Ids are stable: the same article and options give the same storyboard, ids included.
    again = write_storyboard(article, options.model_copy(update={"writer": writer}))
    assert again == board


OPTIONS = [
    StoryboardOptions(),
    StoryboardOptions(target_duration_s=15, min_scenes=3, max_scenes=4),
    StoryboardOptions(target_duration_s=180, max_scenes=20),
]


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("name", OWN_PAGES)
def test_every_writer_meets_the_contract_on_own_pages(writer: str, name: str) -> None:
    article = article_of("own", name)
    if article is None:
        pytest.skip(f"{name} has no article (tested as such in test_extract)")
    for options in OPTIONS:
        check_contract(writer, article, options)


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("name", corpus_params())
def test_every_writer_meets_the_contract_on_saved_real_pages(writer: str, name: str) -> None:
    article = article_of("corpus", name)
    if article is None:
        pytest.skip(f"{name} has no article")
    check_contract(writer, article, StoryboardOptions())


def test_writer_is_chosen_by_name_and_unknown_names_are_refused() -> None:
    assert "extractive" in WRITERS
    assert callable(writer_for("extractive"))
    with pytest.raises(ConfigurationError, match="unknown script writer 'poet'.*extractive"):
        writer_for("poet")
    with pytest.raises(ConfigurationError, match="writer must be one of extractive"):
        load_settings(storyboard={"writer": "poet"})
    assert load_settings().storyboard.writer == "extractive"


def test_writer_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_STORYBOARD__WRITER", "nobody")
    with pytest.raises(ConfigurationError, match="nobody"):
        load_settings()
    monkeypatch.setenv("PAGEREEL_STORYBOARD__WRITER", "extractive")
    assert load_settings().storyboard.writer == "extractive"


def test_llm_section_reaches_the_writer_without_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_LLM__BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("PAGEREEL_LLM__MODEL", "qwen3")
    monkeypatch.setenv("PAGEREEL_LLM__API_KEY", "sk-secret")
    settings = load_settings(storyboard={"writer": "llm"})
    llm = settings.storyboard.llm
    assert (llm.base_url, llm.model, settings.storyboard.writer) == ("http://127.0.0.1:11434/v1", "qwen3", "llm")
    assert "sk-secret" not in settings.storyboard.model_dump_json() and "sk-secret" not in settings.model_dump_json()
    assert settings.llm.api_key is not None and settings.llm.api_key.get_secret_value() == "sk-secret"
