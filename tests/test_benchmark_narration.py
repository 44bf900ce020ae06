"""`python benchmarks/narration.py` runs as the README of benchmarks/ writes it and prints a row per engine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_narration_benchmark_prints_each_engine_side_by_side() -> None:
    done = subprocess.run([sys.executable, "benchmarks/narration.py", "--repeat", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {m.group(1): m.groups()[1:] for m in
            re.finditer(r"^(\S+:\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", done.stdout, re.M)}
    assert {"espeak:en-us", "piper:en_US-joe-medium"} <= set(rows), done.stdout
    for audio_s, one, two, _ratio in rows.values():
        assert float(audio_s) > 5 and float(one) > 0 and float(two) > 0


@pytest.mark.slow
def test_narration_benchmark_end_to_end_per_engine() -> None:
    done = subprocess.run([sys.executable, "benchmarks/narration.py", "--repeat", "1", "--e2e", "--seconds", "15",
                           "--resolution", "144"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    tail = done.stdout.split("end to end:")[1]
    ratios = re.findall(r"^(\S+:\S+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)x$", tail, re.M)
    assert {voice for voice, _ in ratios} >= {"espeak:en-us", "piper:en_US-joe-medium"}, done.stdout
