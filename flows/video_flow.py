"""The main flow: URL → page → article → storyboard (→ narrated video), and its command line."""

from __future__ import annotations

import hashlib
import inspect
import logging
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from prefect import flow

from flows.artifacts import progress_reporter, publish_storyboard, publish_video
from flows.cache import remember_keys
from flows.display import print_storyboard, scene_progress
from flows.memory import release_free_memory, tune_allocator
from flows.metrics import run_metrics
from flows.outputs import MANIFEST, RunFolder, check_out_dir, file_digests
from flows.profiles import apply_profile
from flows.runners import default_workers, make_task_runner, prefect_api_for_workers
from flows.runtime import RunRecorder, check_prefect_home, foreground_run, unexpected_failure, with_run_options
from flows.settings import (
    Settings,
    deployment_run,
    handed_down,
    handing_down,
    load_settings,
    refuse_guarded_parameters,
    require_inside_run_folder,
)
from flows.stopping import stop_on_sigterm
from tasks.avatar import BUILTIN_AVATARS, check_avatar, read_avatar_png
from tasks.edits import load_edits_file, parse_edits
from tasks.errors import ConfigurationError, PagereelError
from tasks.fetch import check_local_page
from tasks.files import atomic_write, sanitize_workflow_id, workflow_id_for
from tasks.images import picture_source_folder, without_refused_pictures
from tasks.models import AssemblyRecord, RenderOptions, SpeechOptions, Storyboard, VideoResult, WorkflowState
from tasks.spool import Spool
from tasks.stages import (
    apply_edits_task,
    extract_article_task,
    fetch_page_task,
    render_stage_tasks,
    suggest_storyboard_task,
)
from tasks.timeline import OUTPUT_SAMPLE_RATE
from tasks.voices import resolve_voice, voice_for_language

log = logging.getLogger("pagereel.video_flow")


def configured_render_tasks(settings: Settings) -> dict[str, Any]:
    """The rendering tasks with this run's options applied (``flows.runtime.with_run_options``)."""
    tasks = render_stage_tasks()
    return {
        "picture": with_run_options(tasks["picture"], settings, fetches=True, in_memory=False),
        "narrate": with_run_options(tasks["narrate"], settings, locked=True, in_memory=False),
        "render": with_run_options(tasks["render"], settings, locked=True, in_memory=False),
        "assemble": tasks["assemble"],
    }


def _configured_tasks(settings: Settings) -> dict[str, Any]:
    """The storyboard half's tasks with this run's options applied (``flows.runtime.with_run_options``)."""
    return {
        "fetch": with_run_options(fetch_page_task, settings, fetches=True),
        "extract": with_run_options(extract_article_task, settings),
        "suggest": with_run_options(suggest_storyboard_task, settings),
        "edits": with_run_options(apply_edits_task, settings),
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
    profile: str | None = None,
    review: bool | None = None,
) -> WorkflowState:
    """Turn the page at ``url`` into a storyboard and, unless ``dry_run``, a narrated video.

    With ``review`` (default: the ``review.enabled`` setting) the run waits for the storyboard to be
    approved or edited in the Prefect UI or with ``pagereel review`` before rendering (flows/review.py).
    """
    if deployment_run():  # parameters from whoever may start a deployment, not from the machine's owner
        refuse_guarded_parameters(overrides, config_file)
        _check_presenter_is_builtin(avatar, user_edits)
        _check_local_page_is_the_deployments(url)
    overrides = _asked(overrides, profile, review)
    # A command hands down the settings it built and checked; a deployment or Python call builds them here.
    settings = handed_down(config_file, overrides) or apply_profile(load_settings(config_file, **(overrides or {})))
    recorder = RunRecorder()
    recorder.check_runner(settings.runner.kind)
    with run_metrics(settings, "video", recorder.runner) as outcome:
        state = _make_video(url, workflow_id, avatar, user_edits, dry_run, settings, recorder)
        outcome.outcome = state.status
    return state


