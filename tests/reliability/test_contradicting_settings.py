"""Settings that contradict each other, or that would corrupt a request, are refused when they are loaded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flows.settings import load_settings
from tasks.errors import ConfigurationError
from tests.reliability.conftest import PYTHON, cli_env

pytestmark = pytest.mark.reliability


def test_min_scenes_above_max_scenes_is_refused_naming_both() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(storyboard={"min_scenes": 60, "max_scenes": 12})
    message = str(caught.value)
    assert "min_scenes=60" in message and "max_scenes=12" in message and "storyboard" in message
    assert load_settings(storyboard={"min_scenes": 12, "max_scenes": 12}).storyboard.max_scenes == 12


def test_min_scenes_from_the_environment_is_checked_against_the_default_max(monkeypatch: pytest.MonkeyPatch,
                                                                             tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAGEREEL_STORYBOARD__MIN_SCENES", "60")
    with pytest.raises(ConfigurationError, match="min_scenes=60 is more than max_scenes=12"):
        load_settings()


@pytest.mark.parametrize("agent", ["pagereel\r\nX-Injected: 1", "pagereel\n", "page\rreel", "tab\there",
                                   "nul\x00", "caf\u00e9", "del\x7f"])
def test_a_user_agent_that_is_not_one_printable_ascii_line_is_refused(agent: str) -> None:
    with pytest.raises(ConfigurationError, match="fetch.user_agent"):
        load_settings(fetch={"user_agent": agent})


def test_the_cli_refuses_a_crlf_user_agent_before_fetching(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9/api", PAGEREEL_FETCH__USER_AGENT="pagereel\r\nX-Injected: 1")
    done = subprocess.run([PYTHON, "-m", "flows.video_flow", "https://example.com/story", "--dry-run"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: invalid settings") and "fetch.user_agent" in lines[-1]
    assert "Traceback" not in done.stderr and "transient" not in done.stderr
