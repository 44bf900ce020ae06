"""Review before rendering: the form, `pagereel video --review` answered by `pagereel review`, and a
deployment run that suspends, is answered through the API as the Prefect UI answers it, and renders the edit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from flows.review import apply_answer, edits_from_answer, review_form
from flows.settings import load_settings
from tasks.errors import EditError
from tasks.models import Scene, Storyboard
from tests.conftest import ARTICLE_PAGE, HttpServer
from tests.deployed import run_settings
from tests.flows.cli_video import cli_env, client_folder

if TYPE_CHECKING:
    from tests.deployed import Deployed

PAGEREEL = shutil.which("pagereel", path=str(Path(sys.executable).parent))
NEW_WORDS = "Seventeen grey herons guard the harbour wall tonight."


def _storyboard() -> Storyboard:
    scenes = [Scene(id=i, kind=k, narration=f"Words of {i}.", caption=f"Caption {i}", hint_s=2.0)
              for i, k in (("title", "title"), ("s1", "body"), ("s2", "body"), ("closing", "closing"))]
    return Storyboard(title="Herons", scenes=scenes)


def test_the_form_shows_every_scene_and_its_answer_becomes_edits() -> None:
    board, settings = _storyboard(), load_settings()
    form = review_form(board, settings.render)
    schema = form.model_json_schema()
    assert schema["properties"]["scene_2_narration"]["default"] == "Words of s1."
    assert schema["properties"]["scene_2_narration"]["title"] == "Scene 2 (s1, body): narration"
    assert {"decision", "order", "voice", "theme", "aspect", "edits", "scene_4_keep"} <= set(schema["properties"])
    answer = {**form().model_dump(), "scene_2_narration": NEW_WORDS, "scene_3_keep": False, "theme": "paper"}
    edits = edits_from_answer(board, answer, settings.render)
    assert edits == {"scenes": {"s1": {"narration": NEW_WORDS}}, "drop": ["s2"], "theme": "paper"}
    reviewed = apply_answer(board, answer, settings)
    assert [s.id for s in reviewed.scenes] == ["title", "s1", "closing"] and reviewed.scenes[1].narration == NEW_WORDS
    # An answer left as it came is no change at all.
    assert edits_from_answer(board, form().model_dump(), settings.render) == {}
    with pytest.raises(EditError, match="order names scene 'nope'"):
        apply_answer(board, {**answer, "order": "closing, nope"}, settings)
    # A refused answer comes back in the next form as it was typed, with the reason on top.
    again = review_form(board, settings.render, answer, "order names scene 'nope'")
    assert again.model_json_schema()["properties"]["scene_2_narration"]["default"] == NEW_WORDS
    assert "refused" in again._description and "nope" in again._description


# --------------------------------------------------------------------------- the command line


def _saved_input(client: Any, run: Any, key: str, timeout: float = 30.0) -> str:
    """A run input Prefect saves just after it suspends the run (schema, description): read once it is there."""
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.read_flow_run_input(run, key)
        except (ObjectNotFound, PrefectHTTPStatusError) as exc:
            status = getattr(getattr(exc, "response", None), "status_code", 404)
            if status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _spoken(srt: Path) -> str:
    """The words of a subtitle file in one line, cue numbers and times left out."""
    lines = [line for line in srt.read_text().splitlines() if line and not line.isdigit() and "-->" not in line]
    return " ".join(" ".join(lines).lower().split())


def _paused_run(name: str, process: Any, timeout: float = 180) -> Any:
    """The flow run called ``name`` once it waits for a review (``process`` still going: a Popen or a thread)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if isinstance(process, subprocess.Popen):
            assert process.poll() is None, process.communicate()[1][-4000:]
        else:
            assert process.is_alive(), "the run ended without waiting for a review"
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
        paused = [r for r in runs if r.state and r.state.is_paused()]
        if paused:
            return paused[0]
        time.sleep(0.5)
    if isinstance(process, subprocess.Popen):
        process.kill()
        pytest.fail(f"run {name!r} never waited for a review:\n{process.communicate()[1][-4000:]}")
    pytest.fail(f"run {name!r} never waited for a review")


