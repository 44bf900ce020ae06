"""The Prefect face of the rendering half: picture, narrate, render and assemble tasks.

Kept apart from ``tasks.stages`` so a dry run never imports the encoder: ``flows.video_flow``
imports this module only when it renders. The tasks are defined once, at module level, so a
task shipped to a process pool, a Dask or a Ray worker is pickled by reference to this module.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE

from tasks.assemble import assemble_video
from tasks.cachekeys import DigestedInputs, NarrationEngine, StageCode
from tasks.images import fetch_picture_or_none
from tasks.local_cache import LocalFileContent
from tasks.narrate import narrate_scene
from tasks.render import render_scene_kept
from tasks.stages import FETCH_RETRIES, PERSIST, retry_if_transient

fetch_picture_task = task(
    fetch_picture_or_none,
    name="fetch_picture",
    task_run_name="picture {url}",
    # A local picture is also keyed on its bytes, so an edit on disk is seen by the next run.
    cache_policy=INPUTS + StageCode() + LocalFileContent(),
    **FETCH_RETRIES,
    **PERSIST,
)

narrate_scene_task = task(
    narrate_scene,
    name="narrate_scene",
    task_run_name="narrate {scene.id}",
    cache_policy=INPUTS + StageCode() + NarrationEngine(),
    **PERSIST,
)

render_scene_task = task(
    render_scene_kept,
    name="render_scene",
    task_run_name="render {scene.id}",
    # The narration's PCM and the pictures are keyed by their digests, not dumped to JSON and hashed.
    cache_policy=DigestedInputs() + StageCode(),
    retries=1,
    retry_condition_fn=retry_if_transient,
    **PERSIST,
)

# Writes files and takes every segment: never cached, and its inputs are never hashed.
assemble_video_task = task(assemble_video, name="assemble_video", task_run_name="assemble {storyboard.title}",
                           cache_policy=NO_CACHE)
