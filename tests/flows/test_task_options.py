"""A run's task options (retries, expiry, storage, refresh) come from one place, with Prefect's exponential backoff."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.tasks import exponential_backoff

from flows.settings import load_settings
from flows.video_flow import _configured_tasks, configured_render_tasks

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration]


def _all_tasks(settings: object) -> dict[str, object]:
    return {**_configured_tasks(settings), **configured_render_tasks(settings)}


def test_fetching_stages_back_off_exponentially(prefect_api: str, pagereel_env: Path) -> None:
    settings = load_settings(None, fetch={"retries": 4, "retry_base_s": 0.5, "cache_ttl_s": 600})
    tasks = _all_tasks(settings)
    for name in ("fetch", "picture"):
        assert tasks[name].retries == 4, name
        assert tasks[name].retry_delay_seconds == exponential_backoff(0.5)(4) == [0.5, 1.0, 2.0, 4.0], name
        assert tasks[name].cache_expiration == timedelta(seconds=600), name
        assert tasks[name].retry_jitter_factor == 0.5, name  # the task's own jitter stays
    for name in ("extract", "suggest", "edits", "narrate", "render"):
        assert tasks[name].cache_expiration is None, name
    no_retries = _all_tasks(load_settings(None, fetch={"retries": 0}))
    assert no_retries["fetch"].retries == 0 and no_retries["picture"].retries == 0


def test_every_stage_gets_the_runs_storage_and_refresh(prefect_api: str, pagereel_env: Path) -> None:
    cached = _all_tasks(load_settings())
    fresh = _all_tasks(load_settings(None, cache={"enabled": False}))
    for name, task in cached.items():
        if name == "assemble":  # writes files, never cached
            continue
        assert task.result_storage is not None, name
        assert not task.refresh_cache, name
        assert fresh[name].refresh_cache, name
    for name in ("picture", "narrate", "render"):  # read back from storage, not held for the whole run
        assert cached[name].cache_result_in_memory is False, name


def test_task_options_are_applied_in_one_place() -> None:
    """Only ``flows.runtime.with_run_options`` gives a task its per-run retries, expiry, storage or refresh."""
    per_run = {"retries", "retry_delay_seconds", "cache_expiration", "result_storage", "refresh_cache"}
    found = []
    for path in sorted((ROOT / "flows").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "with_options"
                    and per_run & {k.arg for k in node.keywords}):
                found.append(f"{path.name}:{node.lineno}")
    assert found == [], f"task options applied outside flows/runtime.py's with_run_options: {found}"
    source = (ROOT / "flows" / "runtime.py").read_text(encoding="utf-8")
    assert "task.with_options(**options)" in source