def _asked(overrides: dict[str, Any] | None, profile: str | None, review: bool | None) -> dict[str, Any] | None:
    """The settings overrides a run asks for: ``overrides`` with ``profile`` and ``review`` folded in."""
    if profile:
        overrides = {**(overrides or {}), "profile": profile}
    if review is not None:
        overrides = {**(overrides or {}), "review": {**(overrides or {}).get("review", {}), "enabled": review}}
    return overrides


def _check_presenter_is_builtin(avatar: str | None, user_edits: dict[str, Any] | str | None) -> None:
    """A deployment run's presenter is a built-in one: a path would draw a file of the worker's machine."""
    for spec in (avatar, parse_edits(user_edits).avatar):
        if spec and spec.lower() not in BUILTIN_AVATARS:
            raise ConfigurationError(f"avatar {spec[:80]!r} is not a built-in presenter ({', '.join(BUILTIN_AVATARS)});"
                                     " a deployment run cannot read a picture file of the worker's machine")


def _check_local_page_is_the_deployments(url: str) -> None:
    """A deployment run reads a local page only inside the folder it runs in (the deployment's own checkout)."""
    from tasks.guarded_http import local_page_path

    path = local_page_path(url)
    if path is not None:
        require_inside_run_folder(path, "local pages")


def _make_video(url: str, workflow_id: str | None, avatar: str | None, user_edits: dict[str, Any] | str | None,
                dry_run: bool, settings: Settings, recorder: RunRecorder) -> WorkflowState:
    workflow_id = sanitize_workflow_id(workflow_id) if workflow_id else workflow_id_for(url)
    check_out_dir(settings.out_dir)  # a wrong --out fails before anything is fetched
    edits = parse_edits(user_edits)
    if avatar:
        edits = edits.model_copy(update={"avatar": avatar})
    tasks = _configured_tasks(settings)
    state = WorkflowState(workflow_id=workflow_id, status="running", source_url=url, started_at=datetime.now(UTC))

    page = recorder.run("fetch", tasks["fetch"], url, settings.fetch)
    article = recorder.run("extract", tasks["extract"], page.html, page.final_url,
                           min_words=settings.storyboard.min_article_words)
    draft = recorder.run("suggest", tasks["suggest"], article, settings.storyboard)
    storyboard: Storyboard = recorder.run("edits", tasks["edits"], draft, edits,
                                          words_per_minute=settings.storyboard.words_per_minute,
                                          max_scenes=settings.storyboard.max_scenes,
                                          max_duration_s=settings.storyboard.max_duration_s)
    storyboard = without_refused_pictures(storyboard, settings.fetch)
    if settings.review.enabled and not dry_run:
        from flows.review import await_review

        storyboard = without_refused_pictures(await_review(workflow_id, storyboard, settings), settings.fetch)

    outputs = RunFolder(settings.out_dir, workflow_id)
    try:
        state = _write_run(url, state, storyboard, dry_run, settings, recorder, outputs)
    finally:
        outputs.discard()  # a failed run commits nothing: the folder keeps the last finished run
    return state


def _write_run(url: str, state: WorkflowState, storyboard: Storyboard, dry_run: bool, settings: Settings,
               recorder: RunRecorder, outputs: RunFolder) -> WorkflowState:
    """Write the run's files into ``outputs``' staging folder and commit them together at the end."""
    workflow_id = state.workflow_id
    staged = atomic_write(outputs.staging / "storyboard.json", storyboard.model_dump_json(indent=2))
    recorder.wrote("storyboard", staged)
    publish_storyboard(workflow_id, storyboard)
    state = state.model_copy(
        update={
            "title": storyboard.title,
            "storyboard": storyboard,
            "storyboard_path": outputs.where("storyboard.json"),
            "duration_s": round(storyboard.duration_hint_s, 2),
        }
    )
    if dry_run:
        outputs.commit()
        remember_keys(settings, url, recorder.result_keys)
        return _finish(state, "storyboard", recorder, settings)

    recorder.on_progress = progress = progress_reporter(workflow_id, len(storyboard.scenes))
    try:
        video, assembly = render_storyboard(storyboard, settings, outputs, recorder)
    except BaseException as exc:
        progress.failed(exc)  # the UI says the run failed and why, not "Scenes rendered (of 4)"
        raise
    state = state.model_copy(
        update={
            "video_path": outputs.where("video.mp4"),
            "duration_s": video.duration_s,
            "scenes": video.scenes,
            "assembly": assembly,
        }
    )
    state = _finish(state, "completed", recorder, settings)
    manifest = atomic_write(outputs.staging / MANIFEST, state.model_dump_json(indent=2))
    recorder.wrote("manifest", manifest)
    outputs.commit()
    links = {"video": "video.mp4", "thumbnail": "thumbnail.png", "subtitles (SRT)": "video.srt",
             "subtitles (WebVTT)": "video.vtt", "manifest": MANIFEST}
    publish_video(state, {label: outputs.where(name) for label, name in links.items()}, settings.out_url)
    remember_keys(settings, url, recorder.result_keys)
    return state


