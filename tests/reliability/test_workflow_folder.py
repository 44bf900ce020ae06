"""A workflow folder always describes one run: a failed re-run changes nothing, commits of one id take turns."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from flows.outputs import MANIFEST, OUTPUT_NAMES, RunFolder
from flows.video_flow import video_flow
from tests.reliability.helpers import ARTICLE, SMALL_VIDEO, assert_valid_video

pytestmark = [pytest.mark.reliability]


@pytest.fixture
def small_video(pagereel_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in SMALL_VIDEO.items():
        monkeypatch.setenv(name, value)
    return pagereel_env


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api")
def test_a_failed_rerun_leaves_the_finished_run_whole(http_server, small_video: Path) -> None:
    url = http_server.url(ARTICLE)
    folder = small_video / "out" / "rerun"
    first = video_flow(url, workflow_id="rerun")
    assert first.status == "completed"
    files = {name: (folder / name).read_bytes() for name in OUTPUT_NAMES}

    # The re-run gets as far as a new storyboard, then fails before the first frame (its avatar is missing).
    with pytest.raises(Exception, match="avatar"):
        video_flow(url, workflow_id="rerun", avatar=str(small_video / "nobody.png"),
                   user_edits={"title": "A title of the failed run"})

    assert {name: (folder / name).read_bytes() for name in OUTPUT_NAMES} == files  # byte for byte the first run
    manifest = assert_valid_video(folder)  # and no staging folder left behind
    assert json.loads((folder / "storyboard.json").read_text())["title"] == manifest["title"] == first.title

    # A dry run is a run too: afterwards the folder holds its storyboard and nothing of the video before it.
    dry = video_flow(url, workflow_id="rerun", user_edits={"title": "Only a storyboard"}, dry_run=True)
    assert json.loads((folder / "storyboard.json").read_text())["title"] == dry.title == "Only a storyboard"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["storyboard.json"]


def test_commits_of_one_workflow_id_take_turns(tmp_path: Path) -> None:
    """Many runs of one id committing at once: every file in the folder comes from the same run."""
    out = tmp_path / "out"
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            for attempt in range(15):
                folder = RunFolder(out, "same")
                token = f"{n}-{attempt}"
                for name in OUTPUT_NAMES:
                    # Big enough that a rename racing a rename would be seen as a mix.
                    (folder.staging / name).write_text(json.dumps({"run": token}) + " " * 4096)
                folder.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    seen: list[set[str]] = []
    stop = threading.Event()

    def watch() -> None:
        from flows.outputs import _exclusive

        while not stop.is_set():
            with _exclusive(out / "same" / ".lock"):  # what a reader that wants a whole run does
                if (out / "same" / MANIFEST).exists():
                    seen.append({json.loads((out / "same" / n).read_text())["run"] for n in OUTPUT_NAMES})

    (out / "same").mkdir(parents=True)
    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    watcher.join(timeout=30)
    assert not errors, errors
    assert seen and all(len(runs) == 1 for runs in seen)
    assert len({json.loads((out / "same" / n).read_text())["run"] for n in OUTPUT_NAMES}) == 1
    assert not list((out / "same").glob(".*.part"))


def test_a_run_takes_over_finished_files_only_as_its_manifest_recorded_them(tmp_path: Path) -> None:
    from flows.outputs import file_digests

    names = ("video.srt", "video.mp4")
    folder = tmp_path / "same"

    def commit(run: RunFolder, record: dict) -> None:
        (run.staging / MANIFEST).write_text(json.dumps({"assembly": record}))
        run.commit()

    first = RunFolder(tmp_path, "same")
    for name in names:
        (first.staging / name).write_bytes(name.encode() * 1000)
    record = {"inputs": "inputs-1", "files": file_digests(first.staging, names)}
    commit(first, record)
    finished = {name: (folder / name).read_bytes() for name in names}

    again = RunFolder(tmp_path, "same")
    assert again.take_over("inputs-1", names) == record["files"]
    commit(again, record)
    assert {name: (folder / name).read_bytes() for name in names} == finished

    other = RunFolder(tmp_path, "same")
    assert other.take_over("inputs-2", names) is None  # other inputs
    (folder / "video.mp4").write_bytes(b"changed by hand")
    assert other.take_over("inputs-1", names) is None  # the file is not the one recorded
    assert not any((other.staging / name).exists() for name in names)
    other.discard()
    assert RunFolder("memory://bucket/out", "same").take_over("inputs-1", names) is None
