"""Readable terminal output (on stderr, so stdout stays clean for --json)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from tasks.models import WorkflowState


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
    for scene in board.scenes:
        image = scene.image.rsplit("/", 1)[-1].split("?", 1)[0] if scene.image else ""
        table.add_row(scene.id, f"{scene.hint_s:.1f}", scene.caption, scene.narration, image)
    console.print(table)
    console.print(
        f"{len(board.scenes)} scenes, about {board.duration_hint_s:.0f} s. "
        f"Storyboard: {state.storyboard_path or '-'}"
    )
    if state.video_path:
        console.print(f"Video: {state.video_path}")
