"""Edits that cost little to send and a lot to read: YAML alias bombs, huge values, and endless appends."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from tasks.edits import apply_edits, parse_edits
from tasks.errors import EditError
from tasks.models import Scene, Storyboard

pytestmark = pytest.mark.reliability


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic: each level lists the previous one ``width`` times (``width ** levels`` items in all)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * width)}]")
    lines.append(f"drop: *a{levels}")
    return "\n".join(lines) + "\n"


def _shared_nesting(levels: int, width: int = 10) -> list:
    """``width ** levels`` items held in a few hundred objects, as a parsed alias bomb (or a Python caller) gives."""
    value: list = ["x"] * width
    for _ in range(levels):
        value = [value] * width
    return value


def _peak_bytes(call) -> tuple[BaseException | None, int, float]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        call()
        error = None
    except BaseException as exc:  # noqa: BLE001 - the test reads it
        error = exc
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return error, peak, seconds


def test_a_500_byte_alias_bomb_of_nine_levels_is_refused_before_it_expands() -> None:
    text = _alias_bomb()
    assert len(text) < 600
    error, peak, seconds = _peak_bytes(lambda: parse_edits(text))
    assert isinstance(error, EditError) and "YAML aliases" in str(error), error
    assert "\n" not in str(error) and len(str(error)) < 300
    assert peak < 5_000_000 and seconds < 5


def test_a_small_alias_bomb_in_an_edits_file_is_refused(tmp_path) -> None:
    from tasks.edits import load_edits_file

    path = tmp_path / "edits.yaml"
    path.write_text(_alias_bomb(levels=2, width=2), encoding="utf-8")
    with pytest.raises(EditError, match=r"YAML aliases \(\*a0 at line 2, column 10\)"):
        load_edits_file(path)


@pytest.mark.parametrize("key", ["title", "drop", "order", "voice"])
def test_errors_quote_a_bounded_piece_of_a_huge_value(key: str) -> None:
    # 10 million items held in a few objects: what user_edits can be when a caller passes a mapping.
    bomb = _shared_nesting(levels=6)
    error, peak, seconds = _peak_bytes(lambda: parse_edits({key: bomb}))
    assert isinstance(error, EditError), error
    assert len(str(error)) < 800 and "..." in str(error)
    assert peak < 5_000_000, f"{peak / 1e6:.0f} MB to word one error"


def test_errors_name_a_few_problems_not_every_one() -> None:
    error = pytest.raises(EditError, parse_edits, {"drop": list(range(200_000))}).value
    assert str(error).endswith("and 199995 more") and len(str(error)) < 600


# --------------------------------------------------------------------------- many scenes


def _storyboard(n: int = 4) -> Storyboard:
    body = [Scene(id=f"s{i}", narration=f"Sentence number {i} of the story.", hint_s=3.0) for i in range(1, n + 1)]
    return Storyboard(title="T", scenes=[Scene(id="title", kind="title", narration="T.", hint_s=3.0), *body,
                                         Scene(id="closing", kind="closing", narration="Bye.", hint_s=3.0)])


def test_thirty_two_thousand_appends_are_refused_quickly_by_max_scenes() -> None:
    edits = {"append": [{"narration": f"Extra scene {i}."} for i in range(32_000)]}
    started = time.perf_counter()
    with pytest.raises(EditError, match=r"32,006 scenes.*at most 12.*storyboard.max_scenes"):
        apply_edits(_storyboard(), edits, max_scenes=12)
    assert time.perf_counter() - started < 10  # 78 s before, in _next_id


def test_appends_get_linear_ids_and_keep_within_the_caps() -> None:
    edits = {"append": [{"narration": "One."}, {"id": "a2", "narration": "Two."}, {"narration": "Three."}],
             "drop": ["s1"]}
    board = apply_edits(_storyboard(), edits, max_scenes=12)
    assert [s.id for s in board.scenes][-3:] == ["a1", "a2", "a3"]
    long = {"append": [{"narration": " ".join(["word"] * 800) + "."} for _ in range(8)]}
    with pytest.raises(EditError, match=r"storyboard.max_duration_s"):
        apply_edits(_storyboard(), long, max_scenes=60, max_duration_s=600)


def test_a_draft_a_little_over_the_cap_is_not_invalid_edits() -> None:
    # A long page at --duration 3600 gave a draft of about 3,634 s, which the cap then called "invalid edits".
    board = _storyboard(4)
    drafted = sum(s.hint_s for s in board.scenes)
    assert apply_edits(board, None, max_duration_s=drafted - 1).scenes == board.scenes
    with pytest.raises(EditError, match="max_duration_s"):
        apply_edits(board, {"append": [{"narration": "One more scene to say."}]}, max_duration_s=drafted - 1)
