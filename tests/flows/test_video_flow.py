"""The flow and its command line, end to end on the test pages served over loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.video_flow import app, video_flow
from tasks.extract import extract_article
from tasks.fetch import fetch_page
from tasks.models import FetchOptions, Storyboard, WorkflowState
from tests.conftest import OWN_PAGES, corpus_params

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "pagereel_env")]
# Where a sentence may end: a stop and a space; Hindi's "।" and Arabic's "؟" too; a Chinese or Japanese
# full stop with or without a space after it.
_BOUNDARY = re.compile(r"[.!?…।؟][\"'”’)\]]? |[。！？][」』”’）)]? ?")


def covered_by_body(narration: str, paragraphs: list[str]) -> bool:
    """True if ``narration`` is a run of whole sentences each taken verbatim from one paragraph."""
    cuts = [0] + [m.end() for m in _BOUNDARY.finditer(narration)] + [len(narration)]
    ok = [True] + [False] * (len(cuts) - 1)
    for j in range(1, len(cuts)):
        ok[j] = any(ok[i] and any(narration[cuts[i] : cuts[j]].strip() in p for p in paragraphs) for i in range(j))
    return ok[-1]


def check_dry_run(http_server, name: str) -> None:
    url = http_server.url(f"/pages/{name}")
    state = video_flow(url, dry_run=True)
    assert state.status == "storyboard" and state.succeeded
    board = state.storyboard
    assert board is not None and 4 <= len(board.scenes) <= 15
    assert board.scenes[0].kind == "title" and board.scenes[-1].kind == "closing"
    article = extract_article(fetch_page(url, FetchOptions(allow_private_hosts=True)).html, url)
    for scene in board.scenes[1:-1]:
        assert covered_by_body(scene.narration, article.paragraphs), scene.narration
        assert scene.caption and len(scene.caption) <= 48
    saved = Storyboard.model_validate_json(Path(state.storyboard_path).read_text())
    assert saved == board
    assert 30 <= board.duration_hint_s <= 90  # fitted to the 60 s default


@pytest.mark.parametrize("name", OWN_PAGES)
def test_dry_run_on_every_own_page(http_server, name: str) -> None:
    check_dry_run(http_server, name)


@pytest.mark.parametrize("name", corpus_params())
def test_dry_run_on_every_saved_real_page(http_server, name: str) -> None:
    check_dry_run(http_server, name)


def test_same_input_same_storyboard_and_cache_hits(http_server) -> None:
    url = http_server.url("/pages/sourdough-steps.html")
    first = video_flow(url, dry_run=True)
    second = video_flow(url, dry_run=True)
    assert first.storyboard == second.storyboard
    assert second.metrics.cache_hits == 4 and second.metrics.cache_misses == 0


def test_edits_and_avatar_parameters(http_server) -> None:
    url = http_server.url("/pages/garden-sensor.html")
    state = video_flow(url, workflow_id="../escape", avatar="ada",
                       user_edits={"title": "Edited", "drop": ["s1"], "aspect": "1:1"}, dry_run=True)
    board = state.storyboard
    assert board.title == "Edited" and board.avatar == "ada" and board.aspect == "1:1"
    assert board.scenes[0].kind == "title" and board.scenes[0].narration == "Edited."  # what the card shows
    assert "s1" not in [s.id for s in board.scenes]
    assert state.workflow_id == "escape"
    assert Path(state.storyboard_path).parent.name == "escape"


def test_transient_failures_are_retried(http_server) -> None:
    state = video_flow(http_server.url("/flaky/twice?fail=2&status=503"), dry_run=True)
    assert state.succeeded
    assert http_server.hits("/flaky/twice") == 3  # a key no other test uses
    assert state.metrics.retries == {"fetch": 2}


def test_permanent_failures_are_not_retried(http_server) -> None:
    before = http_server.hits("/status/404")  # the server is shared by the whole session
    result = CliRunner().invoke(app, [http_server.url("/status/404"), "--dry-run"])
    assert result.exit_code == 1
    assert http_server.hits("/status/404") - before == 1


def test_cli_json(http_server, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [http_server.url("/pages/photo-essay.html"), "--dry-run", "--json",
                                      "--workflow-id", "phys", "--duration", "40"])
    assert result.exit_code == 0, result.stderr
    state = WorkflowState.model_validate_json(result.stdout)
    assert state.workflow_id == "phys" and state.storyboard is not None
    assert (tmp_path / "out" / "phys" / "storyboard.json").is_file()
    assert state.storyboard.duration_hint_s < 60


def test_cli_table(http_server) -> None:
    result = CliRunner().invoke(app, [http_server.url("/pages/marche-couvert.html"), "--dry-run"])
    assert result.exit_code == 0
    assert "closing" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("path", "args", "message"),
    [
        ("/status/404", [], "404"),
        ("/pdf", [], "application/pdf"),
        ("/empty", [], "empty"),
        ("/blank", [], "no article text"),
        ("/big?bytes=6000000", [], "larger than"),
        ("/hang", [], "1 s"),
        ("/pages/garden-sensor.html", ["--edits", "EDITS"], "not valid YAML"),
        ("/pages/garden-sensor.html", ["--edits", "MISSING"], "does not exist"),
        ("/pages/garden-sensor.html", ["--aspect", "4:3"], "render.aspect"),
        ("/pages/garden-sensor.html", ["--writer", "poet"], "writer must be one of extractive, llm, not 'poet'"),
    ],
)
def test_cli_errors_are_one_line(http_server, monkeypatch, tmp_path: Path, path: str, args: list[str],
                                 message: str) -> None:
    monkeypatch.setenv("PAGEREEL_FETCH__TIMEOUT_S", "1")
    monkeypatch.setenv("PAGEREEL_FETCH__RETRIES", "0")
    (tmp_path / "bad.yaml").write_text("scenes: [unclosed\n")
    args = [str(tmp_path / "bad.yaml") if a == "EDITS" else str(tmp_path / "nope.yaml") if a == "MISSING" else a
            for a in args]
    result = CliRunner().invoke(app, [http_server.url(path), "--dry-run", *args])
    assert result.exit_code != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, result.stderr


def test_cli_as_a_real_process(http_server, prefect_api: str, tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    proc = subprocess.run(
        [sys.executable, "-m", "flows.video_flow", http_server.url("/pages/bergwald.html"), "--dry-run",
         "--json", "--workflow-id", "dw", "--writer", "extractive"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "storyboard" and 4 <= len(data["storyboard"]["scenes"]) <= 15
