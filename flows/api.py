"""The Python API of the original design: an engine with async ``execute_workflow`` and batches.

It is a thin layer over the flows: each call runs ``video_flow`` in a worker thread, so an
asyncio program stays responsive while a video renders.

    engine = create_workflow_engine({"render": {"aspect": "9:16"}})
    state = await engine.execute_workflow("https://example.com/story", "story")
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.settings import Settings, load_settings
from flows.video_flow import run_video
from tasks.errors import PagereelError
from tasks.models import WorkflowState


class WorkflowEngine:
    """Runs video workflows with one set of settings."""

    def __init__(self, overrides: dict[str, Any] | None = None, config_file: str | None = None,
                 max_concurrency: int = 2) -> None:
        self.settings: Settings = load_settings(config_file, **(overrides or {}))  # fail fast on bad config
        self._overrides = overrides
        self._config_file = config_file
        self._limit = asyncio.Semaphore(max(1, max_concurrency))

    async def execute_workflow(
        self,
        url: str,
        workflow_id: str | None = None,
        avatar: str | None = None,
        user_edits: dict[str, Any] | str | None = None,
        *,
        dry_run: bool = False,
    ) -> WorkflowState:
        """Make the video for ``url``; a failure comes back as a state with status "failed", not an exception."""
        async with self._limit:
            try:
                return await asyncio.to_thread(
                    run_video, url, workflow_id=workflow_id, avatar=avatar, user_edits=user_edits, dry_run=dry_run,
                    config_file=self._config_file, overrides=self._overrides,
                )
            except PagereelError as exc:
                return WorkflowState(workflow_id=workflow_id or "", status="failed", source_url=url,
                                     error=" ".join(str(exc).split()), finished_at=datetime.now(UTC))

    async def execute_batch_workflows(self, configs: list[Mapping[str, Any]]) -> list[WorkflowState]:
        """Run many workflows (each a mapping of execute_workflow's arguments), in the order given."""
        return list(await asyncio.gather(*(self.execute_workflow(**dict(c)) for c in configs)))

    def get_status(self) -> dict[str, Any]:
        """Which backends are installed and reachable (what ``python -m flows status`` prints)."""
        from flows.status import get_status

        return get_status(self.settings)


def create_workflow_engine(config: Mapping[str, Any] | str | Path | None = None, **kwargs: Any) -> WorkflowEngine:
    """An engine from a mapping of settings, a path to a ``pagereel.toml``, or the defaults."""
    if isinstance(config, str | Path):
        return WorkflowEngine(config_file=str(config), **kwargs)
    return WorkflowEngine(overrides=dict(config) if config else None, **kwargs)
