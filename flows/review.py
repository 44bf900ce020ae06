"""Review of the storyboard before rendering: the run waits until a person approves, edits or rejects it.

A run with ``review`` on publishes its storyboard, then waits for typed input (Prefect's
``RunInput``): the Prefect UI shows it as a form with each scene's narration, caption and a keep
box, the scene order, voice, theme and aspect, a box for further edits in the edits-file format,
and approve or reject. ``pagereel review RUN_ID`` answers the same form through the API.

The answer becomes storyboard edits and goes through :func:`tasks.edits.apply_edits`, like an
edits file. An answer the API's schema refuses (an empty narration) never reaches the run; one
that ``apply_edits`` refuses (an order naming a scene that does not exist) is logged, and the run
waits again with the reason at the top of the form. Nothing is rendered before an answer is taken.

A deployment run suspends while it waits (its process ends, its worker is free, and the run is
started again when answered: the storyboard half comes back from the cache). A run started from
the command line or Python, a subflow of a batch, and a run whose ``review.on_timeout`` is
``render`` keep their process and poll the API. Each wait has its own key (``review-1``,
``review-2``, ...), so a run started again finds the answers it already had in the same order.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn
from uuid import UUID

import typer
from pydantic import Field, create_model

from flows.settings import ReviewSettings, Settings, deployment_run
from tasks.avatar import BUILTIN_AVATARS
from tasks.edits import apply_edits, load_edits_file, parse_edits
from tasks.errors import ConfigurationError, EditError, PagereelError
from tasks.models import THEMES, Aspect, RenderOptions, Storyboard

log = logging.getLogger("pagereel.review")

#: The flow run input that keeps the storyboard under review, for ``pagereel review`` to check edits against.
DRAFT_KEY = "pagereel-review-draft"
#: Most answers one run takes before it stops: each refused one costs a person a round trip.
MAX_ANSWERS = 20
#: What the run is answered with when nobody answered in time and ``review.on_timeout`` is ``render``.
TIMEOUT_ANSWER = {"decision": "approve", "note": "nobody answered in time: rendered as it was"}


class ReviewStopped(PagereelError):
    """The storyboard was rejected in review, or nobody answered in time; nothing was rendered."""


def _run_input_base() -> type:
    from prefect.input import RunInput

    return RunInput


def review_form(storyboard: Storyboard, render: RenderOptions, previous: dict[str, Any] | None = None,
                problem: str | None = None) -> type:
    """The ``RunInput`` model of the review form of ``storyboard``, filled with ``previous`` answers if any.

    A refused answer comes back in the next form as it was typed, to be put right.
    """
    was = previous or {}
    fields: dict[str, Any] = {
        "decision": (Literal["approve", "reject"], Field(
            was.get("decision", "approve"), title="Decision",
            description="approve renders the storyboard with the changes below; reject stops the run")),
        "note": (str, Field(was.get("note", ""), max_length=500, title="Note",
                            description="Why, when rejecting (kept in the logs).")),
    }
    for i, scene in enumerate(storyboard.scenes, start=1):
        label, key = f"Scene {i} ({scene.id}, {scene.kind})", f"scene_{i}"
        fields[f"{key}_narration"] = (str, Field(was.get(f"{key}_narration", scene.narration), min_length=1,
                                                 max_length=5000, title=f"{label}: narration"))
        fields[f"{key}_caption"] = (str, Field(was.get(f"{key}_caption", scene.caption), max_length=120,
                                               title=f"{label}: caption"))
        fields[f"{key}_keep"] = (bool, Field(was.get(f"{key}_keep", True), title=f"{label}: keep",
                                             description="Untick to drop the scene."))
    fields["order"] = (str, Field(was.get("order", ", ".join(s.id for s in storyboard.scenes)), max_length=2000,
                                  title="Scene order",
                                  description="Scene ids separated by commas; scenes left out follow in their order."))
    fields["voice"] = (str, Field(was.get("voice", storyboard.voice or render.voice or ""), max_length=400,
                                  title="Voice", description="ENGINE:NAME (espeak:en-gb); empty: the article "
                                                             "language's voice."))
    fields["theme"] = (Literal[THEMES], Field(was.get("theme", storyboard.theme or render.theme), title="Theme"))
    fields["aspect"] = (Aspect, Field(was.get("aspect", storyboard.aspect or render.aspect), title="Aspect"))
    fields["edits"] = (str, Field(was.get("edits", ""), max_length=100_000, title="More edits (YAML or JSON)",
                                  description="Anything an edits file may say (title, append, avatar, ...); "
                                              "it wins over the fields above."))
    model = create_model("StoryboardReview", __base__=_run_input_base(), **fields)
    model._description = _form_description(storyboard, problem)
    return model


def _form_description(storyboard: Storyboard, problem: str | None) -> str:
    text = (f"## Review the storyboard of **{storyboard.title}**\n\n{len(storyboard.scenes)} scenes, about "
            f"{storyboard.duration_hint_s:.0f} s. Change narration and captions, untick a scene to drop it, "
            "reorder by ids, then submit: approve renders, reject stops the run. Nothing is rendered before "
            "an answer; scenes you do not change come back from the cache.")
    if problem:
        text = f"**Your last answer was refused, nothing was rendered:** {problem}\n\n{text}"
    return text


def edits_from_answer(storyboard: Storyboard, answer: dict[str, Any], render: RenderOptions) -> dict[str, Any]:
    """The storyboard edits an answer of the form asks for: only what differs from ``storyboard``.

    Fields the answer leaves out are unchanged (``pagereel review --edits`` sends the edits box only).
    """
    scenes: dict[str, dict[str, str]] = {}
    drop = []
    for i, scene in enumerate(storyboard.scenes, start=1):
        change = {k: answer[f"scene_{i}_{k}"] for k in ("narration", "caption")
                  if answer.get(f"scene_{i}_{k}", getattr(scene, k)) != getattr(scene, k)}
        if change:
            scenes[scene.id] = change
        if answer.get(f"scene_{i}_keep", True) is False:
            drop.append(scene.id)
    edits: dict[str, Any] = {"scenes": scenes} if scenes else {}
    if drop:
        edits["drop"] = drop
    order = [s.strip() for s in str(answer.get("order", "")).split(",") if s.strip() and s.strip() not in drop]
    if order and order != [s.id for s in storyboard.scenes if s.id not in drop]:
        edits["order"] = order
    for key, now in (("voice", storyboard.voice or render.voice or ""), ("theme", storyboard.theme or render.theme),
                     ("aspect", storyboard.aspect or render.aspect)):
        if key in answer and answer[key] != now:
            edits[key] = answer[key] or None
    edits = {k: v for k, v in edits.items() if v is not None}
    more = parse_edits(answer.get("edits") or None).model_dump(exclude_unset=True)
    for scene_id, change in more.pop("scenes", {}).items():
        edits.setdefault("scenes", {})[scene_id] = {**edits.get("scenes", {}).get(scene_id, {}), **change}
    return {**edits, **more}


def apply_answer(storyboard: Storyboard, answer: dict[str, Any], settings: Settings, *,
                 deployment: bool = False) -> Storyboard:
    """``storyboard`` with the answer's edits applied; :class:`EditError` says why an answer is refused."""
    edits = edits_from_answer(storyboard, answer, settings.render)
    if deployment and edits.get("avatar") and str(edits["avatar"]).lower() not in BUILTIN_AVATARS:
        raise EditError(f"avatar {str(edits['avatar'])[:80]!r} is not a built-in presenter "
                        f"({', '.join(BUILTIN_AVATARS)}); a deployment run cannot read a picture file of its worker")
    return apply_edits(storyboard, edits, words_per_minute=settings.storyboard.words_per_minute,
                       max_scenes=settings.storyboard.max_scenes, max_duration_s=settings.storyboard.max_duration_s)