def render_storyboard(storyboard: Storyboard, settings: Settings, outputs: RunFolder,
                      recorder: RunRecorder) -> tuple[VideoResult, AssemblyRecord]:
    """Narrate and render every scene on the task runner, then assemble the video in ``outputs``' staging folder."""
    from tasks.render import SceneContext  # the encoder is loaded when a run renders, never for a dry run

    tasks = configured_render_tasks(settings)
    shared = _scene_inputs(storyboard, settings)
    render = shared.render
    scenes = storyboard.scenes
    # Big buffers (segments, PCM and the copies written and read back) are handed back to the system when freed.
    tune_allocator()
    ahead = _scenes_ahead(settings)
    storage = tasks["render"].result_storage  # where narrate and render keep their results, and blobs
    blobs = _blobs_reachable(settings, storage)
    pending = _submit_pictures(storyboard, settings, tasks["picture"])

    def narrate(scene: Any) -> Any:
        return tasks["narrate"].submit(scene, voice=shared.voice, rate_wpm=render.speech_rate_wpm,
                                       sample_rate=OUTPUT_SAMPLE_RATE, loudness_lufs=render.loudness_lufs,
                                       peak_dbfs=render.peak_dbfs, speech=shared.speech, blobs=blobs)

    narrations = {i: narrate(scene) for i, scene in enumerate(scenes[:ahead])}
    # Pictures are settled first: one that cannot be had leaves its scene on a themed backdrop.
    pictures = _settle_pictures(pending, settings, tasks["picture"], recorder)

    def submit(i: int) -> Any:
        scene, before = scenes[i], scenes[i - 1] if i else None
        if i not in narrations:
            narrations[i] = narrate(scene)
        context = SceneContext(index=i, total=len(scenes), theme=render.theme,
                               previous_kind=before.kind if before else None, avatar=shared.avatar,
                               avatar_digest=shared.avatar_digest, avatar_png=shared.avatar_png)
        return tasks["render"].submit(scene, narrations[i], render, pictures.get(scene.image or ""),
                                      pictures.get(before.image or "") if before else None, context, blobs=blobs)

    segments = {i: submit(i) for i in range(min(ahead, len(scenes)))}
    # In order, each result goes to a spool file beside the outputs (stored bytes are copied a piece at a
    # time) and its future is let go: memory holds a few scenes' bytes, however long the video.
    with Spool(outputs.staging, storage) as spool:
        spooled_narrations, spooled_segments = [], []
        for i in range(len(scenes)):
            if i + ahead < len(scenes):
                segments[i + ahead] = submit(i + ahead)
            spooled_narrations.append(spool.add_narration(recorder.result("narrate", narrations.pop(i))))
            spooled_segments.append(spool.add_segment(recorder.result("render", segments.pop(i), done=i + 1,
                                                                      total=len(scenes))))
            release_free_memory()  # the scene's bytes are on disk now: give their pages back
        recorder.collected("narrate")
        recorder.collected("render")
        return _assemble(storyboard, spooled_segments, spooled_narrations, settings, outputs, recorder,
                         tasks["assemble"])


