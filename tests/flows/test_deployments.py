"""prefect.yaml against a real API: every deployment registers, and a worker turns a video run into a video.

The session deploys once and keeps one worker (the ``deployed`` fixture, tests/deployed.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.conftest import ARTICLE_PAGE, HttpServer
from tests.deployed import DEPLOYMENTS, POOL, ROOT, run_settings

if TYPE_CHECKING:
    from tests.deployed import Deployed

pytestmark = [pytest.mark.integration]


def test_yaml_declares_three_deployments_with_the_nightly_schedule_off() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in config["deployments"]}
    assert set(by_name) == {"from-url", "nightly", "tune"}
    for d in by_name.values():
        path, _, name = d["entrypoint"].partition(":")
        assert (ROOT / path).is_file() and f"def {name}(" in (ROOT / path).read_text()
    (schedule,) = by_name["nightly"]["schedules"]
    assert schedule["cron"] and schedule["active"] is False
    url_file = ROOT / by_name["nightly"]["parameters"]["url_file"]
    urls = [u for u in url_file.read_text().splitlines() if u and not u.startswith("#")]
    assert urls and all(u.startswith("https://") and "127.0.0.1" not in u and "localhost" not in u for u in urls)
    # The pull step must not name this machine's folder: it is templated from where deploy runs.
    assert config["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $PWD }}"


@pytest.mark.timeout(300)
def test_deploy_all_then_a_worker_renders_the_video(deployed: Deployed, pagereel_env: Path,
                                                    http_server: HttpServer) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        found = {}
        for full in DEPLOYMENTS:
            deployment = client.read_deployment_by_name(full)
            assert deployment.work_pool_name == POOL
            assert deployment.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(ROOT)
            found[full] = deployment
        listed = client.read_deployments(deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["from-url", "nightly", "tune"])))
        assert {d.name for d in listed} >= {"from-url", "nightly", "tune"}
        (nightly_schedule,) = found["batch-flow/nightly"].schedules
        assert nightly_schedule.active is False and nightly_schedule.schedule.cron == "0 2 * * *"
        assert found["batch-flow/nightly"].parameters["url_file"] == "examples/urls.txt"

    # Small and short: this checks the deployment path, not the picture.
    run = deployed.run("video-flow/from-url", {"url": http_server.url(f"/pages/{ARTICLE_PAGE}"),
                                               "workflow_id": "deployed"},
                       run_settings(PAGEREEL_RENDER__RESOLUTION="144", PAGEREEL_RENDER__FPS="10",
                                    PAGEREEL_RENDER__PRESET="ultrafast", PAGEREEL_STORYBOARD__TARGET_DURATION_S="12"))
    state = deployed.wait(run, lambda s: s.is_completed())
    assert state.is_completed()
    video = pagereel_env / "out" / "deployed" / "video.mp4"
    assert video.is_file() and video.stat().st_size > 10_000
    assert (video.parent / "manifest.json").is_file()


@pytest.mark.usefixtures("prefect_api")
def test_nightly_parameters_run_a_url_file_one_at_a_time(pagereel_env: Path, http_server: HttpServer) -> None:
    from flows.batch_flow import batch_flow

    pages = ["garden-sensor.html", ARTICLE_PAGE]
    url_file = pagereel_env / "urls.txt"
    url_file.write_text("# tonight\n" + "\n".join(http_server.url(f"/pages/{p}") for p in pages) + "\n\n")
    result = batch_flow(url_file=str(url_file), concurrency=1, dry_run=True)
    assert [i.status for i in result.items] == ["storyboard"] * 2
    assert [i.url for i in result.items] == [http_server.url(f"/pages/{p}") for p in pages]


def test_serve_builds_the_deployments_of_the_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """``deployments/serve.py`` serves exactly what ``prefect.yaml`` declares: one list, never two to keep in step."""
    from deployments import serve

    monkeypatch.chdir(ROOT)
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    built = {d.name: d for d in serve.deployments()}
    assert set(built) == {d["name"] for d in config["deployments"]}
    for entry in config["deployments"]:
        deployment = built[entry["name"]]
        assert deployment.flow_name == entry["entrypoint"].partition(":")[2].replace("_", "-")
        assert deployment.description == entry["description"]
        assert deployment.tags == entry["tags"]
        assert deployment.parameters == entry["parameters"]
        wanted = [(s["cron"], s["timezone"], s["active"]) for s in entry.get("schedules") or []]
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules or []] == wanted


def test_the_video_parameters_have_one_definition() -> None:
    """The flow's signature defines them: Prefect's schema, run_video and the from-url deployment use its names."""
    import inspect

    from flows.video_flow import run_video, video_flow

    names = list(inspect.signature(video_flow.fn).parameters)
    assert list(video_flow.parameters.properties) == names  # what the UI's run form shows
    assert list(inspect.signature(run_video).parameters) == [*names, "settings"]
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    from_url = next(d for d in config["deployments"] if d["name"] == "from-url")
    assert set(from_url["parameters"]) <= set(names)
    with pytest.raises(TypeError, match="workflow"):
        run_video("https://example.com/a", workflow="misspelt")  # fails before anything runs