def _pagereel(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert PAGEREEL, "the pagereel console script is not installed beside this Python (run make setup)"
    return subprocess.run([PAGEREEL, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
@pytest.mark.timeout(400)
def test_video_review_waits_and_pagereel_review_answers(prefect_api: str, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    folder = client_folder(tmp_path)
    env = cli_env(folder, PREFECT_API_URL=prefect_api, PAGEREEL_REVIEW__POLL_S="1")
    process = subprocess.Popen([PAGEREEL, "video", "article.html", "--workflow-id", "reviewed", "--review", "--json"],
                               cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run = _paused_run("video reviewed", process)
        with get_client(sync_client=True) as client:
            draft = json.loads(client.read_flow_run_input(run.id, "pagereel-review-draft"))
        scenes = [s["id"] for s in draft["storyboard"]["scenes"]]
        assert not (folder / "out" / "reviewed").exists()  # nothing written before the answer

        bad = folder / "bad.yaml"
        bad.write_text("scenes:\n  nope: {narration: Hello}\n")
        done = _pagereel(folder, env, "review", str(run.id), "--edits", "bad.yaml")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "names scene 'nope', which does not exist" in done.stderr and "keeps waiting" in done.stderr
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run.id).state.is_paused()

        good = folder / "good.yaml"
        good.write_text(f"scenes:\n  {scenes[1]}: {{narration: \"{NEW_WORDS}\"}}\n")
        done = _pagereel(folder, env, "review", str(run.id), "--edits", "good.yaml")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "approved with 1 change(s)" in done.stdout
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-4000:]
    state = json.loads(out)
    assert state["status"] == "completed"
    assert NEW_WORDS.lower() in _spoken(Path(state["video_path"]).parent / "video.srt")


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_pagereel_review_refuses_a_run_that_is_not_waiting(prefect_api: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path, PREFECT_API_URL=prefect_api)
    done = _pagereel(tmp_path, env, "review", "not-a-run", "--approve")
    assert done.returncode == 1 and "is not a flow run id" in done.stderr
    done = _pagereel(tmp_path, env, "review", "00000000-0000-0000-0000-000000000000", "--approve")
    assert done.returncode == 1 and "no flow run" in done.stderr
    done = _pagereel(tmp_path, env, "review", "00000000-0000-0000-0000-000000000000")
    assert done.returncode == 1 and "one of --edits FILE, --approve or --reject" in done.stderr


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api")
def test_a_review_nobody_answers_stops_the_run_with_nothing_rendered(pagereel_env: Path, http_server: HttpServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.review import ReviewStopped
    from flows.video_flow import video_flow

    monkeypatch.setenv("PAGEREEL_REVIEW__TIMEOUT_S", "10")
    monkeypatch.setenv("PAGEREEL_REVIEW__POLL_S", "1")
    with pytest.raises(ReviewStopped, match=r"nobody answered the review within 10 s \(review.timeout_s\)"):
        video_flow(http_server.url(f"/pages/{ARTICLE_PAGE}"), workflow_id="unanswered", review=True)
    assert not (pagereel_env / "out" / "unanswered").exists()


@pytest.mark.integration
@pytest.mark.timeout(400)
@pytest.mark.usefixtures("prefect_api")
def test_only_the_edited_scene_is_rendered_again(pagereel_env: Path, http_server: HttpServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from flows.review import send_answer
    from flows.video_flow import video_flow

    for name, value in {"RESOLUTION": "144", "FPS": "8", "PRESET": "ultrafast"}.items():
        monkeypatch.setenv(f"PAGEREEL_RENDER__{name}", value)
    monkeypatch.setenv("PAGEREEL_STORYBOARD__TARGET_DURATION_S", "12")
    monkeypatch.setenv("PAGEREEL_REVIEW__POLL_S", "1")
    url = http_server.url(f"/pages/{ARTICLE_PAGE}")
    first = video_flow(url, workflow_id="cached-review")
    results: list[Any] = []
    waiting = threading.Thread(target=lambda: results.append(video_flow(url, workflow_id="cached-review",
                                                                        review=True)))
    waiting.start()
    run = _paused_run("video cached-review", waiting)
    edited = first.storyboard.scenes[1].id
    said = send_answer(str(run.id), {"decision": "approve",
                                     "edits": json.dumps({"scenes": {edited: {"narration": NEW_WORDS}}})})
    assert "approved with 1 change(s)" in said and f"scene `{edited}` narration" in said
    waiting.join(timeout=300)
    (second,) = results
    # The edited scene's narration and render are new; every other stage and scene comes from the cache.
    assert second.metrics.cache_misses == 2, second.metrics
    assert second.metrics.cache_hits >= first.metrics.cache_misses - 2
    assert NEW_WORDS.lower() in _spoken(pagereel_env / "out" / "cached-review" / "video.srt")


# --------------------------------------------------------------------------- a deployment run


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_a_deployment_run_suspends_for_review_and_renders_the_edit(deployed: Deployed, pagereel_env: Path,
                                                                   http_server: HttpServer) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus

    run = deployed.run("video-flow/from-url", {"url": http_server.url(f"/pages/{ARTICLE_PAGE}"),
                                               "workflow_id": "suspended", "review": True},
                       run_settings(PAGEREEL_RENDER__RESOLUTION="144", PAGEREEL_RENDER__FPS="8",
                                    PAGEREEL_RENDER__PRESET="ultrafast", PAGEREEL_STORYBOARD__TARGET_DURATION_S="12"))
    state = deployed.wait(run, lambda s: s.is_paused())
    with get_client(sync_client=True) as client:
        assert state.name == "Suspended", (state, deployed.tail())
        keyset = state.state_details.run_input_keyset
        assert keyset["response"] == "suspended-review-1-response"
        schema = json.loads(_saved_input(client, run, keyset["schema"]))
        # An order naming a scene that does not exist passes the form's schema and is refused by apply_edits.
        result = client.resume_flow_run(run, run_input={"order": "closing, nope"})
        assert result.status == SetStateStatus.ACCEPT
    assert not (pagereel_env / "out" / "suspended").exists()

    # The worker takes the run up again; it waits again, nothing rendered.
    state = deployed.wait(run, lambda s, before=state.id: s.is_paused() and s.id != before)
    with get_client(sync_client=True) as client:
        keyset = state.state_details.run_input_keyset
        reason = _saved_input(client, run, keyset["description"])
        assert "refused" in reason and "'nope', which does not exist" in reason
        # The schema refuses an empty narration before the run sees it, as the UI's form does.
        result = client.resume_flow_run(run, run_input={"scene_2_narration": ""})
        assert result.status == SetStateStatus.REJECT and "scene_2_narration" in result.details.reason
        assert client.read_flow_run(run).state.is_paused()
        # The UI sends the whole form: every field, one narration changed.
        answer = {name: field.get("default") for name, field in schema["properties"].items()}
        answer["scene_2_narration"] = NEW_WORDS
        result = client.resume_flow_run(run, run_input=answer)
        assert result.status == SetStateStatus.ACCEPT, result.details

    deployed.wait(run, lambda s: s.is_completed())
    assert NEW_WORDS.lower() in _spoken(pagereel_env / "out" / "suspended" / "video.srt")


# --------------------------------------------------------------------------- what the UI shows


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api")
def test_artifacts_read_well_in_a_browser(tmp_path: Path) -> None:
    from PIL import Image
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.artifacts import ProgressReporter, publish_review, publish_video
    from tasks.models import WorkflowState

    Image.new("RGB", (640, 360), (200, 40, 40)).save(tmp_path / "thumbnail.png")
    board = _storyboard()
    edited = apply_answer(board, {"scene_2_narration": NEW_WORDS, "order": "title, s2, s1, closing"}, load_settings())

    @flow(name="artifacts-check")
    def publish() -> None:
        progress = ProgressReporter("Look-1", 4)
        progress("render", 1, 4)
        progress.failed(RuntimeError("the encoder ran out of disk"))
        publish_review("look-1", board, edited, "shorter")
        files = {"video": "/srv/out/look-1/video.mp4", "thumbnail": str(tmp_path / "thumbnail.png")}
        publish_video(WorkflowState(workflow_id="look-1", source_url="https://example.com/a"), files,
                      "https://files.example.com/pagereel/")
        publish_video(WorkflowState(workflow_id="look-2", source_url="https://example.com/a"), files)

    state = publish(return_state=True)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    by_key = {a.key: a for a in artifacts}
    progress = next(a for a in artifacts if a.key == "look-1-progress")
    assert float(progress.data) == 25.0 and "Failed** after 1 of 4" in progress.description
    assert "ran out of disk" in progress.description
    review = by_key["look-1-review"].data
    assert f"scene `s1` narration: ~~Words of s1.~~ -> {NEW_WORDS}" in review and "order: title, s2, s1" in review
    served = by_key["look-1-video"].data
    assert "[video.mp4](https://files.example.com/pagereel/look-1/video.mp4)" in served
    assert "![thumbnail](https://files.example.com/pagereel/look-1/thumbnail.png)" in served
    local = by_key["look-2-video"].data
    assert "file://" not in local and "![thumbnail](data:image/jpeg;base64," in local
    assert "video.mp4 `/srv/out/look-1/video.mp4` (set out_url to link it)" in local


def test_progress_moves_at_most_once_a_second_and_always_at_the_last_scene(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect.artifacts

    from flows.artifacts import ProgressReporter

    moves: list[float] = []
    monkeypatch.setattr(prefect.artifacts, "create_progress_artifact", lambda *args, **kwargs: "artifact-id")
    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact",
                        lambda artifact_id, percent, description: moves.append(percent))
    cached = ProgressReporter("quick", 6)
    for done in range(1, 7):  # a cached run's scenes come all at once: one call to the API
        cached("render", done, 6)
    assert moves == [100.0]
    moves.clear()
    slow = ProgressReporter("slow", 3)
    slow.EVERY_S = 0.0  # scenes a second or more apart: each one moves it
    for done in range(1, 4):
        slow("render", done, 3)
    assert moves == [33.3, 66.7, 100.0]
