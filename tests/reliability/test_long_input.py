"""Long input is cut to what a scene holds, never a crash: huge titles, bylines and articles at long targets."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from tasks.models import NARRATION_MAX_CHARS, Article, StoryboardOptions
from tasks.suggest import TITLE_MAX_CHARS, suggest_storyboard
from tests.reliability.conftest import PYTHON, cli_env

pytestmark = pytest.mark.reliability


def _paragraphs(words: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    vocabulary = [f"{a}{b}" for a in ("har", "lum", "tor", "vel", "mis", "cal") for b in ("bor", "en", "ity", "ax")]
    paragraphs, count = [], 0
    while count < words:
        sentences = []
        for _ in range(5):
            n = rng.randint(12, 25)
            sentences.append(" ".join(rng.choice(vocabulary) for _ in range(n)).capitalize() + ".")
            count += n
        paragraphs.append(" ".join(sentences))
    return paragraphs


def test_a_20000_character_title_and_byline_are_cut_at_a_word() -> None:
    title = " ".join(["Lighthouse"] * 2000)[:20_000]
    article = Article(title=title, byline="Keeper " * 3000, site_name="Site " * 3000, paragraphs=_paragraphs(400))
    board = suggest_storyboard(article, StoryboardOptions())
    assert len(board.title) <= TITLE_MAX_CHARS and board.title.endswith("…")
    assert all(len(s.narration) <= NARRATION_MAX_CHARS for s in board.scenes)
    assert len(board.scenes[0].narration) <= TITLE_MAX_CHARS + 1
    assert len(board.scenes[-1].narration) < 400


def test_a_100k_word_article_at_an_hour_fits_every_scene() -> None:
    article = Article(title="Long", paragraphs=_paragraphs(100_000))
    board = suggest_storyboard(article, StoryboardOptions(target_duration_s=3600))
    assert len(board.scenes) <= 12
    assert all(0 < len(s.narration) <= NARRATION_MAX_CHARS for s in board.scenes)
    assert board.duration_hint_s > 1800  # as much of the hour as 12 scenes can say


@pytest.mark.timeout(180)
def test_the_cli_makes_a_storyboard_of_a_long_page_with_a_long_title(pagereel_env: Path, prefect_api: str) -> None:
    page = pagereel_env / "long.html"
    body = "".join(f"<p>{p}</p>" for p in _paragraphs(20_000))  # 9,600 words wanted: scenes overflow
    page.write_text(f"<html><head><title>{'Lighthouse keepers ' * 1100}</title></head><body><article>"
                    f"<h1>Keepers</h1>{body}</article></body></html>", encoding="utf-8")
    done = subprocess.run([PYTHON, "-m", "flows.video_flow", str(page), "--workflow-id", "long", "--duration", "3600",
                           "--dry-run", "--json"], env=cli_env(prefect_api), cwd=pagereel_env,
                          capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout)
    assert state["status"] == "storyboard" and len(state["title"]) <= TITLE_MAX_CHARS
    assert all(len(s["narration"]) <= NARRATION_MAX_CHARS for s in state["storyboard"]["scenes"])
