"""The offline writer: captions, coherence, boilerplate, list and figure hints, the title scene."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.extract import extract_article
from tasks.models import Article, StoryboardOptions
from tasks.suggest import CAPTION_MAX_CHARS, key_phrase, suggest_storyboard
from tasks.text import WORD, split_sentences
from tasks.wordlists import FUNCTION_WORDS
from tests.conftest import OWN_PAGES, OWN_PAGES_DIR, PAGES_DIR, corpus_params

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "article.html"
# Written here, not taken from the writer: what a viewer must never hear.
BOILERPLATE_WORDS = re.compile(
    r"newsletter|subscribe|sign up|cookie|all rights reserved|©|share (?:this|on)|follow us|photo(?:graph)?:"
    r"|credit:|getty images|click here",
    re.IGNORECASE,
)


def article(path: Path) -> Article:
    return extract_article(path.read_text(encoding="utf-8", errors="replace"), f"https://example.org/{path.name}")


def words(caption: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in WORD.findall(caption)]


def heading_above(art: Article, paragraph: int) -> str | None:
    """The nearest heading above ``paragraph`` that is not the title and fits a caption, else None."""
    for p in range(paragraph - 1, -1, -1):
        if art.paragraph_kinds[p] == "heading":
            text = art.paragraphs[p]
            if len(text) > CAPTION_MAX_CHARS or words(text) == words(art.title)[: len(words(text))]:
                return None
            return text.rstrip(":.")
    return None


def check_captions(art: Article, options: StoryboardOptions | None = None) -> None:
    board = suggest_storyboard(art, options)
    for scene in board.scenes[1:-1]:
        assert scene.caption and len(scene.caption) <= CAPTION_MAX_CHARS, scene.caption
        opening = split_sentences(scene.narration)[0]
        first_paragraph = next(p for p, text in enumerate(art.paragraphs) if opening in text)
        heading = heading_above(art, first_paragraph)
        if heading:
            assert scene.caption == heading  # the author's own words
            continue
        w = words(scene.caption)
        assert w[0] not in FUNCTION_WORDS and w[-1] not in FUNCTION_WORDS, scene.caption
        assert re.search(rf"(?<![\d,.]){re.escape(scene.caption.split()[0])}", scene.narration, re.IGNORECASE)


@pytest.mark.parametrize("name", OWN_PAGES)
def test_captions_on_own_pages(name: str) -> None:
    try:
        art = article(OWN_PAGES_DIR / name)
    except Exception:  # noqa: BLE001 - pages without an article are tested in test_extract
        pytest.skip(f"{name} has no article")
    check_captions(art)
    check_captions(art, StoryboardOptions(target_duration_s=180, max_scenes=20))


@pytest.mark.parametrize("name", corpus_params())
def test_captions_on_saved_real_pages(name: str) -> None:
    try:
        art = article(PAGES_DIR / name)
    except Exception:  # noqa: BLE001 - a saved page may have no article
        pytest.skip(f"{name} has no article")
    check_captions(art)


def test_sample_article_captions_are_noun_phrases() -> None:
    board = suggest_storyboard(article(SAMPLE))
    captions = [s.caption for s in board.scenes[1:-1]]
    for bad in ("Light back toward", "Every lighthouse therefore", "Third problem"):
        assert bad not in captions
    for caption in captions:
        w = words(caption)
        assert w[0] not in FUNCTION_WORDS and w[-1] not in FUNCTION_WORDS and not w[-1].endswith("ly"), caption


def test_numbers_stay_whole_in_captions_and_figures() -> None:
    weights = {"contracted": 3.0, "teaching": 3.0, "staff": 3.0, "000": 1.0, "30": 1.0}
    text = "The ministry then hired 30,000 contracted teaching staff across the country."
    assert key_phrase(text, weights) == "30,000 contracted teaching staff"
    assert key_phrase("Prices rose by 4.5% in the spring.", {"prices": 1.0}) in ("Prices", "4.5%")
    assert key_phrase("About 12,000 people came.", {"people": 2.0}) == "12,000 people"


def test_caption_never_cut_mid_phrase_or_inside_a_name() -> None:
    text = "In 1822 the French physicist Augustin Jean Fresnel designed a lens made of concentric rings of glass."
    weights = {"french": 2, "physicist": 2, "augustin": 3, "jean": 3, "fresnel": 3, "lens": 1, "rings": 1}
    caption = key_phrase(text, weights)
    assert caption in text and len(caption) <= CAPTION_MAX_CHARS
    assert not caption.startswith(("Jean", "Fresnel")) and not caption.endswith("designed")


def lines(*paragraphs: str, kinds: list[str] | None = None, title: str = "Lights") -> Article:
    return Article(title=title, paragraphs=list(paragraphs), paragraph_kinds=kinds or ["p"] * len(paragraphs))


FILLER = [
    "Harbour pilots in the north guide large ships through narrow channels every single day.",
    "Tide tables are printed each year and pinned to the wall of every pilot station.",
    "Fog is the pilots' oldest enemy, and radar has only partly tamed it.",
    "Most ships now carry satellite receivers that know their position to a few metres.",
]


def test_sentence_that_refers_back_comes_with_its_antecedent_or_not_at_all() -> None:
    antecedent = "A new harbour lighthouse lens was fitted last spring after years of delay."
    art = lines(
        FILLER[1],
        antecedent,
        # The most central sentence of the page, and it leans on the one before.
        "This made the harbour lighthouse lens and the harbour lighthouse beam visible to harbour pilots "
        "from forty kilometres.",
        "Harbour pilots guide ships past the harbour lighthouse through narrow channels every day.",
        FILLER[2], FILLER[3],
    )
    for duration in (10, 15, 20, 30, 60):
        board = suggest_storyboard(art, StoryboardOptions(target_duration_s=duration, min_scenes=3))
        script = " ".join(s.narration for s in board.scenes[1:-1])
        if "This made" in script:
            assert f"{antecedent} This made" in script, duration


def test_sentence_leaning_on_nothing_is_skipped() -> None:
    art = lines("However, the harbour lighthouse lens was visible from forty kilometres on clear nights.",
                *FILLER)
    board = suggest_storyboard(art, StoryboardOptions(target_duration_s=60))
    assert all("However" not in s.narration for s in board.scenes)


def test_ordinal_runs_are_whole_or_absent() -> None:
    art = Article(title="The Quiet Engineering of Lighthouses", paragraphs=article(SAMPLE).paragraphs)
    firsts = ("The first problem is height.", "The second problem is the sea.",
              "The third problem is the light itself.")
    for duration in (15, 30, 45, 60, 90):
        script = " ".join(s.narration for s in suggest_storyboard(art, StoryboardOptions(
            target_duration_s=duration, min_scenes=3)).scenes[1:-1])
        present = [f in script for f in firsts]
        assert all(present) or not any(present), (duration, present)


def test_boilerplate_is_never_narrated() -> None:
    art = lines(
        FILLER[0],
        "Sign up for our weekly newsletter to get the best stories in your inbox.",
        "This site uses cookies to improve your experience, and by continuing you agree.",
        "Share this story on your favourite social network with your friends.",
        FILLER[1],
        "Copyright 2024 Harbour News, all rights reserved by the publisher.",
        "Photo: a pilot boat leaves the harbour at dawn (Getty Images).",
        FILLER[2], FILLER[3],
    )
    board = suggest_storyboard(art, StoryboardOptions(target_duration_s=120))
    for scene in board.scenes[1:-1]:
        assert not BOILERPLATE_WORDS.search(scene.narration), scene.narration


@pytest.mark.parametrize("name", [*OWN_PAGES, *(p for p in corpus_params() if isinstance(p, str))])
def test_no_boilerplate_in_narration_of_saved_pages(name: str) -> None:
    path = OWN_PAGES_DIR / name if name in OWN_PAGES else PAGES_DIR / name
    try:
        art = article(path)
    except Exception:  # noqa: BLE001 - no article, nothing narrated
        pytest.skip(f"{name} has no article")
    board = suggest_storyboard(art, StoryboardOptions(target_duration_s=300, max_scenes=30))
    for scene in board.scenes[1:-1]:
        assert not BOILERPLATE_WORDS.search(scene.narration), scene.narration


@pytest.mark.parametrize("target_s", [60.0, 180.0])
def test_a_pull_quote_is_said_once(target_s: float) -> None:
    """The page sets a line of its body again as a pull quote; the video says it (and subtitles it) once."""
    art = article(OWN_PAGES_DIR / "lighthouse-keeper.html")
    line = "a lighthouse is a promise you keep every night"
    assert sum(" ".join(words(p)).count(line) for p in art.paragraphs) == 2  # the body's line, and the pull quote
    board = suggest_storyboard(art, StoryboardOptions(target_duration_s=target_s, max_scenes=20))
    said = " ".join(" ".join(words(s.narration)) for s in board.scenes)
    assert said.count(line) == 1, [s.narration for s in board.scenes]
    assert "she told me" in said  # the line is said where the body says it, with who said it

def test_headings_are_kept_with_their_place_and_become_captions() -> None:
    art = article(OWN_PAGES_DIR / "sourdough-steps.html")
    heads = [p for p, k in zip(art.paragraphs, art.paragraph_kinds, strict=True) if k == "heading"]
    assert "The method" in heads and "Reading the dough" in heads
    board = suggest_storyboard(art, StoryboardOptions(target_duration_s=120, max_scenes=20))
    captions = [s.caption for s in board.scenes[1:-1]]
    assert "The method" in captions or "Reading the dough" in captions


def test_list_and_figure_hints() -> None:
    art = article(OWN_PAGES_DIR / "sourdough-steps.html")
    board = suggest_storyboard(art, StoryboardOptions(target_duration_s=240, max_scenes=30))
    lists = [s for s in board.scenes if s.layout == "list"]
    assert lists and all(s.items and all(i in s.narration for i in s.items) for s in lists)
    art = lines("The ministry hired 30,000 contracted teaching staff across the country last year.", *FILLER)
    board = suggest_storyboard(art, StoryboardOptions(target_duration_s=60))
    figures = [s.figure for s in board.scenes if s.layout == "figure"]
    assert "30,000 contracted teaching staff" in figures
    assert all(s.layout is None and s.items is None and s.figure is None for s in (board.scenes[0], board.scenes[-1]))


def test_title_narration_is_not_repeated_by_the_first_scene() -> None:
    art = lines("Lighthouses still guide ships home every night.", *FILLER,
                title="Lighthouses still guide ships home every night")
    board = suggest_storyboard(art)
    assert board.scenes[0].narration == "Lighthouses still guide ships home every night."
    assert all("Lighthouses still guide ships home" not in s.narration for s in board.scenes[1:])


def test_sections_that_are_page_furniture_are_never_narrated() -> None:
    art = lines(
        "Harbour pilots", *FILLER[:2], "References", "Smith, J. wrote the standard guide to harbour pilots in 1990.",
        "More from Harbour News", "Harbour pilots in the south are striking for better pay this winter.",
        "Weather", FILLER[2], FILLER[3],
        kinds=["heading", "p", "p", "heading", "item", "heading", "p", "heading", "p", "p"],
    )
    board = suggest_storyboard(art, StoryboardOptions(target_duration_s=300, max_scenes=20))
    script = " ".join(s.narration for s in board.scenes)
    assert "standard guide" not in script and "striking" not in script
    assert FILLER[0] in script and FILLER[3] in script


def test_wiki_edit_links_leave_headings() -> None:
    html = ("<html><body><article><h1>Lenses</h1><p>" + " ".join(FILLER) + "</p><h2>Details[edit]</h2><p>"
            + " ".join(FILLER) + "</p></article></body></html>")
    art = extract_article(html, "https://example.org/wiki/Lenses")
    assert "Details" in art.paragraphs and not any("[edit]" in p for p in art.paragraphs)


def test_caption_favours_what_the_scene_says_again() -> None:
    text = ("Keepers climbed the stairs through the night to wind the weights. "
            "Today most lighthouses run without keepers.")
    weights = {"keepers": 1.0, "night": 1.3, "stairs": 0.5, "weights": 0.5, "lighthouses": 0.4}
    assert key_phrase(text, weights) == "Keepers"


def test_a_scene_that_opens_a_section_carries_its_heading() -> None:
    board = suggest_storyboard(article(OWN_PAGES_DIR / "sourdough-steps.html"))
    body = board.scenes[1:-1]
    opened = [s for s in body if s.section]
    assert opened and all(s.section == s.caption for s in opened)
    # A scene that goes on under the heading the scene before ended under opens nothing.
    assert any(not s.section and s.caption == before.caption for before, s in zip(body, body[1:], strict=False))
    assert all(not (a.section and a.section == b.section) for a, b in zip(body, body[1:], strict=False))
    assert board.scenes[0].section is None and board.scenes[-1].section is None


@pytest.mark.parametrize("sentence", [
    "Python 3.6.0 is the newest major release of the language and it is fast.",
    "The new iOS 13 update corrects where your eyes look during calls.",
    "Researchers first saw the malware on 12 July when it spread by text.",
])
def test_versions_names_and_dates_are_no_key_figures(sentence: str) -> None:
    board = suggest_storyboard(lines(sentence, *FILLER), StoryboardOptions(target_duration_s=60))
    assert all(s.figure is None for s in board.scenes), [s.figure for s in board.scenes]
