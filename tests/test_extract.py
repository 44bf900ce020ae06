"""Extraction on the project's own test pages (and the saved real pages when present), and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.errors import ExtractionError
from tasks.extract import extract_article
from tests.conftest import OWN_PAGES, OWN_PAGES_DIR, PAGES_DIR, corpus_params

# Words of page chrome (menus, cookie banners, comments, footers) that must never reach the article body.
CHROME = ("Cookie Policy", "Sign up for our newsletter", "All rights reserved", "Accept all", "Tous droits",
          "Alle Rechte", "Leave a comment", "Share this recipe", "Related stories", "Log in")
# What each of the project's own pages must give: (title starts, byline, language, least words, images).
OWN = {
    "harbour-lights.html": ("How a Small Harbour", "Ines Marlowe", "en-gb", 800, 2),
    "sourdough-steps.html": ("A Slow Loaf", "Dev Raman", "en", 500, 0),
    "short-note.html": ("Library Opening Hours", None, "en", 100, 0),
    "marche-couvert.html": ("Le marché couvert", "Camille Rousseau", "fr", 300, 1),
    "bergwald.html": ("Wie ein Bergwald", "Jonas Albrecht", "de", 300, 0),
    "broken-markup.html": ("Night Trains Are Back", None, None, 300, 0),
    "photo-essay.html": ("Seven Bridges", "Ruth Okafor", "en-us", 300, 6),
    "garden-sensor.html": ("Watering the Allotment", "Priya Castellanos", "en", 350, 0),
    "lighthouse-keeper.html": ("The Last Keeper of Skerry Light", "Maren Holt", "en", 400, 0),
    # Pages in other languages; Chinese and Japanese lengths are counted in characters (1.6 to a word).
    "zh-tea-terraces.html": ("山间茶园的春天", "林晓雯", "zh-cn", 300, 0),
    "ja-bento-shop.html": ("商店街の小さな弁当屋", "佐藤美咲", "ja", 300, 0),
    "ko-night-market.html": ("오래된 시장에", "김서연", "ko", 150, 0),
    "ar-desert-library.html": ("مكتبة متنقلة", "سارة المنصوري", "ar", 200, 0),
    "hi-stepwell.html": ("पुरानी बावड़ी", "अनीता शर्मा", "hi", 200, 0),
    "ru-river-ferry.html": ("Последний паром", "Ольга Смирнова", "ru", 200, 0),
    "es-olive-harvest.html": ("La cosecha de aceitunas", "Lucía Fernández", "es", 250, 0),
    "pt-tram-line.html": ("O bonde que voltou", "Mariana Costa", "pt-br", 230, 0),
}


def check_article(html: str, name: str):
    article = extract_article(html, f"http://127.0.0.1:8000/pages/{name}")
    assert 3 <= len(article.title) <= 300
    assert 80 <= article.word_count <= 20_000
    assert article.text == "\n\n".join(article.paragraphs)
    assert all(p == " ".join(p.split()) and p for p in article.paragraphs)
    for img in article.images:
        assert img.startswith(("http://", "https://"))
    assert len(article.image_positions) == len(article.images)
    assert not any(c in article.text for c in CHROME)
    return article


def test_every_own_page_is_described() -> None:
    assert sorted(OWN) == OWN_PAGES


@pytest.mark.parametrize("name", OWN_PAGES)
def test_every_own_page_gives_title_body_and_metadata(name: str) -> None:
    article = check_article((OWN_PAGES_DIR / name).read_text(encoding="utf-8"), name)
    title, byline, lang, words, images = OWN[name]
    assert article.title.startswith(title)
    assert article.byline == byline
    assert article.lang == lang
    assert article.word_count >= words
    assert len(article.images) == images


def test_lists_headings_code_and_tables() -> None:
    steps = extract_article((OWN_PAGES_DIR / "sourdough-steps.html").read_text(), "https://kitchen.example/loaf")
    assert any(p.startswith("Mix the flours") for p in steps.paragraphs)  # list items keep their words and order
    assert steps.text.index("Mix the flours") < steps.text.index("Let the loaf cool")
    sensor = extract_article((OWN_PAGES_DIR / "garden-sensor.html").read_text(), "https://tinker.example/water")
    assert "open_valve" not in sensor.text and "£3" not in sensor.text  # code and tables are never narrated
    assert sensor.published and sensor.published.startswith("2025-04-22")


def test_broken_markup_keeps_every_paragraph() -> None:
    a = extract_article((OWN_PAGES_DIR / "broken-markup.html").read_text(), "https://rail.example/night")
    assert a.title == "Night Trains Are Back on the Northern Line & Busier Than Ever"
    for words in ("every berth is sold", "Bicycles travel free", "though not loud ones", "the training takes"):
        assert words in a.text


def test_images_resolve_against_the_page() -> None:
    a = extract_article((OWN_PAGES_DIR / "photo-essay.html").read_text(), "https://bridges.example/walk/seven.html")
    assert a.images[0] == "https://bridges.example/img/stone-bridge.jpg"
    assert "https://cdn.bridges.example/img/rail-viaduct.jpg" in a.images  # protocol-relative


@pytest.mark.parametrize("name", corpus_params())
def test_every_saved_real_page_gives_title_and_body(name: str) -> None:
    check_article((PAGES_DIR / name).read_text(encoding="utf-8", errors="replace"), name)


@pytest.mark.skipif(not (PAGES_DIR / "nationalgeographic.co.uk.goats.html").is_file(),
                    reason="extra corpus of saved real pages not present")
def test_metadata_of_a_known_real_page() -> None:
    html = (PAGES_DIR / "nationalgeographic.co.uk.goats.html").read_text(encoding="utf-8")
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
