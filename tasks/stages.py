"""The Prefect face of each stage: task objects with their cache policies and retry rules.

The stages themselves are plain functions in their own modules; this module only says how
Prefect runs them. Flows pick per-run options (retry counts, TTLs, storage) with
``task.with_options``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE, CachePolicy
from prefect.context import TaskRunContext

from tasks.edits import apply_edits
from tasks.errors import PagereelError
from tasks.extract import extract_article
from tasks.fetch import fetch_page
from tasks.local_cache import LocalFileContent
from tasks.suggest import suggest_storyboard


@functools.cache
def _module_digest(module_name: str) -> str:
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    source = Path(module.__file__ or "").read_bytes() if getattr(module, "__file__", None) else b""
    return hashlib.sha256(source).hexdigest()


@dataclass
class ModuleSource(CachePolicy):
    """Key on the source of the task's whole module (and any named helpers), not just its function.

    Prefect's TASK_SOURCE hashes one function; a stage's output also depends on the helpers and
    kernels it calls, so a change to any of them must invalidate its cached results.
    """

    also: tuple[str, ...] = field(default_factory=tuple)

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        modules = (task_ctx.task.fn.__module__, *self.also)
        return hashlib.sha256("".join(_module_digest(m) for m in modules).encode()).hexdigest()


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
    # A local page is also keyed on its bytes, so an edit on disk is seen by the next run.
    cache_policy=INPUTS + ModuleSource() + LocalFileContent(),
    retries=3,
    retry_delay_seconds=[1, 2, 4],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    **_PERSIST,
)

extract_article_task = task(
    extract_article,
    name="extract_article",
    cache_policy=INPUTS + ModuleSource(),
    **_PERSIST,
)

suggest_storyboard_task = task(
    suggest_storyboard,
    name="suggest_storyboard",
    cache_policy=INPUTS + ModuleSource(also=("kernels.textrank", "tasks.text")),
    **_PERSIST,
)

apply_edits_task = task(
    apply_edits,
    name="apply_edits",
    cache_policy=INPUTS + ModuleSource(also=("tasks.text",)),
    **_PERSIST,
)


def _render_stage_tasks() -> dict[str, Any]:
    """Tasks of the rendering half; imported lazily so a dry run never loads the encoder."""
    from tasks.assemble import assemble_video
    from tasks.images import fetch_picture_or_none
    from tasks.narrate import narrate_scene
    from tasks.render import render_scene

    render_helpers = ("kernels.compositing", "kernels.audio", "tasks.layout", "tasks.avatar", "tasks.timeline",
                      "tasks.images")
    return {
        "picture": task(
            fetch_picture_or_none,
            name="fetch_picture",
            task_run_name="picture {url}",
            cache_policy=INPUTS + ModuleSource(also=("tasks.fetch",)),
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
            cache_policy=INPUTS + ModuleSource(),
            **_PERSIST,
        ),
        "render": task(
            render_scene,
            name="render_scene",
            task_run_name="render {scene.id}",
            cache_policy=INPUTS + ModuleSource(also=render_helpers),
            retries=1,
            retry_condition_fn=retry_if_transient,
            **_PERSIST,
        ),
        # Writes files and takes every segment: never cached, and its inputs are never hashed.
        "assemble": task(assemble_video, name="assemble_video", task_run_name="assemble {storyboard.title}",
                         cache_policy=NO_CACHE),
    }


render_stage_tasks = functools.cache(_render_stage_tasks)
