"""The Prefect face of each stage: task objects with their cache policies and retry rules.

The stages themselves are plain functions in their own modules; this module only says how
Prefect runs them. Flows pick per-run options (retry counts, TTLs, storage) with
``task.with_options``.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS
from prefect.tasks import exponential_backoff

from tasks.cachekeys import StageCode
from tasks.edits import apply_edits
from tasks.errors import PagereelError
from tasks.extract import extract_article
from tasks.fetch import fetch_page
from tasks.local_cache import LocalFileContent
from tasks.writers import write_storyboard


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry timeouts, 5xx and dropped connections; never a 4xx, a bad page or bad input."""
    try:
        state.result()
    except PagereelError as exc:
        return exc.transient
    except (ConnectionError, TimeoutError):
        return True
    except Exception:  # noqa: BLE001 - anything else is a bug or bad input: retrying will not help
        return False
    return False


#: Every stage's result is persisted as JSON (never pickle), so it can be cached, shipped and checked.
PERSIST: dict[str, Any] = {"persist_result": True, "result_serializer": "json"}

#: A stage that fetches from the network: three retries of a transient error, 1, 2 then 4 s apart, with jitter.
#: A run's own count and first delay come from its settings (``flows.runtime.with_run_options``).
FETCH_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(1),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
}

fetch_page_task = task(
    fetch_page,
    name="fetch_page",
    task_run_name="fetch {url}",
    # A local page is also keyed on its bytes, so an edit on disk is seen by the next run.
    cache_policy=INPUTS + StageCode() + LocalFileContent(),
    **FETCH_RETRIES,
    **PERSIST,
)

extract_article_task = task(
    extract_article,
    name="extract_article",
    cache_policy=INPUTS + StageCode(),
    **PERSIST,
)

# The writer is chosen by `options.writer`, so the name is part of the inputs the key hashes.
suggest_storyboard_task = task(
    write_storyboard,
    name="suggest_storyboard",
    cache_policy=INPUTS + StageCode(),
    **PERSIST,
)

apply_edits_task = task(
    apply_edits,
    name="apply_edits",
    cache_policy=INPUTS + StageCode(),
    **PERSIST,
)


def render_stage_tasks() -> dict[str, Any]:
    """Tasks of the rendering half (``tasks.render_stages``); imported lazily so a dry run never loads the encoder."""
    from tasks import render_stages

    return {
        "picture": render_stages.fetch_picture_task,
        "narrate": render_stages.narrate_scene_task,
        "render": render_stages.render_scene_task,
        "assemble": render_stages.assemble_video_task,
    }
