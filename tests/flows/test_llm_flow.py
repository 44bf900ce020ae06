"""`python -m flows.video_flow URL --writer llm` renders a video from a scripted chat-completions server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from tasks.extract import extract_article
from tasks.llm_writer import numbered_sentences
from tests.conftest import OWN_PAGES_DIR
from tests.test_llm_writer import chat, ok  # noqa: F401 - the scripted server fixture

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "pagereel_env")]
PAGE = "harbour-lights.html"


def test_cli_writer_llm_renders_a_video(http_server, chat, prefect_api: str, tmp_path: Path) -> None:  # noqa: F811
    url = http_server.url(f"/pages/{PAGE}")
    sentences = numbered_sentences(extract_article((OWN_PAGES_DIR / PAGE).read_text(encoding="utf-8"), url))
    scenes = [{"narration": sentences[k][0], "caption": "Harbour lights", "sources": [k + 1]} for k in (0, 2, 4)]
    server = chat(ok(json.dumps({"scenes": scenes})))
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT),
           "PAGEREEL_LLM__BASE_URL": server.url, "PAGEREEL_LLM__MODEL": "scripted",
           "PAGEREEL_RENDER__RESOLUTION": "144", "PAGEREEL_RENDER__FPS": "8", "PAGEREEL_RENDER__PRESET": "ultrafast"}
    proc = subprocess.run(
        [sys.executable, "-m", "flows.video_flow", url, "--writer", "llm", "--json", "--workflow-id", "llm"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)
    assert state["status"] == "completed"
    body = state["storyboard"]["scenes"][1:-1]
    assert [s["writer"] for s in body] == ["llm"] * 3 and [s["sources"] for s in body] == [[1], [3], [5]]
    assert len(server.requests) == 1
    with av.open(state["video_path"]) as container:
        assert container.streams.video[0].codec_context.height == 144
    manifest = json.loads((Path(state["video_path"]).parent / "manifest.json").read_text())
    assert [s["writer"] for s in manifest["storyboard"]["scenes"][1:-1]] == ["llm"] * 3

    # A re-run costs no request (the script is cached), and the dry-run table shows who wrote what.
    again = subprocess.run(
        [sys.executable, "-m", "flows.video_flow", url, "--writer", "llm", "--dry-run", "--workflow-id", "llm2"],
        cwd=tmp_path, env={**env, "COLUMNS": "240"}, capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert "writer (sources)" in again.stderr and "llm (3)" in again.stderr
    assert len(server.requests) == 1
