"""Hostile parameters: workflow ids never leave out/, fuzzed edits and settings fail only in pagereel's words."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.settings import load_settings
from tasks.avatar import check_avatar
from tasks.edits import apply_edits, parse_edits
from tasks.errors import ConfigurationError, EditError
from tasks.files import atomic_write, run_dir
from tasks.models import Scene, Storyboard

pytestmark = pytest.mark.reliability

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BOARD = Storyboard(
    title="T",
    source_url="https://example.com/a",
    scenes=[Scene(id=i, kind=k, narration=f"Narration of {i}.", caption=f"Cap {i}", hint_s=2.0)
            for i, k in (("title", "title"), ("s1", "body"), ("s2", "body"), ("closing", "closing"))],
)

# JSON-like values, biased towards the keys and shapes edits and settings really have.
_KEYS = st.sampled_from(["title", "voice", "aspect", "theme", "avatar", "scenes", "drop", "append", "order",
                         "narration", "caption", "image", "id", "s1", "s2", "title", "closing", "x", "", "__class__"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                     st.sampled_from(["9:16", "16:9", "paper", "ada", "s1", "../../etc", "\x00", "1e999", "-1"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=20)


# --------------------------------------------------------------------------- workflow ids and output paths


@given(st.one_of(
    st.text(max_size=300),
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "..", ".", "a/../../b", "x\x00y", "\x00", "~root",
                     "a" * 10_000, "../" * 3000, "C:\\Windows\\system32", "\u202e\u2066..", "%2e%2e%2f"]),
))
@FUZZ
def test_workflow_ids_never_write_outside_out(tmp_path: Path, raw: str) -> None:
    out = (tmp_path / "out").resolve()
    folder = run_dir(out, raw)
    assert folder.parent == out and folder.is_dir()
    written = atomic_write(folder / "manifest.json", "{}")
    assert written.resolve().parent == out / folder.name
    assert len(folder.name) <= 80 and "\x00" not in folder.name and not folder.name.startswith(".")


def test_an_out_dir_symlink_inside_out_cannot_escape(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path, out / "escape")  # someone planted a link where a run folder would go
    with pytest.raises(ConfigurationError, match="inside"):
        run_dir(out, "escape")


# --------------------------------------------------------------------------- edits


@given(_VALUES)
@FUZZ
def test_fuzzed_edits_raise_only_edit_errors(edits: object) -> None:
    for source in (edits, json.dumps(edits)):
        try:
            apply_edits(BOARD, parse_edits(source))  # type: ignore[arg-type]
        except EditError:
            pass


@given(st.text(max_size=200) | st.binary(max_size=200))
@FUZZ
def test_fuzzed_edit_text_raises_only_edit_errors(text: str | bytes) -> None:
    try:
        apply_edits(BOARD, text)
    except EditError:
        pass


# --------------------------------------------------------------------------- settings


@given(st.dictionaries(st.sampled_from(["fetch", "storyboard", "render", "runner", "cache", "metrics", "out_dir",
                                        "nope"]),
                       st.one_of(_VALUES, st.dictionaries(st.sampled_from(
                           ["timeout_s", "max_bytes", "max_redirects", "fps", "resolution", "aspect", "kind",
                            "redis_url", "dir", "target_duration_s", "crf", "theme", "port", "x"]), _SCALARS,
                           max_size=3)), max_size=3))
@FUZZ
def test_fuzzed_settings_raise_only_configuration_errors(overrides: dict) -> None:
    try:
        load_settings(None, **overrides)
    except ConfigurationError:
        pass


@pytest.mark.parametrize(("name", "value"), [("PAGEREEL_FETCH__TIMEOUT_S", "nan"), ("PAGEREEL_RENDER__FPS", "1e999"),
                                             ("PAGEREEL_FETCH", "{not json"), ("PAGEREEL_RUNNER", "[1, 2]"),
                                             ("PAGEREEL_FETCH__IMAGE_HOSTS", "{{{"), ("PAGEREEL_OUT_DIR", "")])
def test_hostile_environment_raises_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        name: str, value: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    try:
        load_settings()
    except ConfigurationError:
        pass


# --------------------------------------------------------------------------- avatars


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and header chunk claiming ``width`` x ``height``, then a tiny image body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    body = chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + body


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"#!/bin/sh\necho hello\n", "not a PNG"),
        (b"GIF89a" + b"\x00" * 100, "not a PNG"),
        (b"", "not a PNG"),
        (_png_header(100_000, 100_000), "100000x100000"),  # a decompression bomb: refused from its header
        (_png_header(5000, 5000), "5000x5000"),
        (b"\x89PNG\r\n\x1a\n" + b"\xff" * 200, "cannot be read as an image"),
    ],
)
def test_bad_avatar_files_are_refused_before_rendering(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "face.png"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=match):
        check_avatar(str(path))


def test_huge_avatar_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "face.png"
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(30_000_000)  # sparse: no disk used
    with pytest.raises(ConfigurationError, match="30000000 bytes"):
        check_avatar(str(path))


@pytest.mark.parametrize("spec", ["/dev/zero", "/dev/urandom", "/etc", "/etc/passwd", "nobody", "face\x00.png"])
def test_avatar_paths_that_are_not_pictures_are_refused(spec: str) -> None:
    with pytest.raises(ConfigurationError):
        check_avatar(spec)
