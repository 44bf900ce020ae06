"""Output paths stay inside out/, and writes are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.files import atomic_write, run_dir, sanitize_workflow_id, workflow_id_for


@pytest.mark.parametrize("raw", ["../../etc", "/etc/passwd", "a/../../b", "..", ".", "x\x00y", "a" * 500, "", "~root"])
def test_hostile_ids_stay_inside_out(tmp_path: Path, raw: str) -> None:
    out = tmp_path / "out"
    folder = run_dir(out, raw)
    assert folder.parent == out.resolve()
    assert "/" not in sanitize_workflow_id(raw) and "\x00" not in sanitize_workflow_id(raw)
    assert len(folder.name) <= 80


def test_ids_from_urls_are_readable_and_distinct() -> None:
    a = workflow_id_for("https://www.example.com/news/2024/big-story.html")
    b = workflow_id_for("https://www.example.com/news/2024/big-story.html?page=2")
    assert a.startswith("example.com-big-story-")
    assert a != b


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "video.srt"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["video.srt"]
