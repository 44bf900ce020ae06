"""Many URLs, each its own ``video_flow`` subflow run, a few at a time; one failure never stops the rest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from flows.metrics import run_metrics
from flows.outputs import check_out_dir
from flows.runtime import active_runner_name, check_prefect_home, foreground_run
from flows.settings import check_run_parameters, deployment_run, load_settings, require_inside_run_folder
from flows.stopping import stop_on_sigterm
from flows.video_flow import run_video
from tasks.errors import PagereelError
from tasks.files import workflow_id_for


class BatchItem(BaseModel):
    """One URL of a batch: what became of it."""

    url: str
    workflow_id: str
    status: str
    video_path: str | None = None
    duration_s: float | None = None
    error: str | None = None


class BatchResult(BaseModel):
    """Every URL of a batch, in the order given."""

    items: list[BatchItem] = Field(default_factory=list)

    @property
    def failed(self) -> list[BatchItem]:
        return [i for i in self.items if i.status == "failed"]


@task(name="video_for_url", task_run_name="video {url}", cache_policy=None, retries=0)
def video_for_url(url: str, workflow_id: str, options: dict[str, Any]) -> BatchItem:
    """Run the video flow for one URL and report its outcome instead of raising."""
    try:
        state = run_video(url, workflow_id=workflow_id, **options)
    except PagereelError as exc:
        return BatchItem(url=url, workflow_id=workflow_id, status="failed", error=" ".join(str(exc).split()))
    except Exception as exc:  # noqa: BLE001 - a bug in one URL's run must not end the batch
        return BatchItem(url=url, workflow_id=workflow_id, status="failed", error=f"{type(exc).__name__}: {exc}")
    return BatchItem(url=url, workflow_id=state.workflow_id, status=state.status, video_path=state.video_path,
                     duration_s=state.duration_s)


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    if params.get("url_file") and not params.get("urls"):
        return f"batch of {Path(str(params['url_file'])).name}"
    return f"batch of {len(params.get('urls') or [])}"


@flow(name="batch-flow", flow_run_name=_run_name, validate_parameters=True)
def batch_flow(
    urls: list[str] | None = None,
    concurrency: int = 2,
    dry_run: bool = False,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
    url_file: str | None = None,
    review: bool | None = None,
) -> BatchResult:
    """Turn every URL (given, and from ``url_file``) into a video, at most ``concurrency`` at once.

    ``review`` True: each URL's run waits for its storyboard to be reviewed (a subflow keeps its process
    while it waits); False: none does, whatever ``review.enabled`` says; None: the setting decides.
    """
    check_run_parameters(overrides, config_file)  # a deployment run may not switch the machine's guards off
    if url_file and deployment_run():
        require_inside_run_folder(url_file, "URL lists")  # its lines would come back in errors and artifacts
    settings = load_settings(config_file, **(overrides or {}))  # bad settings fail the batch once, not per URL
    check_out_dir(settings.out_dir)
    todo = list(urls or []) + (read_url_file(Path(url_file)) if url_file else [])
    if not todo:
        raise PagereelError("no URLs given; pass urls or a url_file with one URL a line")
    options = {"dry_run": dry_run, "config_file": config_file, "overrides": overrides, "review": review}
    with run_metrics(settings, "batch", active_runner_name()) as outcome:
        # A sliding window keeps the limit whatever task runner the flow was deployed with.
        window = max(1, concurrency)
        futures: list[Any] = []
        items: list[BatchItem] = []
        for url, workflow_id in zip(todo, _unique_ids(todo), strict=True):
            if len(futures) - len(items) >= window:
                items.append(futures[len(items)].result())
            futures.append(video_for_url.submit(url, workflow_id, options))
        items += [f.result() for f in futures[len(items):]]
        result = BatchResult(items=items)
        outcome.outcome = "failed" if result.failed else "completed"
    _publish_summary(result)
    return result


def _publish_summary(result: BatchResult) -> None:
    from prefect.artifacts import create_table_artifact

    from flows.artifacts import publish_or_warn

    rows = [item.model_dump(include={"url", "status", "video_path", "error"}) for item in result.items]
    publish_or_warn("batch", lambda: create_table_artifact(
        rows, key="batch-summary",
        description=f"{len(rows) - len(result.failed)} of {len(rows)} videos made"))


def run_batch(urls: list[str], concurrency: int = 2, **kwargs: Any) -> BatchResult:
    """Run :func:`batch_flow` with at most ``concurrency`` videos in progress at once."""
    runner = ThreadPoolTaskRunner(max_workers=max(1, concurrency))
    with foreground_run():
        return batch_flow.with_options(task_runner=runner)(urls, concurrency=concurrency, **kwargs)


def _unique_ids(urls: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for url in urls:
        base = workflow_id_for(url)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def read_url_file(path: Path) -> list[str]:
    """URLs from a file, one a line; blank lines and # comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PagereelError(f"cannot read the URL list {str(path)!r}: {exc.strerror or exc}") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


app = typer.Typer(add_completion=False, help="Turn many web pages into narrated videos.")


@app.command()
def main(
    urls: Annotated[list[str] | None, typer.Argument(help="Pages to turn into videos.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A file of URLs, one a line.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Videos made at once.")] = 2,
    config: Annotated[Path | None, typer.Option(help="Settings file (default ./pagereel.toml).")] = None,
    runner: Annotated[str | None, typer.Option(help="Where scenes run: thread, process, dask or ray.")] = None,
    out: Annotated[str | None, typer.Option(help="Output folder or object-store URL (s3://bucket/prefix).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Stop each run after its storyboard.")] = False,
    review: Annotated[bool | None, typer.Option("--review/--no-review", help="Wait for each storyboard to be "
                                                "reviewed (default: the review.enabled setting).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout.")] = False,
) -> None:
    """Run the video flow on every URL; exit 1 if any failed."""
    try:
        todo = list(urls or []) + (read_url_file(file) if file else [])
        if not todo:
            raise PagereelError("no URLs given; pass them as arguments or with --file urls.txt")
        overrides: dict[str, Any] = {}
        if runner:
            overrides["runner"] = {"kind": runner}
        if out is not None:
            overrides["out_dir"] = out
        check_out_dir(load_settings(config, **overrides).out_dir)  # before any server starts or page is fetched
        check_prefect_home()
        with stop_on_sigterm():
            result = run_batch(todo, concurrency=concurrency, dry_run=dry_run,
                               config_file=str(config) if config else None, overrides=overrides or None,
                               review=review)
    except PagereelError as exc:
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        _print_table(result)
    if result.failed:
        raise typer.Exit(code=1)


def _print_table(result: BatchResult) -> None:
    table = Table(title="pagereel batch", expand=True)
    for column in ("url", "status", "video", "error"):
        table.add_column(column, overflow="fold")
    for item in result.items:
        style = "red" if item.status == "failed" else "green"
        table.add_row(item.url, f"[{style}]{item.status}[/]", item.video_path or "", item.error or "")
    console = Console(stderr=True)
    console.print(table)
    console.print(f"{len(result.items) - len(result.failed)} of {len(result.items)} succeeded")


if __name__ == "__main__":
    # Run the app of the importable module, not of ``__main__``: a flow or task defined here would be
    # pickled by value into every worker, together with whatever its globals reach.
    from flows.batch_flow import app as _app
    from flows.command import run_then_exit

    run_then_exit(_app)
