"""Layouts of scenes without a picture: drawn once per scene, shown in step with the narration's words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.layouts import page_share
from tasks.layout import PALETTES, subtitle_cues
from tasks.models import RenderOptions, Scene
from tasks.render import SceneContext, render_scene
from tasks.scene_layouts import (
    SECTION_S,
    Area,
    WordClock,
    is_layout,
    key_sentence,
    layout_of,
    parse_figure,
    phrases,
    scene_layout,
)
from tasks.scene_plan import frame_at, plan_scene
from tasks.timeline import LEAD_S
from tests.conftest import CORPUS_MISSING, OWN_PAGES, OWN_PAGES_DIR, PAGES_DIR, slow_corpus_params
from tests.test_render import SMALL, decode, solid_picture, speech

pytestmark = pytest.mark.integration
W, H, FPS = 320, 180, 15
PALETTE = PALETTES["midnight"]
LIST_TEXT = "Three habits keep it alive. Feed it daily. Keep it warm. Discard half first."
ITEMS = ["Feed it daily.", "Keep it warm.", "Discard half first."]


def body(narration: str, caption: str = "Starter care", **marks) -> Scene:
    return Scene(id="s1", narration=narration, caption=caption, hint_s=5.0, **marks)


def layout_layers(plan) -> list:
    return [layer for layer in plan.layers if is_layout(layer.name)]


def test_the_layout_follows_what_the_scene_holds() -> None:
    assert layout_of(body(LIST_TEXT, layout="list", items=ITEMS)) == "list"
    assert layout_of(body("They hired 30,000 staff.", figure="30,000 staff")) == "figure"
    assert layout_of(body("Plain prose here.")) == "quote"
    assert layout_of(body("A list of one.", layout="list", items=["One."])) == "quote"
    assert layout_of(Scene(id="title", kind="title", narration="A title.", hint_s=2)) is None
    # A scene with a picture keeps its picture's Ken Burns move and gets no layout.
    narration = speech(3.0, LIST_TEXT)
    with_picture = plan_scene(body(LIST_TEXT, layout="list", items=ITEMS), narration, SMALL, SceneContext(),
                              solid_picture((30, 90, 160)))
    assert layout_layers(with_picture) == []


def test_a_list_shows_item_k_only_once_it_is_said_in_the_decoded_video() -> None:
    scene = body(LIST_TEXT, layout="list", items=ITEMS)
    narration = speech(6.0, LIST_TEXT)
    plan = plan_scene(scene, narration, SMALL, SceneContext())
    states = layout_layers(plan)
    assert [s.name for s in states] == ["list 1", "list 2", "list 3"]
    frames, _, _ = decode(render_scene(scene, narration, SMALL).mp4)
    assert len(frames) == plan.frames
    # The pixels item k adds to the state before it, less anything a subtitle or the caption may cover.
    covered = np.zeros((H, W), bool)
    for layer in (*plan.cues, plan.layers[0]):
        covered[layer.y : layer.y + layer.rgba.shape[0], layer.x : layer.x + layer.rgba.shape[1]] = True
    words = narration.words
    alphas = [np.zeros((H, W), np.uint8)]
    for state in states:
        alphas.append(np.zeros((H, W), np.uint8))
        alphas[-1][state.y : state.y + state.rgba.shape[0], state.x : state.x + state.rgba.shape[1]] = \
            state.rgba[..., 3]
    for k in range(len(states)):
        mask = (alphas[k + 1] > 200) & (alphas[k] == 0) & ~covered
        assert mask.sum() > 20
        said_s = words[LIST_TEXT.split().index(ITEMS[k].split()[0])].t0
        lit = [frame.mean(axis=2)[mask].mean() > 110 for frame in frames]
        for f, on in enumerate(lit):
            if on:  # never before its first word is said
                assert f / FPS - 0.3 >= said_s - 1e-9, (k, f)
        first = next(f for f in range(plan.frames) if f / FPS - 0.3 >= said_s)
        assert all(lit[first + 6 :]), k  # and from then on (after the first bullet's fade-in) to the end


def test_a_quote_lights_phrase_by_phrase_as_it_is_said() -> None:
    text = "The harbour lights were first lit in 1853, and every ship that came in after dark steered by them."
    scene = body(text, caption="Harbour lights")
    narration = speech(6.0, text)
    drawn = scene_layout(scene, narration, PALETTE, W, H, has_picture=False)
    assert key_sentence(scene) == text
    groups = phrases(text.split())
    assert len(drawn) == max(groups) + 2  # everything faint, then one more phrase lit per state
    clock = WordClock(text, narration)
    for state, d in enumerate(drawn[1:]):
        assert d.start_s == clock.at(groups.index(state))
    lit = [int((d.rgba[..., 3] > 200).sum()) for d in drawn]
    assert lit == sorted(lit) and lit[0] < lit[-1] // 4
    # Faint words still show, so the whole sentence is laid out from the first frame.
    assert (drawn[0].rgba[..., 3] > 40).sum() > lit[-1] // 2 and drawn[0].start_s == -np.inf


@pytest.mark.parametrize("style", ["classic", "bold"])
def test_no_caption_repeats_the_quote_while_it_lights_up(style: str) -> None:
    """The quote lights up as it is said; a caption of the same words under it would say it twice."""
    quote = "A lighthouse is a promise you keep every night."
    text = f"She climbed the tower every evening. {quote} Nobody thanks you for it."
    scene = body(text, caption="Promise you keep")
    narration = speech(9.0, text)
    assert key_sentence(scene) == quote
    options = RenderOptions(width=W, height=H, fps=FPS, preset="ultrafast", caption_style=style)
    plan = plan_scene(scene, narration, options, SceneContext())
    tokens = text.split()
    first = tokens.index("A")
    said = (narration.words[first].t0, narration.words[first + len(quote.split())].t0)
    captioned = [k for k in range(plan.frames) if any(c.shows_at(k) for c in plan.cues)]
    during = [k for k in range(plan.frames) if said[0] <= k / FPS - LEAD_S < said[1]]
    assert during and not set(captioned) & set(during)
    # Before and after the quote the other sentences are captioned; the subtitle files keep every word.
    assert captioned[0] < during[0] and captioned[-1] > during[-1]
    assert quote in " ".join(c.text for c in subtitle_cues(narration.words, narration.duration_s))

def test_a_long_sentence_is_quoted_by_its_clause() -> None:
    long = ("Thousands of academic staff at British universities are being treated as second-class citizens on "
            "precarious contracts, says a report highlighting the alarming rise of mass casualised labour in "
            "higher education across the whole country.")
    quote = key_sentence(body(long, caption="Mass casualised labour"))
    assert quote.startswith("Says a report") and len(quote.split()) <= 24


def test_a_figure_counts_up_from_the_moment_it_is_said() -> None:
    text = "Last year the ministry hired 30,000 contracted teaching staff across the country."
    scene = body(text, layout="figure", figure="30,000 contracted teaching staff")
    narration = speech(5.0, text)
    drawn = scene_layout(scene, narration, PALETTE, W, H, has_picture=False)
    assert drawn[0].name == "figure label" and drawn[0].start_s == -np.inf
    said = narration.words[text.split().index("30,000")].t0
    waiting, *counts = drawn[1:]
    assert waiting.name == "figure 0" and waiting.end_s == pytest.approx(said)
    assert waiting.rgba[..., 3].max() < 100  # faint until said
    assert counts[0].start_s == pytest.approx(said) and counts[-1].end_s == np.inf
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(counts, counts[1:], strict=False))
    # The digits grow wider as the number counts up: more lit pixels in each state.
    ink = [int((d.rgba[..., 3] > 128).sum()) for d in counts]
    assert ink[0] < ink[-1]


@pytest.mark.parametrize(("figure", "narration", "shown", "label"), [
    ("30,000 contracted teaching staff", "", "30,000", "Contracted teaching staff"),
    ("2.1 million Twitter followers", "", "2.1 million", "Twitter followers"),
    ("18 percent", "fell 18 percent", "18%", "Caption"),
    ("5 billion", "They spent $5 billion.", "$5 billion", "Caption"),
    ("4.5% inflation", "", "4.5%", "Inflation"),
    ("(12,000 people)", "", "12,000", "People"),
])
def test_a_figure_keeps_its_unit_and_currency(figure: str, narration: str, shown: str, label: str) -> None:
    parsed = parse_figure(figure, narration, "Caption")
    assert (parsed.text, parsed.label) == (shown, label)
    assert parsed.at(0.5).replace(",", "") in ("15000", "1.1 million", "9%", "$2 billion", "2.2%", "6000")


def test_a_section_card_opens_the_scene_then_its_layout_follows() -> None:
    text = "The method is simple. Knead the dough for ten minutes and leave it to rise overnight."
    scene = body(text, caption="The method", section="The method")
    narration = speech(6.0, text)
    plan = plan_scene(scene, narration, SMALL, SceneContext())
    card, *rest = layout_layers(plan)
    assert card.name == "section" and card.first == 0
    assert card.stop == rest[0].first and all(layer.first >= card.stop for layer in rest)
    assert card.end_s == pytest.approx(0.3 + SECTION_S, abs=1 / FPS)
    # The card sits in the middle of the area, between the caption and the subtitles.
    area = Area.of(W, H)
    assert area.top <= card.y and card.y + card.rgba.shape[0] <= area.top + area.height
    assert names_at(plan, card.first) & {"section"} and not names_at(plan, card.stop) & {"section"}


def names_at(plan, k: int) -> set[str]:
    return {shown.layer.name for shown in frame_at(plan, k).layers}


#: One page per kind of script and structure runs on every `make test`; `make soak` and
#: `benchmarks/layouts.py` cover the rest.
LAYOUT_PAGES = frozenset({"photo-essay.html", "sourdough-steps.html", "zh-tea-terraces.html", "bergwald.html"})


@pytest.mark.parametrize("name", [n if n in LAYOUT_PAGES else pytest.param(n, marks=pytest.mark.slow)
                                  for n in OWN_PAGES])
def test_own_pages_without_pictures_show_a_layout_most_of_the_time(name: str) -> None:
    result = page_share(Path(OWN_PAGES_DIR) / name, RenderOptions(resolution=144, fps=15))
    assert result is None or result.share <= 0.2, (name, result)


@pytest.mark.parametrize("name", slow_corpus_params())
def test_saved_pages_without_pictures_show_a_layout_most_of_the_time(name: str) -> None:
    if not PAGES_DIR.is_dir():
        pytest.skip(CORPUS_MISSING)
    result = page_share(PAGES_DIR / name, RenderOptions(resolution=144, fps=15))
    assert result is None or result.share <= 0.2, result


def test_a_narrow_picture_is_set_whole_on_a_blurred_darker_copy_of_itself() -> None:
    narrow = solid_picture((220, 40, 40), (60, 240))
    plan = plan_scene(body("A tall narrow picture."), speech(2.0), SMALL, SceneContext(), narrow)
    image = plan.backdrop.image
    assert image.shape[:2] == (round(H * 1.12), round(W * 1.12))  # the frame and room to move, not the picture
    red = image[..., 0].astype(int)
    bright = red > 150  # the picture itself (dimmed 0.8 as every body backdrop)
    rows, cols = np.nonzero(bright)
    h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert abs(w / h - 60 / 240) < 0.05  # its own shape, not stretched to the frame's
    assert h >= 0.85 * image.shape[0]  # as tall as the frame allows
    surround = red[:, : cols.min() - 4]
    assert 0 < surround.mean() < 0.6 * red[bright].mean()  # the sides: the same colour, darkened
    # A picture the frame's shape and large enough keeps the plain Ken Burns move.
    plain = plan_scene(body("A wide picture."), speech(2.0), SMALL, SceneContext(), solid_picture((30, 90, 160)))
    assert plain.backdrop.image.shape == (270, 480, 3)


def test_the_benchmark_prints_the_share_per_page_as_the_readme_runs_it() -> None:
    import subprocess
    import sys

    page = str(OWN_PAGES_DIR / "short-note.html")
    done = subprocess.run([sys.executable, "benchmarks/layouts.py", page], capture_output=True, text=True,
                          timeout=600, cwd=OWN_PAGES_DIR.parent.parent)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("short-note.html"))
    assert row.split()[3] == "0.0%" and "quote" in row
    bad = subprocess.run([sys.executable, "benchmarks/layouts.py", "no-such-page.html"], capture_output=True,
                         text=True, timeout=600, cwd=OWN_PAGES_DIR.parent.parent)
    assert bad.returncode != 0 and "neither a saved page nor a folder" in bad.stderr