def _assemble(storyboard: Storyboard, segments: list[Any], narrations: list[Any], settings: Settings,
              outputs: RunFolder, recorder: RunRecorder, task: Any) -> tuple[VideoResult, AssemblyRecord]:
    """Assemble the video, or take over the folder's video when the run that made it had the very same inputs."""
    from tasks.assemble import ASSEMBLED_FILES, assembled_result, assembly_digest

    render = settings.render
    options = {"music": render.music, "loudness_lufs": render.loudness_lufs, "peak_dbfs": render.peak_dbfs}
    t0 = time.perf_counter()
    inputs = assembly_digest(storyboard, segments, narrations, **options)
    digests = outputs.take_over(inputs, ASSEMBLED_FILES) if settings.cache.enabled else None
    if digests is not None:
        log.info("video.mp4 is unchanged (the same segments, narrations, music and settings): not assembled again")
        recorder.reused("assemble", time.perf_counter() - t0)
        video = assembled_result(storyboard, segments, narrations, outputs.staging)
    else:
        video = recorder.run("assemble", task, storyboard, segments, narrations, outputs.staging, **options,
                             cached=False)
        recorder.wrote("assemble", video.video_path, video.srt_path, video.vtt_path, video.thumbnail_path)
        digests = file_digests(outputs.staging, ASSEMBLED_FILES)
    return video, AssemblyRecord(inputs=inputs, files=digests)


@dataclass(frozen=True)
class _SceneInputs:
    """What every scene's narration and render share: the options, the voice and the presenter."""

    render: RenderOptions
    voice: str
    speech: SpeechOptions | None
    avatar: str | None
    avatar_digest: str | None
    avatar_png: bytes | None


def _scene_inputs(storyboard: Storyboard, settings: Settings) -> _SceneInputs:
    """Everything a user can get wrong is checked here, before the first frame is drawn."""
    render = settings.render.model_copy(
        update={
            "aspect": storyboard.aspect or settings.render.aspect,
            "theme": storyboard.theme or settings.render.theme,
            "caption_style": storyboard.caption_style or settings.render.caption_style,
        }
    )
    avatar = check_avatar(storyboard.avatar)
    # The http engine's options go to the tasks without the key, which each reads from its environment.
    speech = settings.speech.model_copy(update={"api_key": None})
    chosen = storyboard.voice or render.voice
    voice = resolve_voice(chosen, speech) if chosen else voice_for_language(storyboard.lang, speech)
    if render.music and not Path(render.music).expanduser().is_file():
        raise ConfigurationError(f"music file {render.music!r} does not exist on host {socket.gethostname()!r} "
                                 "(where the flow runs and mixes the sound); check render.music")
    # A PNG presenter travels with each scene as bytes: workers may be machines without the file.
    png = read_avatar_png(avatar) if avatar and avatar not in BUILTIN_AVATARS else None
    return _SceneInputs(render=render, voice=voice, speech=speech if voice.startswith("http:") else None,
                        avatar=Path(avatar).name if png and avatar else avatar,
                        avatar_digest=hashlib.sha256(png).hexdigest() if png else None, avatar_png=png)


def _blobs_reachable(settings: Settings, storage: Any) -> bool:
    """Whether scenes keep their bytes in the result storage as blobs (:mod:`tasks.blobs`), not in their records.

    Yes when this process can read what a worker stores: results in Redis, or workers on this machine (a
    local runner, or a cluster started here). Workers elsewhere with a local result folder each write to
    their own disk, so their bytes travel in the records.
    """
    from flows.records import CheckedLocalFileSystem  # not the Redis one: that would import Redis for every run

    runner = settings.runner
    local = runner.kind in ("thread", "process") or not runner.address
    return storage is not None and (local or not isinstance(storage, CheckedLocalFileSystem))


def _scenes_ahead(settings: Settings) -> int:
    """How many scenes are submitted ahead of the one being collected.

    Not all at once: a finished narration or segment waits in memory until it is collected, and each one
    in flight holds its scene's bytes several times over (encoder output, the blob written, the copy read
    back). One more than the workers keeps a local worker busy while the next scene is collected; a
    cluster's workers get twice as many.
    """
    workers = settings.runner.max_workers or default_workers()
    return workers + 1 if settings.runner.kind in ("thread", "process") else max(4, 2 * workers)


