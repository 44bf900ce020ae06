"""User edits: every supported change, and every malformed edit rejected with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.edits import apply_edits, load_edits_file, parse_edits
from tasks.errors import EditError
from tasks.models import Scene, Storyboard


@pytest.fixture
def board() -> Storyboard:
    def scene(i: str, kind: str = "body") -> Scene:
        return Scene(id=i, kind=kind, narration=f"Narration of {i} goes here.", caption=f"Cap {i}", hint_s=2.0)

    return Storyboard(
        title="T",
        source_url="https://example.com/a",
        scenes=[scene("title", "title"), scene("s1"), scene("s2"), scene("s3"), scene("closing", "closing")],
    )


def ids(b: Storyboard) -> list[str]:
    return [s.id for s in b.scenes]


def test_no_edits_is_identity(board: Storyboard) -> None:
    assert apply_edits(board, None) == board
    assert apply_edits(board, "") == board
    assert apply_edits(board, {}) == board


def test_change_narration_and_caption_updates_hint(board: Storyboard) -> None:
    text = "A much longer narration " * 10
    out = apply_edits(board, {"scenes": {"s2": {"narration": text, "caption": "New"}}}, words_per_minute=120)
    s2 = out.scene("s2")
    assert s2.narration == text and s2.caption == "New"
    assert s2.hint_s > 15
    assert out.scene("s1") == board.scene("s1")
    assert board.scene("s2").caption == "Cap s2"  # the input is untouched


def test_drop_append_order_and_top_level(board: Storyboard) -> None:
    yaml_text = """
title: Better title
voice: en-gb
aspect: 9:16
theme: paper
avatar: ada
drop: [s3]
append:
  - {narration: "One more thing to say.", caption: Bonus}
  - {id: extra, narration: "And another."}
