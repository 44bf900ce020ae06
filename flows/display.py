"""Readable terminal output (on stderr, so stdout stays clean for --json)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.runtime import PROGRESS
from tasks.models import Scene, WorkflowState


def print_storyboard(state: WorkflowState, console: Console | None = None) -> None:
    """Print the storyboard of ``state`` as a table, and where it was written."""
    console = console or Console(stderr=True)
    board = state.storyboard
    if board is None:
        console.print(f"[bold]{state.workflow_id}[/]: {state.status}")
        return
    table = Table(title=board.title, show_lines=True, expand=True)
    table.add_column("scene", style="bold", no_wrap=True)
    table.add_column("secs", justify="right", no_wrap=True)
    table.add_column("caption", style="cyan", ratio=1)
    table.add_column("narration", ratio=3)
    table.add_column("image", ratio=1, overflow="fold")
    by_writer = any(scene.writer for scene in board.scenes)
    if by_writer:
        table.add_column("writer (sources)", ratio=1)
    for scene in board.scenes:
        image = scene.image.rsplit("/", 1)[-1].split("?", 1)[0] if scene.image else ""
        row = [scene.id, f"{scene.hint_s:.1f}", scene.caption, scene.narration, image]
        if by_writer:
            row.append(_writer_cell(scene))
        table.add_row(*row)
    console.print(table)
    console.print(
        f"{len(board.scenes)} scenes, about {board.duration_hint_s:.0f} s. "
        f"Storyboard: {state.storyboard_path or '-'}"
    )
    if state.video_path:
        console.print(f"Video: {state.video_path}")


def _writer_cell(scene: Scene) -> str:
    if not scene.writer:
        return ""
    cites = f" ({', '.join(map(str, scene.sources))})" if scene.sources else ""
    return f"{scene.writer}{cites}" + (f": {scene.repair}" if scene.repair else "")


@contextmanager
def scene_progress(enabled: bool = True) -> Iterator[None]:
    """Show a progress bar of rendered scenes on stderr while the block runs."""
    if not enabled:
        yield
        return
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(f"{stage} scenes", total=total)
        bar.update(tasks[stage], completed=done)

    PROGRESS.listener = update
    try:
        with bar:
            yield
    finally:
        PROGRESS.listener = None
