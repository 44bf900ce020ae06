"""What a run shows in the Prefect UI: the storyboard as a table, render progress, the finished files.

Keys are ``<workflow id>-storyboard``, ``<workflow id>-progress`` and ``<workflow id>-video`` in
lowercase letters, digits and dashes, so the UI keeps one history per page. Publishing never fails
a run: a refused artifact costs one warning.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

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


def storyboard_markdown(storyboard: Storyboard) -> str:
    """The storyboard for a browser: a short table to scan, then every scene's full narration and picture."""
    rows = "\n".join(f"| {i} | `{s.id}` | {s.kind} | {s.hint_s:.1f} | {_cell(s.caption)} |"
                     for i, s in enumerate(storyboard.scenes, start=1))
    choices = ", ".join(f"{k} {v}" for k, v in (("voice", storyboard.voice), ("theme", storyboard.theme),
                                                ("aspect", storyboard.aspect), ("presenter", storyboard.avatar)) if v)
    parts = [f"# {storyboard.title}\n", f"Source: {storyboard.source_url}\n" if storyboard.source_url else "",
             f"{len(storyboard.scenes)} scenes, about {storyboard.duration_hint_s:.0f} s"
             + (f"; {choices}" if choices else "") + "\n",
             "| # | scene | kind | seconds | caption |\n|---|---|---|---|---|", rows, ""]
    for i, s in enumerate(storyboard.scenes, start=1):
        parts.append(f"### {i}. `{s.id}`: {s.caption or '(no caption)'}\n\n{s.narration}\n")
        if s.image:
            parts.append(f"Picture: [{_cell(Path(s.image).name or s.image)}]({s.image})\n")
    return "\n".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def publish_storyboard(workflow_id: str, storyboard: Storyboard) -> None:
    from prefect.artifacts import create_markdown_artifact

    publish_or_warn("storyboard", lambda: create_markdown_artifact(
        storyboard_markdown(storyboard), key=artifact_key(workflow_id, "storyboard"),
        description=f"Storyboard of **{storyboard.title}**: {len(storyboard.scenes)} scenes, about "
                    f"{storyboard.duration_hint_s:.0f} s."))


def review_changes(before: Storyboard, after: Storyboard) -> list[str]:
    """What a review changed, one line each, in words a reviewer reads."""
    lines = [f"{k}: {getattr(before, k) or 'default'} -> {getattr(after, k) or 'default'}"
             for k in ("title", "voice", "theme", "aspect", "avatar") if getattr(before, k) != getattr(after, k)]
    old = {s.id: s for s in before.scenes}
    new_ids = [s.id for s in after.scenes]
    lines += [f"scene `{i}` dropped" for i in old if i not in new_ids]
    for s in after.scenes:
        was = old.get(s.id)
        if was is None:
            lines.append(f"scene `{s.id}` added: {s.narration}")
            continue
        lines += [f"scene `{s.id}` {k}: ~~{getattr(was, k) or '(none)'}~~ -> {getattr(s, k) or '(none)'}"
                  for k in ("narration", "caption", "image") if getattr(was, k) != getattr(s, k)]
    if [i for i in new_ids if i in old] != [i for i in old if i in new_ids]:
        lines.append(f"order: {', '.join(new_ids)}")
    return lines


def publish_review(workflow_id: str, before: Storyboard, after: Storyboard, note: str = "") -> None:
    """The review's outcome: what changed (only those scenes are rendered again), and the reviewer's note."""
    from prefect.artifacts import create_markdown_artifact

    changes = review_changes(before, after)
    listed = "\n".join(f"- {line}" for line in changes) or "No changes: approved as it was."
    markdown = f"# Review of {after.title}\n\nApproved.{f' Note: {note}' if note else ''}\n\n{listed}\n"
    publish_or_warn("review", lambda: create_markdown_artifact(
        markdown, key=artifact_key(workflow_id, "review"),
        description=f"Review: {len(changes)} change(s) to the storyboard"))


