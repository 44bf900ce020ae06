"""The command users run, `python -m flows.video_flow URL --runner KIND`, in a subprocess on every runner.

Each runner's video must match the thread runner's: same scene times, same frame count. The page
is the bundled sample article with its local pictures and a PNG presenter, at 144p and 8 fps so
each run stays short.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flows.cli_video import assert_same_video, cli_env, client_folder, run_cli, thread_run

pytestmark = [pytest.mark.integration]


# Ray's start-up alone takes most of a minute on a busy 2-core machine: `make soak` runs it.
@pytest.mark.parametrize("kind", ["process", pytest.param("ray", marks=pytest.mark.slow)])
def test_command_line_runs_on_every_runner(kind: str, prefect_api: str, tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    reference = thread_run(tmp_path_factory.getbasetemp(), prefect_api)
    folder = client_folder(tmp_path)
    state, _ = run_cli(folder, f"on-{kind}", kind, cli_env(folder, PREFECT_API_URL=prefect_api))
    assert_same_video(state, reference, kind)


def test_command_line_on_dask_without_an_api_starts_one_temporary_server(
        prefect_api: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    reference = thread_run(tmp_path_factory.getbasetemp(), prefect_api)
    # Without PREFECT_API_URL each Dask worker process used to start a temporary Prefect server of its own.
    folder = client_folder(tmp_path)
    env = cli_env(folder, PREFECT_HOME=str(tmp_path / "prefect-home"),
                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
    state, stderr = run_cli(folder, "on-dask", "dask", env)
    assert_same_video(state, reference, "dask")
    assert stderr.count("Starting temporary server") == 1, stderr[-4000:]


@pytest.mark.slow
def test_batch_and_tune_command_lines_on_the_process_runner(prefect_api: str, tmp_path: Path) -> None:
    # `python -m flows.batch_flow URL...` and `python -m flows.tune_flow --trials N`, as the README writes them;
    # the runner comes from PAGEREEL_RUNNER, so every task is pickled into a worker process.
    folder = client_folder(tmp_path)
    env = cli_env(folder, PREFECT_API_URL=prefect_api, PAGEREEL_RUNNER="process",
                  PAGEREEL_TUNING__RESOLUTION="144", PAGEREEL_TUNING__CLIP_SECONDS="1.5",
                  PAGEREEL_TUNING__PROFILES_DIR=str(folder / "profiles"))
    outputs = []
    for command in (["flows.batch_flow", "article.html", "--json"],
                    ["flows.tune_flow", "--trials", "2", "--source", "article.html", "--json"]):
        done = subprocess.run([sys.executable, "-m", *command], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=400)
        assert done.returncode == 0, done.stderr[-4000:]
        outputs.append(json.loads(done.stdout))
    batch, tune = outputs
    assert [i["status"] for i in batch["items"]] == ["completed"]
    assert Path(batch["items"][0]["video_path"]).is_file()
    assert tune["trials_run"] == 2 and Path(tune["profile_path"]).is_file()
