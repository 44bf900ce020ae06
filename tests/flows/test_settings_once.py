"""A command builds its settings once and hands them down: the flow it runs does not build them again."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.flows.cli_video import cli_env, client_folder

pytestmark = [pytest.mark.integration]

# The pagereel console script's own entry point, with every construction of Settings counted.
_COUNTED_CLI = textwrap.dedent("""
    import atexit, json, sys, traceback
    from flows import settings

    built = []
    original = settings.Settings.__init__

    def counted(self, *args, **kwargs):
        built.append("".join(traceback.format_stack(limit=8)))
        original(self, *args, **kwargs)

    settings.Settings.__init__ = counted
    report = sys.argv.pop(1)
    atexit.register(lambda: open(report, "w").write(json.dumps(built)))
    from flows.cli import main
    sys.argv[0] = "pagereel"
    main()
""")


def test_a_video_run_builds_its_settings_once(prefect_api: str, tmp_path: Path) -> None:
    folder = client_folder(tmp_path / "client")
    report = tmp_path / "built.json"
    done = subprocess.run([sys.executable, "-c", _COUNTED_CLI, str(report), "video", "article.html",
                           "--workflow-id", "once", "--dry-run", "--json"], cwd=folder,
                          env=cli_env(folder, PREFECT_API_URL=prefect_api), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["status"] == "storyboard"
    built = json.loads(report.read_text())
    assert len(built) == 1, f"Settings built {len(built)} times:\n" + "\n----\n".join(built)


def test_a_flow_called_with_other_arguments_builds_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.settings import handed_down, handing_down, load_settings

    monkeypatch.chdir(tmp_path)
    given = load_settings(None, out_dir=str(tmp_path / "given"))
    with handing_down(given, None, {"out_dir": str(tmp_path / "given")}):
        assert handed_down(None, {"out_dir": str(tmp_path / "given")}) is given
        assert handed_down(None, {"out_dir": str(tmp_path / "other")}) is None
        assert handed_down("pagereel.toml", {"out_dir": str(tmp_path / "given")}) is None
    assert handed_down(None, {"out_dir": str(tmp_path / "given")}) is None
