"""Tune the encoder (CRF, x264 preset, keyframe interval, threads) and write the result as a render profile.

    python -m flows.tune_flow [--trials N] [--name NAME] [--source PAGE] [--config FILE] [--json]

The reference clip is ``tuning.clip_seconds`` of a real scene (the first scene with a picture of
``--source``, by default the bundled sample article) at ``tuning.resolution``, rendered once
losslessly (x264 CRF 0, which keeps the 4:2:0 frames exactly). Each trial renders the same clip
through ``render_scene`` with its settings; the study minimises render seconds and bytes, and a
trial counts only if the mean SSIM of its luma against the lossless frames is at least
``tuning.min_ssim``.

Choosing from the Pareto front: among the trials that meet the floor, take the smallest bytes,
allow ``tuning.bytes_slack`` (10 %) above it, and pick the fastest of those. The study lives in
``tuning.storage`` (SQLite in the profiles folder by default; a PostgreSQL or MySQL URL, or
``redis://`` for an Optuna journal in Redis), so runs add to one study.
"""

from __future__ import annotations

import io
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import av
import numpy as np
import typer
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from flows.metrics import run_metrics
from flows.profiles import PROFILE_FIELDS, RenderProfile, profile_path, redacted, write_profile
from flows.runners import default_workers, make_task_runner, prefect_api_for_workers
from flows.runtime import active_runner_name, check_prefect_home
from flows.settings import Settings, check_run_parameters, load_settings
from flows.stopping import stop_on_sigterm
from kernels.quality import ssim
from tasks.errors import ConfigurationError, PagereelError
from tasks.images import Picture
from tasks.models import Narration, RenderOptions, Scene, WordTiming
from tasks.render import SceneContext

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT / "examples" / "article.html"
#: Presets slower than medium cost several times the time for a few per cent of bytes on these clips.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
KEYFRAME_INTERVALS = (15, 30, 60, 120, 250)


class ReferenceClip(BaseModel):
    """What every trial renders: one real scene, its narration cut to the clip length, its pictures."""

    model_config = ConfigDict(frozen=True)

    scene: Scene
    narration: Narration
    picture: Picture | None = None
    previous_picture: Picture | None = None
    context: SceneContext
    options: RenderOptions
    key: str  # source, scene, seconds and size: trials are comparable only within one key


class TrialResult(BaseModel):
    seconds: float
    mp4: bytes


# --------------------------------------------------------------------------- the clip


def reference_clip(source: str, settings: Settings) -> ReferenceClip:
    """The first scene with a picture on ``source`` (else the first body scene), cut to the clip length."""
    from tasks.extract import extract_article
    from tasks.fetch import fetch_page
    from tasks.images import fetch_picture_or_none, picture_source_folder
    from tasks.narrate import narrate_scene
    from tasks.suggest import suggest_storyboard
    from tasks.timeline import OUTPUT_SAMPLE_RATE
    from tasks.voices import resolve_voice, voice_for_language

    page = fetch_page(source, settings.fetch)
    article = extract_article(page.html, page.final_url, min_words=settings.storyboard.min_article_words)
    board = suggest_storyboard(article, settings.storyboard)
    scenes = board.scenes
    index = next((i for i, s in enumerate(scenes) if s.kind == "body" and s.image), None)
    if index is None:
        index = next((i for i, s in enumerate(scenes) if s.kind == "body"), 0)
    scene = scenes[index]
    before = scenes[index - 1] if index else None
    speech = settings.speech.model_copy(update={"api_key": None})
    chosen = settings.render.voice
    voice = resolve_voice(chosen, speech) if chosen else voice_for_language(board.lang, speech)
    spoken = narrate_scene(scene, voice=voice, rate_wpm=settings.render.speech_rate_wpm,
                           sample_rate=OUTPUT_SAMPLE_RATE, loudness_lufs=settings.render.loudness_lufs,
                           peak_dbfs=settings.render.peak_dbfs, speech=speech if voice.startswith("http:") else None)
    clip_s = settings.tuning.clip_seconds
    cut = int(clip_s * spoken.sample_rate) * 2
    narration = spoken.model_copy(update={
        "pcm": spoken.pcm[:cut],
        "words": [w if w.t1 <= clip_s else WordTiming(word=w.word, t0=min(w.t0, clip_s), t1=clip_s)
                  for w in spoken.words if w.t0 < clip_s],
    })

    def picture(url: str | None) -> Picture | None:
        if not url or not settings.fetch.picture_allowed(url, board.source_url):
            return None
        return fetch_picture_or_none(url, settings.fetch, folder=picture_source_folder(url, board.source_url))

    options = settings.render.model_copy(update={"resolution": settings.tuning.resolution, "width": None,
                                                 "height": None})
    context = SceneContext(index=index, total=len(scenes), theme=board.theme or options.theme,
                           previous_kind=before.kind if before else None)
    width, height = options.size
    key = f"{source}#{scene.id}@{clip_s:g}s:{width}x{height}@{options.fps}"
    return ReferenceClip(scene=scene, narration=narration, picture=picture(scene.image),
                         previous_picture=picture(before.image) if before else None, context=context,
                         options=options, key=key)


