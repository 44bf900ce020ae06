"""The main flow: URL → page → article → storyboard (→ narrated video), and its command line."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from prefect import flow

from flows.runtime import RunRecorder, result_storage
from flows.settings import Settings, load_settings
from tasks.edits import load_edits_file, parse_edits
from tasks.errors import PagereelError
from tasks.files import atomic_write, run_dir, sanitize_workflow_id, workflow_id_for
from tasks.models import Storyboard, WorkflowState
from tasks.stages import apply_edits_task, extract_article_task, fetch_page_task, suggest_storyboard_task


def _configured_tasks(settings: Settings) -> dict[str, Any]:
    """The stage tasks with this run's retry, expiry and storage options applied."""
    storage = result_storage(settings)
    cache = {"result_storage": storage} if storage is not None else {}
    refresh = {} if settings.cache.enabled else {"refresh_cache": True}
    retries = settings.fetch.retries
    delays = [settings.fetch.retry_base_s * 2**i for i in range(retries)] or 0
    return {
        "fetch": fetch_page_task.with_options(
            retries=retries,
            retry_delay_seconds=delays,
            cache_expiration=timedelta(seconds=settings.fetch.cache_ttl_s),
            **cache,
            **refresh,
        ),
        "extract": extract_article_task.with_options(**cache, **refresh),
        "suggest": suggest_storyboard_task.with_options(**cache, **refresh),
        "edits": apply_edits_task.with_options(**cache, **refresh),
    }


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    return f"video {params.get('workflow_id') or workflow_id_for(params.get('url', ''))}"


@flow(name="video-flow", flow_run_name=_run_name, validate_parameters=True)
def video_flow(
    url: str,
    workflow_id: str | None = None,
    avatar: str | None = None,
    user_edits: dict[str, Any] | str | None = None,
    dry_run: bool = False,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> WorkflowState:
    """Turn the page at ``url`` into a storyboard and, unless ``dry_run``, a narrated video."""
    settings = load_settings(config_file, **(overrides or {}))
    workflow_id = sanitize_workflow_id(workflow_id) if workflow_id else workflow_id_for(url)
    edits = parse_edits(user_edits)
    if avatar:
        edits = edits.model_copy(update={"avatar": avatar})
    tasks = _configured_tasks(settings)
    recorder = RunRecorder()
    state = WorkflowState(workflow_id=workflow_id, status="running", source_url=url, started_at=datetime.now(UTC))

    page = recorder.run("fetch", tasks["fetch"], url, settings.fetch)
    article = recorder.run("extract", tasks["extract"], page.html, page.final_url,
                           min_words=settings.storyboard.min_article_words)
    draft = recorder.run("suggest", tasks["suggest"], article, settings.storyboard)
    storyboard: Storyboard = recorder.run("edits", tasks["edits"], draft, edits,
                                          words_per_minute=settings.storyboard.words_per_minute)

    folder = run_dir(settings.out_dir, workflow_id)
    storyboard_path = atomic_write(folder / "storyboard.json", storyboard.model_dump_json(indent=2))
    state = state.model_copy(
        update={
            "title": storyboard.title,
            "storyboard": storyboard,
            "storyboard_path": str(storyboard_path),
            "duration_s": round(storyboard.duration_hint_s, 2),
        }
    )
    if not dry_run:
        raise PagereelError("rendering is not available in this version yet; run with --dry-run for the storyboard")
    return state.model_copy(
        update={
            "status": "storyboard",
            "metrics": recorder.finish(),
            "optimizations_used": recorder.optimizations(settings),
            "finished_at": datetime.now(UTC),
        }
    )


# --------------------------------------------------------------------------- command line

app = typer.Typer(add_completion=False, help="Turn a web page into a narrated video.")


@app.command()
def main(
    url: Annotated[str, typer.Argument(help="Page to turn into a video: http(s) URL, file:// URL or local path.")],
    workflow_id: Annotated[str | None, typer.Option("--workflow-id", help="Name of the output folder.")] = None,
    avatar: Annotated[str | None, typer.Option(help="Presenter: a built-in name or a PNG file.")] = None,
    edits: Annotated[Path | None, typer.Option(help="Storyboard edits, JSON or YAML.")] = None,
    runner: Annotated[str | None, typer.Option(help="thread, process, dask or ray.")] = None,
    aspect: Annotated[str | None, typer.Option(help="16:9, 9:16 or 1:1.")] = None,
    duration: Annotated[float | None, typer.Option(help="Target length in seconds.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default out/).")] = None,
    config: Annotated[Path | None, typer.Option(help="Settings file (default ./pagereel.toml).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Stop after the storyboard.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the WorkflowState as JSON on stdout.")] = False,
) -> None:
    """Run the video flow on URL."""
    overrides: dict[str, Any] = {}
    if runner:
        overrides["runner"] = {"kind": runner}
    if aspect:
        overrides["render"] = {"aspect": aspect}
    if duration is not None:
        overrides["storyboard"] = {"target_duration_s": duration}
    if out is not None:
        overrides["out_dir"] = str(out)
    try:
        load_settings(config, **overrides)  # fail fast, before any server starts
        user_edits = load_edits_file(edits).model_dump(exclude_unset=True) if edits else None
        state = video_flow(
            url,
            workflow_id=workflow_id,
            avatar=avatar,
            user_edits=user_edits,
            dry_run=dry_run,
            config_file=str(config) if config else None,
            overrides=overrides or None,
        )
    except PagereelError as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(state.model_dump_json(indent=2) + "\n")
    else:
        from flows.display import print_storyboard

        print_storyboard(state)


def _fail(message: str) -> None:
    first_line = " ".join(message.split())
    typer.echo(f"error: {first_line}", err=True)
    raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
