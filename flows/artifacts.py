"""What a run shows in the Prefect UI: the storyboard as a table, render progress, the finished files.

Keys are ``<workflow id>-storyboard``, ``<workflow id>-progress`` and ``<workflow id>-video`` in
lowercase letters, digits and dashes, so the UI keeps one history per page. Publishing never fails
a run: a refused artifact costs one warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.models import Storyboard, WorkflowState

log = logging.getLogger("pagereel.artifacts")
_NOT_KEY = re.compile(r"[^a-z0-9-]+")


def artifact_key(workflow_id: str, kind: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) for ``kind`` of ``workflow_id``."""
    stem = _NOT_KEY.sub("-", workflow_id.lower()).strip("-")
    stem = re.sub(r"-{2,}", "-", stem)[:80].strip("-") or "run"
    return f"{stem}-{kind}"


def publish_or_warn(what: str, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - the UI is a window on the run, never a reason to fail it
        log.warning("could not publish the %s artifact: %s", what, exc)
        return None


def publish_storyboard(workflow_id: str, storyboard: Storyboard) -> None:
    from prefect.artifacts import create_table_artifact

    rows = [
        {"scene": s.id, "seconds": round(s.hint_s, 1), "caption": s.caption, "narration": s.narration,
         "image": s.image or ""}
        for s in storyboard.scenes
    ]
    publish_or_warn("storyboard", lambda: create_table_artifact(
        rows, key=artifact_key(workflow_id, "storyboard"),
        description=f"Storyboard of **{storyboard.title}**: {len(rows)} scenes, about "
                    f"{storyboard.duration_hint_s:.0f} s."))


def progress_reporter(workflow_id: str, scenes: int) -> Callable[[str, int, int], None]:
    """A progress artifact at 0 %, and the listener that moves it on as each scene is rendered."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    artifact_id = publish_or_warn("progress", lambda: create_progress_artifact(
        0.0, key=artifact_key(workflow_id, "progress"), description=f"Scenes rendered (of {scenes})"))

    def report(stage: str, done: int, total: int) -> None:
        if stage == "render" and artifact_id is not None:
            publish_or_warn("progress", lambda: update_progress_artifact(
                artifact_id, round(100.0 * done / max(1, total), 1),
                description=f"{done} of {total} scenes rendered"))

    return report


def publish_video(state: WorkflowState, files: dict[str, str | None]) -> None:
    """The finished files as links, and the run's figures, in one markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    links = "\n".join(f"- **{name}**: [{Path(p).name}]({Path(p).resolve().as_uri()}) `{p}`"
                      for name, p in files.items() if p)
    m = state.metrics
    markdown = (
        f"# {state.title or state.workflow_id}\n\n"
        f"Source: {state.source_url}\n\n{links}\n\n"
        f"| duration | scenes | wall s | cache hits | cache misses |\n|---|---|---|---|---|\n"
        f"| {state.duration_s or 0:.1f} s | {len(state.scenes)} | {m.wall_seconds:.1f} | {m.cache_hits} "
        f"| {m.cache_misses} |\n"
    )
    publish_or_warn("video", lambda: create_markdown_artifact(
        markdown, key=artifact_key(state.workflow_id, "video"), description=f"Video of {state.workflow_id}"))