class ProgressReporter:
    """A progress artifact at 0 %, moved on as scenes are rendered; :meth:`failed` says when and why it stopped.

    Each move is a call to the API: they come at most every :attr:`EVERY_S` seconds, and the last
    scene's always. A run whose scenes come from the cache at once makes one move, to 100 %.
    """

    EVERY_S = 1.0

    def __init__(self, workflow_id: str, scenes: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self.scenes, self.done = scenes, 0
        self._moved = time.monotonic()
        self.artifact_id = publish_or_warn("progress", lambda: create_progress_artifact(
            0.0, key=artifact_key(workflow_id, "progress"), description=f"Scenes rendered (of {scenes})"))

    def _update(self, percent: float, description: str) -> None:
        from prefect.artifacts import update_progress_artifact

        if self.artifact_id is not None:
            publish_or_warn("progress", lambda: update_progress_artifact(self.artifact_id, percent,
                                                                         description=description))

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != "render":
            return
        self.done = done
        if done < total and time.monotonic() - self._moved < self.EVERY_S:
            return
        self._moved = time.monotonic()
        self._update(round(100.0 * done / max(1, total), 1), f"{done} of {total} scenes rendered")

    def failed(self, error: BaseException) -> None:
        """Say on the artifact that the run failed, after how many scenes, and why."""
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        self._update(round(100.0 * self.done / max(1, self.scenes), 1),
                     f"**Failed** after {self.done} of {self.scenes} scenes rendered: {reason}")


def progress_reporter(workflow_id: str, scenes: int) -> ProgressReporter:
    """A progress artifact at 0 %, and the listener that moves it on as each scene is rendered."""
    return ProgressReporter(workflow_id, scenes)


def publish_video(state: WorkflowState, files: dict[str, str | None], base_url: str | None = None) -> None:
    """The finished files as links a browser opens, the thumbnail, and the run's figures, in one markdown artifact.

    ``base_url`` is where the run folders are served (``out_url``): links and the thumbnail use it. Without
    it, files in an object store link to their URL and local files are listed by path (a ``file://`` link
    names the worker's disk, which a browser elsewhere cannot open).
    """
    from prefect.artifacts import create_markdown_artifact

    links = "\n".join(f"- **{name}**: {_link(state.workflow_id, p, base_url)}" for name, p in files.items() if p)
    thumb = files.get("thumbnail")
    picture = (_href(state.workflow_id, thumb, base_url) or _inline_picture(thumb)) if thumb else None
    m = state.metrics
    markdown = (
        f"# {state.title or state.workflow_id}\n\n"
        + (f"[![thumbnail]({picture})]({_href(state.workflow_id, files.get('video'), base_url) or picture})\n\n"
           if picture else "")
        + f"Source: {state.source_url}\n\n{links}\n\n"
        f"| duration | scenes | wall s | cache hits | cache misses |\n|---|---|---|---|---|\n"
        f"| {state.duration_s or 0:.1f} s | {len(state.scenes)} | {m.wall_seconds:.1f} | {m.cache_hits} "
        f"| {m.cache_misses} |\n"
    )
    publish_or_warn("video", lambda: create_markdown_artifact(
        markdown, key=artifact_key(state.workflow_id, "video"), description=f"Video of {state.workflow_id}"))


def _href(workflow_id: str, where: str | None, base_url: str | None) -> str | None:
    """A URL a browser opens for a run's file: under ``base_url``, or the object store's own URL; None if neither."""
    if not where:
        return None
    if base_url:
        return f"{base_url.rstrip('/')}/{quote(workflow_id)}/{quote(Path(where).name)}"
    return where if where.startswith(("http://", "https://")) else None


def _inline_picture(path: str, width: int = 320) -> str | None:
    """A small JPEG of a local picture as a data URL, so the UI shows it with no server; None if not local."""
    from PIL import Image

    try:
        with Image.open(path) as picture:
            picture.thumbnail((width, width))
            buffer = io.BytesIO()
            picture.convert("RGB").save(buffer, "JPEG", quality=80)
    except (OSError, ValueError):
        return None  # in an object store, or unreadable: the links below still say where it is
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _link(workflow_id: str, where: str, base_url: str | None) -> str:
    href = _href(workflow_id, where, base_url)
    name = Path(where).name
    return f"[{name}]({href}) `{where}`" if href else f"{name} `{where}` (set out_url to link it)"
