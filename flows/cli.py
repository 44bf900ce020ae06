"""The ``pagereel`` command: one Typer app of the module commands users already know.

    pagereel video URL [options]      same as python -m flows.video_flow URL [options]
    pagereel batch URL... | --file F  same as python -m flows.batch_flow
    pagereel tune --trials N          same as python -m flows.tune_flow
    pagereel status [--json]          same as python -m flows status
    pagereel cache clear [--url URL]  same as python -m flows cache clear
    pagereel review RUN_ID --approve | --edits FILE | --reject   answer a run waiting for review

Each subcommand is the very function its module command runs, so the two stay one. Only the
module of the command asked for is imported: a ``pagereel status`` never loads Prefect's flows,
and a ``pagereel video`` never loads Optuna.
"""

from __future__ import annotations

import importlib
import sys

import typer

#: Subcommand -> (module, function) it runs; ``cache`` is a group of its own (see :func:`build_app`).
COMMANDS: dict[str, tuple[str, str]] = {
    "video": ("flows.video_flow", "main"),
    "batch": ("flows.batch_flow", "main"),
    "tune": ("flows.tune_flow", "main"),
    "status": ("flows.__main__", "status"),
    "review": ("flows.review", "review_command"),
}
_HELP = {
    "video": "Turn a web page into a narrated video.",
    "batch": "Turn many web pages into narrated videos.",
    "tune": "Tune the encoder and write a render profile.",
    "status": "Show which backends are installed and live.",
    "review": "Answer a run that waits for a review of its storyboard.",
}


def build_app(names: list[str]) -> typer.Typer:
    """The ``pagereel`` app with the subcommands ``names`` (``"cache"`` included, when named)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True, help="pagereel: a web page in, a narrated video out.")

    @app.callback()
    def _group() -> None:
        # A callback keeps subcommand names even when one command is registered.
        """pagereel: a web page in, a narrated video out."""

    for name in names:
        if name in COMMANDS:
            module, function = COMMANDS[name]
            app.command(name, help=_HELP[name])(getattr(importlib.import_module(module), function))
        elif name == "cache":
            app.add_typer(importlib.import_module("flows.__main__").cache_app, name="cache")
    return app


def main() -> None:
    """Entry point of the ``pagereel`` console script: the process ends when the command does (flows.command)."""
    from flows.command import run_then_exit

    asked = sys.argv[1] if len(sys.argv) > 1 else None
    names = [asked] if asked in (*COMMANDS, "cache") else [*COMMANDS, "cache"]
    app = build_app(names)
    run_then_exit(lambda: app(prog_name="pagereel"))


if __name__ == "__main__":
    main()