def _render(clip: ReferenceClip, options: RenderOptions) -> bytes:
    from tasks.render import render_scene

    return render_scene(clip.scene, clip.narration, options, clip.picture, clip.previous_picture, clip.context).mp4


def luma_frames(mp4: bytes) -> list[np.ndarray]:
    """The Y plane of every frame of an MP4 held in memory."""
    planes = []
    with av.open(io.BytesIO(mp4)) as container:
        for frame in container.decode(video=0):
            if frame.format.name != "yuv420p":
                frame = frame.reformat(format="yuv420p")
            planes.append(np.ascontiguousarray(frame.to_ndarray()[: frame.height]))
    return planes


def mean_ssim(reference: list[np.ndarray], mp4: bytes) -> float:
    """Mean SSIM over frames of the luma of ``mp4`` against the ``reference`` planes."""
    frames = luma_frames(mp4)
    if len(frames) != len(reference):
        raise PagereelError(f"a trial gave {len(frames)} frames where the reference has {len(reference)}")
    return float(np.mean([ssim(a, b) for a, b in zip(reference, frames, strict=True)]))


@task(name="encode_trial", task_run_name="trial {number}: crf {options.crf}, {options.preset}, "
      "keyint {options.keyframe_interval}, {options.threads} threads", cache_policy=NO_CACHE)
def encode_trial(number: int, clip: ReferenceClip, options: RenderOptions) -> TrialResult:
    """Render the reference clip with one trial's encoder settings, timed."""
    t0 = time.perf_counter()
    mp4 = _render(clip, options)
    return TrialResult(seconds=time.perf_counter() - t0, mp4=mp4)


# --------------------------------------------------------------------------- the study


def open_storage(settings: Settings) -> Any:
    """The Optuna storage ``tuning.storage`` names (SQLite in the profiles folder by default)."""
    import optuna

    url = settings.tuning.storage
    if not url:
        folder = Path(settings.tuning.profiles_dir).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'tuning.db'}"
    if url.startswith(("redis://", "rediss://")):
        from optuna.storages.journal import JournalRedisBackend, JournalStorage

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return JournalStorage(JournalRedisBackend(url))
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    return url


def _search_space(workers: int) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    return {
        "crf": IntDistribution(16, 32),
        "preset": CategoricalDistribution(PRESETS),
        "keyframe_interval": CategoricalDistribution(KEYFRAME_INTERVALS),
        "threads": CategoricalDistribution(tuple(range(0, max(1, workers) + 1))),
    }


