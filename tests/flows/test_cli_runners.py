"""The command users run, `python -m flows.video_flow URL --runner KIND`, in a subprocess on every runner.

Each runner's video must match the thread runner's: same scene times, same frame count. The page
is the bundled sample article with its local pictures and a PNG presenter, at 144p and 8 fps so
each run stays short.
"""

from __future__ import annotations

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
