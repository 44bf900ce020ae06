"""A command imports what it needs when it needs it: no encoder for a dry run, no Optuna or Redis for a video."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.flows.cli_video import cli_env, client_folder

pytestmark = [pytest.mark.integration]

# The pagereel console script's entry point; at exit, the top-level packages the process loaded.
_LOADED_BY_CLI = textwrap.dedent("""
    import atexit, json, sys
    report = sys.argv.pop(1)
    atexit.register(lambda: open(report, "w").write(json.dumps(sorted({m.split(".")[0] for m in sys.modules}))))
    from flows.cli import main
    sys.argv[0] = "pagereel"
    main()
""")


def _loaded(folder: Path, prefect_api: str, *args: str) -> set[str]:
    report = folder / "loaded.json"
    done = subprocess.run([sys.executable, "-c", _LOADED_BY_CLI, str(report), "video", "article.html", *args, "--json"],
                          cwd=folder, env=cli_env(folder, PREFECT_API_URL=prefect_api), capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["status"] in ("storyboard", "completed")
    return set(json.loads(report.read_text()))


def test_a_dry_run_loads_no_encoder_and_no_optuna(prefect_api: str, tmp_path: Path) -> None:
    loaded = _loaded(client_folder(tmp_path / "dry"), prefect_api, "--workflow-id", "dry", "--dry-run")
    assert "flows" in loaded and "trafilatura" in loaded  # the storyboard half ran
    assert not loaded & {"av", "optuna"}, sorted(loaded & {"av", "optuna"})


def test_a_video_loads_no_optuna_and_no_redis_it_was_not_given(prefect_api: str, tmp_path: Path) -> None:
    loaded = _loaded(client_folder(tmp_path / "video", pictures=False), prefect_api, "--workflow-id", "video")
    assert "av" in loaded  # it rendered
    assert not loaded & {"optuna", "redis", "prefect_redis"}, sorted(loaded & {"optuna", "redis", "prefect_redis"})