def await_review(workflow_id: str, storyboard: Storyboard, settings: Settings) -> Storyboard:
    """Publish ``storyboard``, wait for a review, and return it as approved (with the answer's edits)."""
    from flows.artifacts import publish_review, publish_storyboard

    publish_storyboard(workflow_id, storyboard)
    deployment = deployment_run()
    suspend = deployment and settings.review.on_timeout == "stop" and not _is_subflow()
    _keep_draft(storyboard, settings)
    previous: dict[str, Any] | None = None
    problem: str | None = None
    for attempt in range(1, MAX_ANSWERS + 1):
        form = review_form(storyboard, settings.render, previous, problem)
        answer = _wait(form, f"review-{attempt}", suspend, settings.review)
        if answer["decision"] == "reject":
            note = f": {answer['note']}" if answer.get("note") else ""
            raise ReviewStopped(f"the storyboard of {workflow_id!r} was rejected in review{note}; nothing was rendered")
        try:
            reviewed = apply_answer(storyboard, answer, settings, deployment=deployment)
        except EditError as exc:
            problem, previous = str(exc), answer
            _log().warning("review answer %d refused, waiting for another: %s", attempt, problem)
            continue
        publish_review(workflow_id, storyboard, reviewed, answer.get("note") or "")
        return reviewed
    raise ReviewStopped(f"the review of {workflow_id!r} had {MAX_ANSWERS} refused answers; nothing was rendered")


def _log() -> Any:
    """The run's logger when there is a run (its lines show in the UI), else pagereel's."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return log


def _is_subflow() -> bool:
    from prefect.runtime import flow_run

    return flow_run.parent_flow_run_id is not None


def _keep_draft(storyboard: Storyboard, settings: Settings) -> None:
    """Keep the storyboard and its limits with the run, so ``pagereel review`` checks edits before sending them."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.runtime import flow_run

    draft = {"storyboard": storyboard.model_dump(mode="json"), "settings": {
        "storyboard": settings.storyboard.model_dump(include={"words_per_minute", "max_scenes", "max_duration_s"}),
        "render": settings.render.model_dump(include={"voice", "theme", "aspect"})}}
    with get_client(sync_client=True) as client:
        try:
            client.delete_flow_run_input(flow_run.id, DRAFT_KEY)
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 404:  # 404: the first wait of this run
                raise
        client.create_flow_run_input(flow_run.id, DRAFT_KEY, json.dumps(draft))


