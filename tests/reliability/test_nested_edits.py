"""Edits nested deeper than any real edits file are refused as EditError, never a RecursionError."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.edits import load_edits_file, parse_edits
from tasks.errors import EditError

pytestmark = pytest.mark.reliability

DEPTH = 100_000
MAX_EDITS_DEPTH = 16  # tasks.edits.MAX_EDITS_DEPTH; real edits files need four levels


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):  # built without recursion, as a caller of the API could
        value = [value]
    return value


def test_a_json_edits_file_of_100000_nested_brackets_is_an_edit_error(tmp_path: Path) -> None:
    path = tmp_path / "edits.json"
    path.write_text("[" * DEPTH + "]" * DEPTH, encoding="utf-8")
    with pytest.raises(EditError, match="nested"):
        load_edits_file(path)


@pytest.mark.parametrize("text", [
    '{"drop": ' + "[" * DEPTH + "]" * DEPTH + "}",  # JSON inside a mapping
    "drop: " + "[" * DEPTH + "]" * DEPTH,  # YAML flow sequences
    "drop: " + "[" * (MAX_EDITS_DEPTH + 2) + "]" * (MAX_EDITS_DEPTH + 2),  # deep, yet readable by the parser
])
def test_deeply_nested_edits_text_is_an_edit_error(text: str) -> None:
    with pytest.raises(EditError, match="nested"):
        parse_edits(text)
    with pytest.raises(EditError, match="nested"):
        parse_edits(text.encode())


def test_a_deeply_nested_mapping_parameter_is_an_edit_error() -> None:
    # The same input reaches a deployment as the user_edits parameter: a mapping, not text.
    with pytest.raises(EditError, match="nested"):
        parse_edits({"drop": _nested(DEPTH)})
    with pytest.raises(EditError, match="nested"):
        parse_edits({"scenes": {"s1": {"narration": _nested(MAX_EDITS_DEPTH + 1)}}})


def test_real_edits_are_well_within_the_depth_limit() -> None:
    edits = parse_edits({"scenes": {"s2": {"narration": "Say this.", "caption": "C"}}, "drop": ["s4"],
                         "append": [{"narration": "More.", "caption": "B"}], "order": ["title", "s2"]})
    assert edits.scenes["s2"].narration == "Say this."
