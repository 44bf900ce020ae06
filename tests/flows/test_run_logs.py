"""pagereel's warnings reach the Prefect UI: read a run's logs back through the API and find them there."""

from __future__ import annotations

import builtins
import socket
import time

import pytest

from flows.cache import reset_probes
from flows.video_flow import run_video

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "pagereel_env")]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again at once: nothing listens there


def _run_logs(flow_run_name: str, wanted: int, timeout_s: float = 20.0) -> list:
    """The logs of the flow run named ``flow_run_name`` (its tasks' included), once ``wanted`` pagereel ones arrived."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter, LogFilterFlowRunId
    ends = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[flow_run_name])))
        while True:  # logs reach the API in batches, from a background worker
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            if sum(log.name.startswith("pagereel.") for log in logs) >= wanted or time.monotonic() > ends:
                return logs
            time.sleep(0.5)


def test_fallbacks_and_skipped_pictures_are_in_the_run_logs(http_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_RENDER__RESOLUTION", "96")
    monkeypatch.setenv("PAGEREEL_RENDER__FPS", "8")
    monkeypatch.setenv("PAGEREEL_RENDER__PRESET", "ultrafast")
    monkeypatch.setenv("PAGEREEL_STORYBOARD__TARGET_DURATION_S", "12")
    port = _closed_port()
    monkeypatch.setenv("PAGEREEL_CACHE__REDIS_URL", f"redis://127.0.0.1:{port}/0")  # configured, and down
    reset_probes()
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name.startswith("prefect_ray"):
            raise ImportError("No module named 'prefect_ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    # The page's pictures: one on this server that answers 404, one on a host the settings refuse.
    state = run_video(http_server.url("/pages/harbour-lights.html"), workflow_id="logged",
                      overrides={"runner": {"kind": "ray"}})
    assert state.status == "completed"

    logs = _run_logs("video logged", wanted=3)
    ours = [(log.name, log.level, log.message) for log in logs if log.name.startswith("pagereel.")]
    assert all(level >= 30 for _, level, _ in ours), ours  # warnings, at the level they were logged
    names = {name for name, _, _ in ours}
    assert {"pagereel.runtime", "pagereel.cache", "pagereel.images"} <= names, ours
    text = "\n".join(message for _, _, message in ours)
    assert "runner 'ray' was asked for but scenes run on 'thread'" in text
    assert f"Redis at 127.0.0.1:{port}/0 is unreachable" in text
    assert "leaving out picture" in text and "north-pier.jpg" in text
    # A picture that fails to download is warned about in its task's run; one the page may not use
    # (another site's, here) is refused by the flow before any task runs, so it is filed under the flow.
    fetched = [log for log in logs if log.name == "pagereel.images" and "north-pier.jpg" in log.message]
    refused = [log for log in logs if log.name == "pagereel.images" and "not allowed for this page" in log.message]
    assert fetched and all(log.task_run_id is not None for log in fetched)
    assert refused and all(log.flow_run_id is not None for log in refused)


@pytest.mark.parametrize("first", ["flows.video_flow", "prefect"])
def test_every_entry_point_routes_pagereel_logs(first: str) -> None:
    """Whether pagereel or Prefect loads first, pagereel's records reach the run logs, in children too."""
    from tests.conftest import run_python

    proc = run_python(f"""
        import logging, os
        import {first}
        import flows.video_flow
        from prefect.logging.handlers import APILogHandler
        handlers = [h for h in logging.getLogger("pagereel").handlers if isinstance(h, APILogHandler)]
        assert len(handlers) == 1, handlers
        assert "pagereel" in os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"].split(",")
        logging.getLogger("pagereel.test").warning("outside any run: console only")
        print("ok")
    """, PREFECT_LOGGING_EXTRA_LOGGERS="", PYTHONWARNINGS="error")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    assert "outside any run" in proc.stderr and "attempted to send logs" not in proc.stderr
