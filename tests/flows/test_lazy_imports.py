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
    return _run(folder, prefect_api, *args)[0]


def _run(folder: Path, prefect_api: str, *args: str) -> tuple[set[str], dict]:
    """The top-level packages a ``pagereel video`` run in ``folder`` loaded, and the state it printed."""
    report = folder / "loaded.json"
    done = subprocess.run([sys.executable, "-c", _LOADED_BY_CLI, str(report), "video", "article.html", *args, "--json"],
                          cwd=folder, env=cli_env(folder, PREFECT_API_URL=prefect_api), capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout)
    assert state["status"] in ("storyboard", "completed")
    return set(json.loads(report.read_text())), state


def test_a_dry_run_loads_no_encoder_and_no_optuna(prefect_api: str, tmp_path: Path) -> None:
    loaded = _loaded(client_folder(tmp_path / "dry"), prefect_api, "--workflow-id", "dry", "--dry-run")
    assert "flows" in loaded and "trafilatura" in loaded  # the storyboard half ran
    assert not loaded & {"av", "optuna"}, sorted(loaded & {"av", "optuna"})


@pytest.fixture(scope="module")
def video_run(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str], dict]:
    """A first video of the sample page: its folder, what it loaded and the state it printed."""
    folder = client_folder(tmp_path_factory.mktemp("video"), pictures=False)
    return folder, *_run(folder, prefect_api, "--workflow-id", "video")


def test_a_video_loads_no_optuna_and_no_redis_it_was_not_given(video_run: tuple[Path, set[str], dict]) -> None:
    _, loaded, _ = video_run
    assert "av" in loaded  # it rendered
    assert not loaded & {"optuna", "redis", "prefect_redis"}, sorted(loaded & {"optuna", "redis", "prefect_redis"})


def test_a_cached_re_run_loads_no_kernels(prefect_api: str, video_run: tuple[Path, set[str], dict]) -> None:
    folder, loaded, first = video_run
    assert "numba" in loaded  # the first run drew its frames with the kernels
    again, state = _run(folder, prefect_api, "--workflow-id", "video")
    # Every scene came from the cache and the video beside them was taken over: no frame was drawn.
    assert state["status"] == "completed" and "reused:assemble" in state["optimizations_used"], state
    assert state["metrics"]["cache_hits"] >= 2 * len(state["scenes"]), state["metrics"]  # narrations and renders
    assert not again & {"numba", "llvmlite"}, sorted(again & {"numba", "llvmlite"})
    # The kernels' backend is still said (read off what is installed), as the first run said it.
    assert _kernels(state) == _kernels(first) == ["kernels:numba"], (_kernels(first), _kernels(state))


def _kernels(state: dict) -> list[str]:
    return [used for used in state["optimizations_used"] if used.startswith("kernels:")]
