"""Extraction on every saved sample page, and clear refusals of pages with no article."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.errors import ExtractionError
from tasks.extract import extract_article

PAGES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "pages"
SAMPLES = sorted(p.name for p in PAGES.glob("*.html"))
# Words of page chrome that must never reach the article body.
CHROME = ("Cookie Policy", "Sign up for our newsletter", "All rights reserved")


def test_samples_are_there() -> None:
    assert len(SAMPLES) >= 10


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_gives_title_and_body(name: str) -> None:
    html = (PAGES / name).read_text(encoding="utf-8", errors="replace")
    article = extract_article(html, f"http://127.0.0.1:8000/pages/{name}")
    assert 3 <= len(article.title) <= 300
    assert 80 <= article.word_count <= 20_000
    assert article.text == "\n\n".join(article.paragraphs)
    assert all(p == " ".join(p.split()) and p for p in article.paragraphs)
    for img in article.images:
        assert img.startswith(("http://", "https://"))
    assert len(article.image_positions) == len(article.images)
    assert not any(c in article.text for c in CHROME)


def test_metadata_of_a_known_page() -> None:
    html = (PAGES / "nationalgeographic.co.uk.goats.html").read_text(encoding="utf-8")
    a = extract_article(html, "https://www.nationalgeographic.co.uk/environment/goats")
    assert "goats" in a.title.lower()
    assert a.byline == "Michael Hingston"
    assert a.published and a.published.startswith("2020")
    assert a.lang == "en-gb"
    assert any("rewilding-redonda" in i for i in a.images)


def test_relative_images_become_absolute() -> None:
    html = Path(__file__).resolve().parents[1].joinpath("examples", "article.html").read_text()
    a = extract_article(html, "https://field.example/notes/lighthouses.html")
    assert a.images == ["https://field.example/notes/lighthouse.png", "https://field.example/notes/lens.png"]
    assert a.title == "The Quiet Engineering of Lighthouses"
    assert a.byline == "Mara Lindqvist"


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("<html><body><nav><a href='/'>Home</a></nav></body></html>", "no article"),
        ("<html><body><article><p>Too short to narrate, really.</p></article></body></html>", "words"),
    ],
)
def test_pages_without_an_article_are_refused(html: str, message: str) -> None:
    with pytest.raises(ExtractionError, match=message):
        extract_article(html, "https://example.com/x")
