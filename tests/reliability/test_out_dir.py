"""An --out that cannot hold run folders is refused first, with one plain line, before anything is fetched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import PYTHON, cli_env
from tests.reliability.helpers import ARTICLE

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


@pytest.mark.parametrize("kind", ["file", "proc", "devnull"])
def test_an_out_that_is_no_writable_folder_fails_before_the_fetch(kind: str, http_server, pagereel_env: Path,
                                                                  prefect_api: str) -> None:
    out = {"file": str(pagereel_env / "notes.txt"), "proc": "/proc", "devnull": "/dev/null"}[kind]
    if kind == "file":
        Path(out).write_text("keep me\n")
    before = http_server.hits(ARTICLE)
    done = subprocess.run([PYTHON, "-m", "flows.video_flow", http_server.url(ARTICLE), "--out", out],
                          env=cli_env(prefect_api), cwd=pagereel_env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert out in errors[0] and "bug" not in errors[0] and "--out" in errors[0]
    assert http_server.hits(ARTICLE) == before  # refused before the page was fetched
    if kind == "file":
        assert Path(out).read_text() == "keep me\n"  # nothing lost