def _study(settings: Settings, storage: Any) -> Any:
    import optuna

    # The floor reaches the sampler through each trial's constraint (Trial.set_constraint).
    sampler = optuna.samplers.TPESampler(seed=settings.tuning.seed)
    try:
        return optuna.create_study(study_name=settings.tuning.study_name, storage=storage, sampler=sampler,
                                   directions=["minimize", "minimize"], load_if_exists=True)
    except ValueError as exc:  # e.g. an existing study of the same name with other directions
        raise ConfigurationError(f"cannot use study {settings.tuning.study_name!r}: {exc}; "
                                 "set tuning.study_name to start a new one") from None


def choose(trials: list[Any], min_ssim: float, slack: float) -> Any:
    """The fastest trial that meets the floor and whose bytes are within ``slack`` of the smallest."""
    feasible = [t for t in trials if t.user_attrs.get("ssim", 0.0) >= min_ssim]
    if not feasible:
        best = max((t.user_attrs.get("ssim", 0.0) for t in trials), default=0.0)
        raise PagereelError(f"no trial reached SSIM {min_ssim} (best {best:.4f}); lower tuning.min_ssim or "
                            "run more trials")
    smallest = min(t.values[1] for t in feasible)
    return min((t for t in feasible if t.values[1] <= smallest * (1 + slack)), key=lambda t: t.values[0])


class TuneResult(BaseModel):
    profile: str
    profile_path: str
    render: dict[str, Any]
    trial: int
    ssim: float
    seconds: float
    bytes: int
    trials_run: int
    feasible: int


@flow(name="tune-flow", flow_run_name="tune {trials} trials", validate_parameters=True)
def tune_flow(
    trials: int | None = None,
    name: str | None = None,
    source: str | None = None,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> TuneResult:
    """Run ``trials`` encoder trials on the reference clip and write the chosen settings as a profile."""
    import optuna

    check_run_parameters(overrides, config_file)  # a deployment run may not move the study or the profiles
    settings = load_settings(config_file, **(overrides or {}))
    tuning = settings.tuning
    trials = trials or tuning.trials
    name = name or tuning.profile_name
    with run_metrics(settings, "tune", active_runner_name()) as outcome:
        clip = reference_clip(source or str(DEFAULT_SOURCE), settings)
        lossless = clip.options.model_copy(update={"crf": 0, "preset": "ultrafast", "keyframe_interval": None,
                                                   "threads": 0})
        reference = luma_frames(_render(clip, lossless))
        storage = open_storage(settings)
        study = _study(settings, storage)
        study.set_user_attr("min_ssim", tuning.min_ssim)
        space = _search_space(settings.runner.max_workers or default_workers())
        if not study.trials:
            # The current defaults are trial 0, so the profile is never worse than not tuning.
            defaults = RenderOptions()
            study.enqueue_trial({k: getattr(defaults, k) for k in PROFILE_FIELDS if k != "keyframe_interval"}
                                | {"keyframe_interval": 250})
        _run_trials(study, space, clip, reference, trials, tuning)
        complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                    if t.user_attrs.get("clip") == clip.key]
        chosen = choose(complete, tuning.min_ssim, tuning.bytes_slack)
        # The resolution tuned for goes with the settings: ``--profile NAME`` renders at it.
        render = {k: chosen.params[k] for k in PROFILE_FIELDS} | {"resolution": clip.options.resolution}
        feasible = [t for t in complete if t.user_attrs.get("ssim", 0.0) >= tuning.min_ssim]
        profile = RenderProfile(name=name, render=render, created_at=datetime.now(UTC),
                                study=_study_record(study, settings, name, clip, chosen, complete, feasible,
                                                    len(reference)))
        path = write_profile(settings, profile)
        outcome.outcome = "completed"
    return TuneResult(profile=name, profile_path=str(path.resolve()), render=render, trial=chosen.number,
                      ssim=chosen.user_attrs["ssim"], seconds=chosen.values[0], bytes=int(chosen.values[1]),
                      trials_run=trials, feasible=len(feasible))