order: [title, s2, a1, s1]
"""
    out = apply_edits(board, yaml_text)
    assert ids(out) == ["title", "s2", "a1", "s1", "closing", "extra"]
    top = (out.title, out.voice, out.aspect, out.theme, out.avatar)
    assert top == ("Better title", "en-gb", "9:16", "paper", "ada")


def test_json_edits(board: Storyboard) -> None:
    out = apply_edits(board, '{"drop": ["s1", "s2"]}')
    assert ids(out) == ["title", "s3", "closing"]


@pytest.mark.parametrize(
    ("edits", "named"),
    [
        ({"scenes": {"s9": {"caption": "x"}}}, "'s9'"),
        ({"drop": ["nope"]}, "'nope'"),
        ({"order": ["s1", "ghost"]}, "'ghost'"),
        ({"order": ["s1", "s1"]}, "'s1' twice"),
        ({"scenes": {"s1": {"narations": "typo"}}}, "scenes.s1.narations"),
        ({"colour": "red"}, "'colour'"),
        ({"scenes": {"s1": {"narration": 5}}}, "scenes.s1.narration"),
        ({"aspect": "4:3"}, "'aspect'"),
        ({"theme": "neon"}, "'theme'"),
        ({"drop": "s1"}, "'drop'"),
        ({"append": [{"caption": "no narration"}]}, "append.0.narration"),
        ({"append": [{"id": "s1", "narration": "dup"}]}, "'s1' is already used"),
        ({"append": [{"id": "../x", "narration": "bad id"}]}, "append.0.id"),
        ({"drop": ["title", "s1", "s2", "s3", "closing"]}, "drop every scene"),
        ({"scenes": {"s1": {"narration": ""}}}, "scenes.s1.narration"),
    ],
)
def test_bad_edits_name_the_key(board: Storyboard, edits: dict, named: str) -> None:
    with pytest.raises(EditError) as info:
        apply_edits(board, edits)
    assert named in str(info.value)


@pytest.mark.parametrize("text", ["{not json", "a: [unclosed", "- just\n- a list", "42"])
def test_malformed_text(text: str) -> None:
    with pytest.raises(EditError):
        parse_edits(text)


def test_edits_file(tmp_path: Path, board: Storyboard) -> None:
    f = tmp_path / "edits.yaml"
    f.write_text("drop: [s1]\n")
    assert ids(apply_edits(board, load_edits_file(f))) == ["title", "s2", "s3", "closing"]
    with pytest.raises(EditError, match="does not exist"):
        load_edits_file(tmp_path / "missing.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EditError):
        load_edits_file(tmp_path / "bin.yaml")


def test_edited_title_is_what_the_title_card_shows_and_says(board: Storyboard) -> None:
    out = apply_edits(board, {"title": "Lights of the North Sea"}, words_per_minute=160)
    assert out.title == "Lights of the North Sea"
    title = out.scene("title")
    # The card draws the title scene's narration and its first subtitle is the same words.
    assert title.narration == "Lights of the North Sea."
    assert title.hint_s >= 3.0
    assert [s.narration for s in out.scenes[1:]] == [s.narration for s in board.scenes[1:]]
    assert board.scene("title").narration == "Narration of title goes here."  # the input is untouched


def test_edited_title_keeps_title_words_the_same_edits_give(board: Storyboard) -> None:
    out = apply_edits(board, {"title": "New", "scenes": {"title": {"narration": "Welcome aboard."}}})
    assert out.title == "New" and out.scene("title").narration == "Welcome aboard."
    out = apply_edits(board, {"title": "New", "scenes": {"title": {"caption": "By me"}}})
    assert out.scene("title").narration == "New." and out.scene("title").caption == "By me"
    appended = apply_edits(board, {"title": "New", "append": [{"kind": "title", "narration": "Part two."}]})
    assert appended.scenes[-1].narration == "Part two."  # a title card the user wrote keeps its words


def test_rewritten_narration_is_the_users_not_the_writers(board: Storyboard) -> None:
    written = board.model_copy(update={"scenes": [s.model_copy(update={"writer": "llm", "sources": [2]})
                                                  for s in board.scenes]})
    out = apply_edits(written, {"scenes": {"s1": {"narration": "My own words here."}, "s2": {"caption": "Mine"}}})
    assert out.scene("s1").writer is None and out.scene("s1").sources is None
    assert out.scene("s2").writer == "llm" and out.scene("s2").sources == [2]  # same words, same writer


def test_caption_style_is_an_edit(board: Storyboard) -> None:
    out = apply_edits(board, "caption_style: karaoke\n")
    assert out.caption_style == "karaoke" and board.caption_style is None
    with pytest.raises(EditError, match="'caption_style'.*'loud'"):
        parse_edits({"caption_style": "loud"})


def _sourdough() -> Storyboard:
    from tasks.extract import extract_article
    from tasks.suggest import suggest_storyboard

    page = Path(__file__).parent / "pages" / "sourdough-steps.html"
    return suggest_storyboard(extract_article(page.read_text(encoding="utf-8"), "http://127.0.0.1/sourdough-steps.html"))


def test_an_edited_list_scene_shows_the_new_words_as_its_bullets(tmp_path: Path) -> None:
    from tasks.layout import PALETTES
    from tasks.scene_layouts import layout_of, scene_layout
    from tests.test_render import speech

    board = _sourdough()
    listed = next(s for s in board.scenes if s.layout == "list")
    new = ["Mix the flour with warm water.", "Leave it to rest for an hour.", "Fold in the starter and the salt."]
    edits = tmp_path / "edits.yaml"
    edits.write_text(f"scenes:\n  {listed.id}: {{narration: \"{' '.join(new)}\", caption: Mixing}}\n")
    edited = next(s for s in apply_edits(board, load_edits_file(edits)).scenes if s.id == listed.id)
    assert edited.narration == " ".join(new) and edited.caption == "Mixing"
    assert edited.items == new and layout_of(edited) == "list"
    # The video's bullets are the new ones: one state per new item, the last showing all three.
    states = scene_layout(edited.model_copy(update={"section": None}), speech(6.0, edited.narration),
                          PALETTES["midnight"], 640, 360, has_picture=False)
    assert [d.name for d in states] == ["list 1", "list 2", "list 3"]
    # An opening line the scene said besides its items, left as it was, stays no bullet.
    intro = Scene(id="s1", narration="Three habits keep it alive. Feed it daily. Keep it warm.", caption="Care",
                  hint_s=4.0, layout="list", items=["Feed it daily.", "Keep it warm."])
    one = Storyboard(title="T", scenes=[intro])
    changed = apply_edits(one, {"scenes": {"s1": {"narration": "Three habits keep it alive. Feed it twice a day. "
                                                                "Keep it by the oven. Never chill it."}}})
    assert changed.scenes[0].items == ["Feed it twice a day.", "Keep it by the oven.", "Never chill it."]
    # Rewritten as one sentence, the scene is no list any more; a caption alone keeps the items.
    prose = apply_edits(board, {"scenes": {listed.id: {"narration": "Mix everything and let it rest."}}})
    assert layout_of(next(s for s in prose.scenes if s.id == listed.id)) == "quote"
    recaptioned = apply_edits(board, {"scenes": {listed.id: {"caption": "Steps"}}})
    assert next(s for s in recaptioned.scenes if s.id == listed.id).items == listed.items


def test_an_edited_figure_scene_counts_the_new_figure() -> None:
    scene = Scene(id="s1", narration="The ministry hired 30,000 teaching staff.", caption="Staff", hint_s=3.0,
                  layout="figure", figure="30,000 teaching staff")
    board = Storyboard(title="T", scenes=[scene])
    recounted = apply_edits(board, {"scenes": {"s1": {"narration": "The ministry hired 450 nurses last year."}}})
    assert recounted.scenes[0].figure.startswith("450 nurses") and recounted.scenes[0].layout == "figure"
    plain = apply_edits(board, {"scenes": {"s1": {"narration": "The ministry hired more staff."}}})
    assert plain.scenes[0].figure is None and plain.scenes[0].layout is None