def _wait(form: type, key: str, suspend: bool, review: ReviewSettings) -> dict[str, Any]:
    """Wait for the answer to ``form`` under ``key``: suspended, or polling in this process."""
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run, suspend_flow_run

    _log().info("waiting for a review of the storyboard: answer in the Prefect UI, or with "
                "pagereel review %s --approve | --edits FILE | --reject", _run_id())
    if suspend:
        return suspend_flow_run(wait_for_input=form, timeout=review.timeout_s, key=key).model_dump()
    timer = None
    if review.on_timeout == "render":
        # The run answers itself when the time is up, before the API could fail it for an expired pause.
        timer = threading.Timer(review.timeout_s, _answer_own_run, args=(_run_id(),))
        timer.daemon = True
        timer.start()
    try:
        return pause_flow_run(wait_for_input=form, timeout=review.timeout_s + 60 * (timer is not None),
                              poll_interval=review.poll_s, key=key).model_dump()
    except FlowPauseTimeout:
        raise ReviewStopped(f"nobody answered the review within {review.timeout_s} s (review.timeout_s); nothing "
                            "was rendered. review.on_timeout = 'render' renders unanswered storyboards as they are"
                            ) from None
    finally:
        if timer is not None:
            timer.cancel()


def _run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.id)


def _answer_own_run(run_id: str) -> None:
    from prefect.exceptions import PrefectException
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(run_id), run_input=TIMEOUT_ANSWER)
        log.warning("nobody answered the review in time: the storyboard is rendered as it was")
    except (PrefectException, RuntimeError) as exc:  # answered meanwhile: that answer stands
        log.info("the review was answered meanwhile (%s)", exc)


def draft_of_run(client: Any, run_id: Any) -> tuple[Storyboard, Settings]:
    """The storyboard a waiting run reviews, and the settings its edits are checked with."""
    from flows.settings import load_settings

    data = json.loads(client.read_flow_run_input(run_id, DRAFT_KEY))
    return Storyboard.model_validate(data["storyboard"]), load_settings(**data["settings"])


# --------------------------------------------------------------------------- command line


def review_command(
    run_id: Annotated[str, typer.Argument(help="The waiting run's id (in its logs and the Prefect UI).")],
    edits: Annotated[Path | None, typer.Option(help="Storyboard edits, JSON or YAML, as for --edits of video.")] = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve the storyboard as it is.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Stop the run; nothing is rendered.")] = False,
    note: Annotated[str, typer.Option(help="A note kept with the answer (why, when rejecting).")] = "",
) -> None:
    """Answer a run that waits for a review: approve it, approve it with edits, or reject it."""
    if (edits is not None) + approve + reject != 1:
        _fail("give one of --edits FILE, --approve or --reject")
    try:
        answer = {"decision": "reject" if reject else "approve", "note": note[:500]}
        if edits is not None:
            answer["edits"] = json.dumps(load_edits_file(edits).model_dump(exclude_unset=True))
        message = send_answer(run_id, answer)
    except PagereelError as exc:
        _fail(str(exc))
    typer.echo(message)


def send_answer(run_id: str, answer: dict[str, Any]) -> str:
    """Check ``answer`` against the storyboard run ``run_id`` reviews, then send it; what was done, in words."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    try:
        flow_run_id = UUID(run_id)
    except ValueError:
        raise ConfigurationError(f"{run_id[:80]!r} is not a flow run id (a UUID, as in the run's logs)") from None
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            raise ConfigurationError(f"no flow run {run_id} on the Prefect API at {client.api_url}") from None
        if run.state is None or not run.state.is_paused() or not run.state.state_details.run_input_keyset:
            raise ConfigurationError(f"run {run_id} ({run.name}) is not waiting for a review: it is "
                                     f"{run.state.name if run.state else 'not started'}")
        try:
            storyboard, settings = draft_of_run(client, flow_run_id)
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
            raise ConfigurationError(f"run {run_id} ({run.name}) waits for input, but not for a storyboard "
                                     "review") from None
        if answer["decision"] == "approve":
            try:
                reviewed = apply_answer(storyboard, answer, settings, deployment=run.deployment_id is not None)
            except EditError as exc:
                raise EditError(f"{exc}; nothing was sent, run {run_id} keeps waiting") from None
        result = client.resume_flow_run(flow_run_id, run_input=answer)
    if result.status != SetStateStatus.ACCEPT:
        reason = getattr(result.details, "reason", None) or result.status.value
        raise EditError(f"the Prefect API refused the answer: {reason}; run {run_id} keeps waiting")
    if answer["decision"] == "reject":
        return f"run {run_id} ({run.name}): storyboard rejected, the run stops"
    from flows.artifacts import review_changes

    changes = review_changes(storyboard, reviewed)
    return f"run {run_id} ({run.name}): approved with {len(changes)} change(s), rendering" + "".join(
        f"\n  {line}" for line in changes)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code=1)
