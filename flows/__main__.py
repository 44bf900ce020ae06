"""``python -m flows``: which backends are live, and clearing the result cache.

    python -m flows status [--json] [--config FILE]
    python -m flows cache clear [--url URL] [--config FILE]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.settings import Settings, load_settings
from tasks.errors import PagereelError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="pagereel backends and result cache.")
cache_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The result cache.")
app.add_typer(cache_app, name="cache")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="Settings file (default ./pagereel.toml).")]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except PagereelError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show which backends are installed and live, and what runs instead of the others."""
    from flows.status import get_status, print_status

    report = get_status(_settings(config))
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        print_status(report)


@cache_app.command("clear")
def clear(
    url: Annotated[str | None, typer.Option("--url", help="Only results derived from this page.")] = None,
    config: ConfigOption = None,
) -> None:
    """Delete cached results: all of them, or those of one URL (its page is fetched again next run)."""
    from flows.cache import clear_cache

    settings = _settings(config)
    try:
        removed = clear_cache(settings, url)
    except PagereelError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"could not clear the cache: {exc}")
    typer.echo(f"removed {removed} cached result{'s' if removed != 1 else ''}" + (f" for {url}" if url else ""))


def _fail(message: str) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code=1)


if __name__ == "__main__":
    app(prog_name="python -m flows")
