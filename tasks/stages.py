"""The Prefect face of each stage: task objects with their cache policies and retry rules.

The stages themselves are plain functions in their own modules; this module only says how
Prefect runs them. Flows pick per-run options (retry counts, TTLs, storage) with
``task.with_options``.
"""

from __future__ import annotations

import functools
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE

from tasks.cachekeys import NarrationEngine, StageCode
from tasks.edits import apply_edits
from tasks.errors import PagereelError
from tasks.extract import extract_article
from tasks.fetch import fetch_page
from tasks.suggest import suggest_storyboard


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


_PERSIST = {"persist_result": True, "result_serializer": "json"}

fetch_page_task = task(
    fetch_page,
    name="fetch_page",
    task_run_name="fetch {url}",
    cache_policy=INPUTS + StageCode(),
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    **_PERSIST,
)

extract_article_task = task(
    extract_article,
    name="extract_article",
    cache_policy=INPUTS + StageCode(),
    **_PERSIST,
)

suggest_storyboard_task = task(
    suggest_storyboard,
    name="suggest_storyboard",
    cache_policy=INPUTS + StageCode(),
    **_PERSIST,
)

apply_edits_task = task(
    apply_edits,
    name="apply_edits",
    cache_policy=INPUTS + StageCode(),
    **_PERSIST,
)


def _render_stage_tasks() -> dict[str, Any]:
    """Tasks of the rendering half; imported lazily so a dry run never loads the encoder."""
    from tasks.assemble import assemble_video
    from tasks.images import fetch_picture_or_none
    from tasks.narrate import narrate_scene
    from tasks.render import render_scene

    return {
        "picture": task(
            fetch_picture_or_none,
            name="fetch_picture",
            task_run_name="picture {url}",
            cache_policy=INPUTS + StageCode(),
            retries=3,
            retry_delay_seconds=[1, 2, 4],
            retry_jitter_factor=0.5,
            retry_condition_fn=retry_if_transient,
            **_PERSIST,
        ),
        "narrate": task(
            narrate_scene,
            name="narrate_scene",
            task_run_name="narrate {scene.id}",
            cache_policy=INPUTS + StageCode() + NarrationEngine(),
            **_PERSIST,
        ),
        "render": task(
            render_scene,
            name="render_scene",
            task_run_name="render {scene.id}",
            cache_policy=INPUTS + StageCode(),
            retries=1,
            retry_condition_fn=retry_if_transient,
            **_PERSIST,
        ),
        # Writes files and takes every segment: never cached, and its inputs are never hashed.
        "assemble": task(assemble_video, name="assemble_video", task_run_name="assemble {storyboard.title}",
                         cache_policy=NO_CACHE),
    }


render_stage_tasks = functools.cache(_render_stage_tasks)
