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