@dataclass(frozen=True)
class _PendingPictures:
    folders: dict[str, str | None]
    local_urls: list[str]
    remote_urls: list[str]
    futures: list[Any]


def _submit_pictures(storyboard: Storyboard, settings: Settings, task: Any) -> _PendingPictures:
    """Submit the distinct remote pictures the settings allow; local ones wait to be read in this process."""
    scenes = storyboard.scenes
    urls = sorted({s.image for s in scenes if s.image and settings.fetch.picture_allowed(s.image,
                                                                                         storyboard.source_url)})
    folders = {url: picture_source_folder(url, storyboard.source_url) for url in urls}
    # Local pictures are read here, where the files are; the others wherever the runner puts the task.
    local_urls = [u for u in urls if _is_local(u)]
    remote_urls = [u for u in urls if not _is_local(u)]
    futures = [task.submit(url, settings.fetch, folder=folders[url]) for url in remote_urls]
    return _PendingPictures(folders, local_urls, remote_urls, futures)


def _settle_pictures(pending: _PendingPictures, settings: Settings, task: Any, recorder: RunRecorder) -> dict[str, Any]:
    """Every picture by its URL: local ones read now, remote ones collected (a failed one is None)."""
    pictures = {url: _local_picture(url, pending.folders[url], task, settings, recorder) for url in pending.local_urls}
    pictures.update(zip(pending.remote_urls, recorder.gather("picture", pending.futures, tolerate=True), strict=True))
    return pictures


