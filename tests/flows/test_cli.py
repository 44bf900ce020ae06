"""The ``pagereel`` console script, run as users run it: the installed command, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flows.cli_video import cli_env, client_folder

pytestmark = [pytest.mark.integration]

PAGEREEL = shutil.which("pagereel", path=str(Path(sys.executable).parent))


def _pagereel(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert PAGEREEL, "the pagereel console script is not installed beside this Python (run make setup)"
    return subprocess.run([PAGEREEL, *args], cwd=folder, env=cli_env(folder, **env), capture_output=True, text=True,
                          timeout=300)


def test_help_lists_every_command(tmp_path: Path) -> None:
    done = _pagereel(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    for name in ("video", "batch", "tune", "status", "cache"):
        assert name in done.stdout


def test_status_reports_backends(tmp_path: Path) -> None:
    done = _pagereel(tmp_path, "status", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report, done.stdout


def test_video_dry_run_makes_a_storyboard(prefect_api: str, tmp_path: Path) -> None:
    folder = client_folder(tmp_path)
    done = _pagereel(folder, "video", "article.html", "--workflow-id", "cli", "--dry-run", "--json",
                     PREFECT_API_URL=prefect_api)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout)
    assert state["status"] == "storyboard"
    assert (folder / "out" / "cli" / "storyboard.json").is_file()
    assert len(state["storyboard"]["scenes"]) >= 3


def test_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = _pagereel(tmp_path, "video", "no-such-page.html", "--dry-run")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert "no-such-page.html" in errors[0]
    # A missing local page is refused before any Prefect server starts for it.
    assert "temporary server" not in done.stderr, done.stderr[-2000:]


def test_a_prefect_server_that_does_not_start_is_not_called_a_pagereel_bug() -> None:
    from flows.runtime import unexpected_failure

    line = unexpected_failure(RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."))
    assert "PREFECT_API_URL" in line and "bug" not in line
    assert "bug in pagereel" in unexpected_failure(KeyError("x"))


def test_a_home_prefect_cannot_use_is_named_before_any_server_starts(tmp_path: Path) -> None:
    """As a service runs it (``env -i HOME=/nonexistent``): one line saying what is wrong and what to do."""
    article = Path(__file__).resolve().parents[2] / "examples" / "article.html"
    env = {"HOME": "/nonexistent", "PATH": os.environ["PATH"], "DO_NOT_TRACK": "1"}
    done = subprocess.run([sys.executable, "-m", "flows.video_flow", str(article), "--dry-run"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert "/nonexistent/.prefect" in errors[0] and "does not exist" in errors[0]
    assert "PREFECT_HOME" in errors[0] and "PREFECT_API_URL" in errors[0]
    assert "did not start" not in done.stderr and not list(tmp_path.rglob("storyboard.json"))


def test_a_prefect_home_that_is_a_file_or_cannot_be_made_is_refused(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from flows.runtime import check_prefect_home
    from tasks.errors import ConfigurationError

    (tmp_path / "file").write_text("")
    for home, says in ((tmp_path / "file", "is not a folder"), (tmp_path / "a" / "b", f"{tmp_path / 'a'} does not")):
        # No database elsewhere: the session's test server (started by an earlier test) sets one.
        with temporary_settings({PREFECT_HOME: str(home), PREFECT_API_URL: None},
                                restore_defaults={PREFECT_API_DATABASE_CONNECTION_URL}), \
                pytest.raises(ConfigurationError, match=says):
            check_prefect_home()
    for home in (tmp_path, tmp_path / "new"):  # a folder, or one its parent lets Prefect make
        with temporary_settings({PREFECT_HOME: str(home), PREFECT_API_URL: None}):
            check_prefect_home()
    with temporary_settings({PREFECT_HOME: str(tmp_path / "file"), PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        check_prefect_home()  # a server of its own needs no home for one

def test_batch_and_cache_commands_answer(tmp_path: Path) -> None:
    done = _pagereel(tmp_path, "batch", "--help")
    assert done.returncode == 0 and "--file" in done.stdout, done.stderr
    done = _pagereel(tmp_path, "cache", "clear")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed "), done.stdout


def test_video_with_a_caption_style_and_a_resolution(prefect_api: str, tmp_path: Path) -> None:
    import av
    import numpy as np

    folder = client_folder(tmp_path, pictures=False)
    done = _pagereel(folder, "video", "article.html", "--caption-style", "karaoke", "--resolution", "160p",
                     "--workflow-id", "kara", "--json", PREFECT_API_URL=prefect_api)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout)
    body = state["scenes"][1]
    with av.open(state["video_path"]) as container:
        stream = container.streams.video[0]
        size = (stream.codec_context.width, stream.codec_context.height)
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for k, f in enumerate(container.decode(video=0))
                  if body["start_s"] + 0.5 <= k / fps < body["end_s"] - 0.3]
    assert size == (284, 160)  # --resolution 160p: 160 high, 16:9
    # Karaoke: the word being said is yellow in the lower half (above the progress bar, also yellow).
    lit = [int(((f[80:150, :, 0] > 170) & (f[80:150, :, 2] < 110) & (f[80:150, :, 1] > 140)).sum()) for f in frames]
    assert max(lit) > 3, lit
    assert np.count_nonzero(lit) > len(lit) // 3  # a word is lit most of the time something is said
    bad = _pagereel(folder, "video", "article.html", "--caption-style", "loud", "--dry-run")
    assert bad.returncode == 1 and "caption_style" in bad.stderr.strip().splitlines()[-1]


def _heartbeats(flow_run_name: str) -> int:
    """How many heartbeat events the API holds for the flow run named ``flow_run_name``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[flow_run_name])))
        page = client.read_events(filter=EventFilter(event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                                                     resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"])),
                                  limit=50)  # the client's default, 100, is over the server's cap
        return len(page.events)


def test_a_command_sends_no_heartbeats_unless_asked_and_delivers_its_logs(prefect_api: str, tmp_path: Path) -> None:
    """Prefect's heartbeat thread holds each run up to a second as it ends: a command's runs send none by default."""
    import time

    folder = client_folder(tmp_path)
    for workflow_id, env in (("unbeating", {}), ("beating", {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"})):
        done = _pagereel(folder, "video", "article.html", "--workflow-id", workflow_id, "--dry-run", "--json",
                         PREFECT_API_URL=prefect_api, **env)
        assert done.returncode == 0, done.stderr[-3000:]
    ends = time.monotonic() + 30
    while _heartbeats("video beating") == 0:  # events reach the API from a background worker, then get stored
        assert time.monotonic() < ends, "a run asked for heartbeats sent none"
        time.sleep(0.5)
    assert _heartbeats("video unbeating") == 0  # sent before the other run's, so stored by now were there any
    # The process skips the interpreter's teardown, never the queues that carry its logs to the API.
    assert _last_logs_delivered("video unbeating")


def _last_logs_delivered(flow_run_name: str) -> bool:
    """Whether the run's closing log line reached the API (read once: the process that sent it has ended)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[flow_run_name])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    assert run.state and run.state.is_completed()
    return any("Finished in state Completed()" in log.message and log.task_run_id is None for log in logs)