def _run_trials(study: Any, space: dict[str, Any], clip: ReferenceClip, reference: list[np.ndarray], trials: int,
                tuning: Any) -> None:
    """Ask, encode and tell ``trials`` trials, ``tuning.concurrency`` at a time; a failed encode is a failed trial."""
    import optuna

    done = 0
    while done < trials:
        batch = [study.ask(space) for _ in range(min(tuning.concurrency, trials - done))]
        futures = [encode_trial.submit(t.number, clip, clip.options.model_copy(update=t.params)) for t in batch]
        for trial, future in zip(batch, futures, strict=True):
            future.wait()
            state = future.state
            if not state.is_completed():
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            result: TrialResult = future.result()
            quality = mean_ssim(reference, result.mp4)
            trial.set_user_attr("ssim", round(quality, 6))
            trial.set_user_attr("clip", clip.key)
            trial.set_constraint("min_ssim", tuning.min_ssim - quality)
            study.tell(trial, [round(result.seconds, 4), len(result.mp4)])
        done += len(batch)


def _study_record(study: Any, settings: Settings, name: str, clip: ReferenceClip, chosen: Any, complete: list[Any],
                  feasible: list[Any], frames: int) -> dict[str, Any]:
    """What the profile keeps of the study: where it is, the chosen trial, and the Pareto front of this clip."""
    tuning = settings.tuning
    numbers = {t.number for t in complete}
    front = [{"trial": t.number, "seconds": t.values[0], "bytes": int(t.values[1]), "ssim": t.user_attrs["ssim"],
              **t.params} for t in study.best_trials if t.number in numbers]
    return {
        "study_name": tuning.study_name,
        "storage": redacted(tuning.storage) or str(profile_path(settings, name).parent.resolve() / "tuning.db"),
        "trial": chosen.number, "ssim": chosen.user_attrs["ssim"], "seconds": chosen.values[0],
        "bytes": int(chosen.values[1]), "min_ssim": tuning.min_ssim, "bytes_slack": tuning.bytes_slack,
        "clip": clip.key, "frames": frames, "trials": len(complete), "feasible": len(feasible),
        "pareto_front": front,
    }


def run_tune(trials: int | None = None, **kwargs: Any) -> TuneResult:
    """Run :func:`tune_flow` on the configured task runner (threads if it is unavailable)."""
    settings = load_settings(kwargs.get("config_file"), **(kwargs.get("overrides") or {}))
    runner, _ = make_task_runner(settings.runner)
    with prefect_api_for_workers(settings.runner):
        return tune_flow.with_options(task_runner=runner)(trials, **kwargs)


app = typer.Typer(add_completion=False, help="Tune the encoder and write a render profile.")


@app.command()
def main(
    trials: Annotated[int | None, typer.Option(min=1, help="Trials to run (default tuning.trials).")] = None,
    name: Annotated[str | None, typer.Option(help="Profile to write (default tuning.profile_name).")] = None,
    source: Annotated[str | None, typer.Option(help="Page whose first scene is the reference clip.")] = None,
    config: Annotated[Path | None, typer.Option(help="Settings file (default ./pagereel.toml).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Tune CRF, preset, keyframe interval and threads; write the chosen settings as a profile."""
    try:
        load_settings(config)
        check_prefect_home()
        with stop_on_sigterm():
            result = run_tune(trials, name=name, source=source, config_file=str(config) if config else None)
    except PagereelError as exc:
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    typer.echo(f"profile {result.profile!r} written to {result.profile_path}: {result.render}", err=True)
    typer.echo(f"trial {result.trial}: SSIM {result.ssim:.4f}, {result.seconds:.2f} s, {result.bytes} bytes "
               f"({result.feasible} of {result.trials_run} trials met the floor in this study's clip)", err=True)
    typer.echo(f"use it with: python -m flows.video_flow URL --profile {result.profile}", err=True)


if __name__ == "__main__":
    # Run the app of the importable module, not of ``__main__``: a flow or task defined here would be
    # pickled by value into every worker, together with whatever its globals reach.
    from flows.tune_flow import app as _app

    _app()