def _is_local(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("file", "")


def _local_picture(url: str, folder: str | None, task: Any, settings: Settings, recorder: RunRecorder) -> Any:
    """Read a local picture in this process; one that cannot be read is left out with one warning."""
    try:
        return recorder.run("picture", task, url, settings.fetch, folder=folder)
    except PagereelError as exc:
        log.warning("picture %s is left out: %s", url, exc)
        return None


def _finish(state: WorkflowState, status: str, recorder: RunRecorder, settings: Settings) -> WorkflowState:
    return state.model_copy(
        update={
            "status": status,
            "metrics": recorder.finish(),
            "optimizations_used": recorder.optimizations(settings)
            + ([f"profile:{settings.profile}"] if settings.profile else []),
            "finished_at": datetime.now(UTC),
        }
    )


def run_video(url: str, *, settings: Settings | None = None, **params: Any) -> WorkflowState:
    """Run :func:`video_flow` on the task runner the settings ask for (threads if it is unavailable).

    ``params`` are the flow's own parameters by name (``workflow_id``, ``avatar``, ``user_edits``,
    ``dry_run``, ``config_file``, ``overrides``, ``profile``, ``review``): the flow's signature is their
    one definition, the one Prefect shows and prefect.yaml's deployments fill in. ``settings``, when
    given, are the ones built from ``config_file``, ``overrides``, ``profile`` and ``review`` (profile
    applied): the flow uses them instead of building them again.
    """
    asked = _FLOW_PARAMETERS.bind(url, **params)  # a name the flow does not take fails here, before anything runs
    asked.apply_defaults()
    given = asked.arguments
    overrides = _asked(given["overrides"], given["profile"], given["review"])
    settings = settings or apply_profile(load_settings(given["config_file"], **(overrides or {})))
    runner, _ = make_task_runner(settings.runner)
    with foreground_run(), prefect_api_for_workers(settings.runner), \
            handing_down(settings, given["config_file"], overrides):
        return video_flow.with_options(task_runner=runner)(**given)


_FLOW_PARAMETERS = inspect.signature(video_flow.fn)
# What help() and editors show: the flow's parameters (all but ``url`` by name) and ``settings``.
_url, *_named = _FLOW_PARAMETERS.parameters.values()
run_video.__signature__ = _FLOW_PARAMETERS.replace(parameters=[  # type: ignore[attr-defined]
    _url, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in _named),
    inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Settings | None")])


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
    resolution: Annotated[str | None, typer.Option(help="Short side of the frame: 720 (default) or 1080, "
                                                        "or a preset: 720p, 1080p.")] = None,
    caption_style: Annotated[str | None, typer.Option(
        "--caption-style", help="Subtitles: classic, karaoke or bold (default: bold for 9:16, else classic).")] = None,
    voice: Annotated[str | None, typer.Option(help="ENGINE:NAME (espeak:en-gb, piper:en_US-joe-medium); "
                                                   "a bare name is an espeak-ng voice.")] = None,
    duration: Annotated[float | None, typer.Option(help="Target length in seconds.")] = None,
    out: Annotated[str | None, typer.Option(help="Output folder (default out/) or object-store URL.")] = None,
    config: Annotated[Path | None, typer.Option(help="Settings file (default ./pagereel.toml).")] = None,
    profile: Annotated[str | None, typer.Option(help="Render profile written by tune_flow.")] = None,
    writer: Annotated[str | None, typer.Option(help="Script writer: extractive (default) or llm.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Stop after the storyboard.")] = False,
    review: Annotated[bool, typer.Option("--review", help="Wait for the storyboard to be approved or edited "
                                                          "(Prefect UI, or pagereel review RUN_ID) before rendering."
                                         )] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the WorkflowState as JSON on stdout.")] = False,
) -> None:
    """Run the video flow on URL."""
    overrides = _flag_overrides(runner, _render_flags(aspect, voice, caption_style, resolution), duration, writer,
                                out, profile)
    try:
        # Fail fast, before any server starts; the flow is handed these very settings.
        settings = apply_profile(load_settings(config, **(_asked(overrides, None, review or None) or {})))
        check_out_dir(settings.out_dir)
        check_local_page(url)
        check_prefect_home()
        user_edits = load_edits_file(edits).model_dump(exclude_unset=True) if edits else None
        with stop_on_sigterm(), scene_progress(enabled=not dry_run):
            state = run_video(url, settings=settings, workflow_id=workflow_id, avatar=avatar, user_edits=user_edits,
                              dry_run=dry_run, config_file=str(config) if config else None,
                              overrides=overrides or None, review=review or None)
    except PagereelError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - one line for the user; the traceback went to the log above
        _fail(unexpected_failure(exc))
    if as_json:
        sys.stdout.write(state.model_dump_json(indent=2) + "\n")
    else:
        print_storyboard(state)


def _flag_overrides(runner: str | None, render: dict[str, Any], duration: float | None, writer: str | None,
                    out: str | None, profile: str | None) -> dict[str, Any]:
    """The settings the command line's flags give, as overrides."""
    overrides: dict[str, Any] = {}
    if runner:
        overrides["runner"] = {"kind": runner}
    if render:
        overrides["render"] = render
    if duration is not None:
        overrides["storyboard"] = {"target_duration_s": duration}
    if writer:
        overrides["storyboard"] = {**overrides.get("storyboard", {}), "writer": writer}
    if out is not None:
        overrides["out_dir"] = out
    if profile:
        overrides["profile"] = profile
    return overrides


def _render_flags(aspect: str | None, voice: str | None, caption_style: str | None,
                  resolution: str | None) -> dict[str, Any]:
    """The render settings the command line's flags give (``--resolution 1080p`` is 1080)."""
    chosen = {"aspect": aspect, "voice": voice, "caption_style": caption_style,
              "resolution": resolution.lower().removesuffix("p") if resolution else None}
    return {k: v for k, v in chosen.items() if v}


def _fail(message: str) -> None:
    first_line = " ".join(message.split())
    typer.echo(f"error: {first_line}", err=True)
    raise typer.Exit(code=1)


if __name__ == "__main__":
    # Run the app of the importable module, not of ``__main__``: a flow or task defined here would be
    # pickled by value into every worker, together with whatever its globals reach.
    from flows.command import run_then_exit
    from flows.video_flow import app as _app

    run_then_exit(_app)
