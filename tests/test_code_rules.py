"""The project's code rules that ruff does not check: no function in flows/, tasks/ or kernels/ over 60 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 60
PACKAGES = ("flows", "tasks", "kernels")


def long_functions(source: str, path: str, limit: int = MAX_LINES) -> list[str]:
    """``path:line name (N lines)`` for each function or method in ``source`` longer than ``limit`` lines.

    A function's length runs from its ``def`` (decorators excluded) to its last line, nested functions
    included, the way a reader scrolls through it.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_check_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(f"def long():\n{body}\n", "m.py") == ["m.py:1 long (61 lines)"]
    assert long_functions(f"def fits():\n{body[: body.rindex(chr(10))]}\n", "m.py") == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_is_over_60_lines(package: str) -> None:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        found += long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, f"functions over {MAX_LINES} lines (split them): " + "; ".join(found)


def test_ruff_checks_complexity_and_blind_excepts() -> None:
    """``C90`` (mccabe, at most 12) and ``BLE`` are selected, and the tree passes them."""
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["lint"]
    assert {"C90", "BLE"} <= set(lint["select"])
    assert lint["mccabe"]["max-complexity"] == 12
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "C90,BLE", "--output-format", "concise",
                           "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def test_sound_is_resampled_and_encoded_in_one_module() -> None:
    """Only ``tasks/pcm.py`` makes a resampler or an audio frame: one resampler, one encode loop."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "tasks" / "pcm.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr in ("AudioResampler", "AudioFrame"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.attr}")
    assert not found, "audio resampled or encoded outside tasks/pcm.py: " + "; ".join(found)
