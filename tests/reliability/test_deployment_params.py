"""What someone who can start a deployment may change: a user's choices, never the guards of the worker's machine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import flows.batch_flow
import flows.settings
import flows.video_flow
from flows.settings import RUN_CHOICES, check_run_overrides
from tasks.errors import ConfigurationError
from tests.conftest import ARTICLE_PAGE, HttpServer
from tests.deployed import run_settings

if TYPE_CHECKING:
    from tests.deployed import Deployed

pytestmark = pytest.mark.reliability

#: Settings that guard the machine, each as a run's ``overrides`` would set it.
GUARDED = {
    "fetch.allow_private_hosts": {"fetch": {"allow_private_hosts": True}},
    "fetch.allow_local_files": {"fetch": {"allow_local_files": True}},
    "fetch.image_hosts": {"fetch": {"image_hosts": None}},
    "fetch.max_bytes": {"fetch": {"max_bytes": 10**12}},
    "out_dir": {"out_dir": "/etc"},
    "cache.dir": {"cache": {"dir": "/tmp/elsewhere"}},
    "cache.redis_url": {"cache": {"redis_url": "redis://attacker.example:6400/0"}},
    "metrics.address": {"metrics": {"address": "0.0.0.0"}},
    "metrics.pushgateway_url": {"metrics": {"pushgateway_url": "http://attacker.example:9091"}},
    "tuning.storage": {"tuning": {"storage": "journal:/tmp/x.log"}},
    "tuning.profiles_dir": {"tuning": {"profiles_dir": "/tmp"}},
    "runner.address": {"runner": {"address": "tcp://attacker.example:8786"}},
    "runner": {"runner": "dask"},
    "render.music": {"render": {"music": "/etc/shadow"}},
    "storyboard.max_duration_s": {"storyboard": {"max_duration_s": 14400}},
}
CHOICES = {"storyboard": {"target_duration_s": 30, "max_scenes": 6}, "render": {"aspect": "9:16", "theme": "paper",
           "resolution": 144, "voice": "en-gb"}, "profile": None}


@pytest.mark.parametrize("field", sorted(GUARDED))
def test_a_guarded_setting_is_refused_by_name(field: str) -> None:
    with pytest.raises(ConfigurationError, match=f"may not set {field}:"):
        check_run_overrides(GUARDED[field])


def test_a_users_choices_are_accepted() -> None:
    check_run_overrides(CHOICES)
    assert set(RUN_CHOICES["render"]) >= {"aspect", "theme", "resolution", "voice"}


@pytest.mark.usefixtures("prefect_api")
def test_a_plain_run_is_no_deployment_run_without_asking_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each video of a batch asks; the answer comes from the run's context, not one API round trip per video."""
    from prefect import flow
    from prefect.client.orchestration import PrefectClient

    from flows.settings import deployment_run

    reads: list[object] = []
    real = PrefectClient.read_flow_run

    async def counted(self, *args, **kwargs):
        reads.append(args)
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(PrefectClient, "read_flow_run", counted)

    @flow(name="plain-inner")
    def inner() -> bool:
        return deployment_run()

    @flow(name="plain-outer")
    def outer() -> tuple[bool, bool]:
        return deployment_run(), inner()

    assert outer() == (False, False)
    assert reads == [], f"{len(reads)} flow runs read back from the API"


@pytest.fixture
def as_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow behaves as in a deployment run (what the real one below checks end to end)."""
    monkeypatch.setattr(flows.settings, "deployment_run", lambda: True)
    monkeypatch.setattr(flows.video_flow, "deployment_run", lambda: True)
    monkeypatch.setattr(flows.batch_flow, "deployment_run", lambda: True)


@pytest.mark.usefixtures("prefect_api", "as_deployment")
def test_a_deployed_flow_refuses_config_files_presenter_files_and_pages_elsewhere(pagereel_env: Path,
                                                                                 http_server) -> None:
    from flows.batch_flow import batch_flow
    from flows.video_flow import video_flow

    url = http_server.url(f"/pages/{ARTICLE_PAGE}")
    (pagereel_env / "open.toml").write_text("[fetch]\nallow_private_hosts = true\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="config_file cannot be a run parameter"):
        video_flow(url, config_file=str(pagereel_env / "open.toml"), dry_run=True)
    for avatar, edits in (("/etc/hostname", None), (None, {"avatar": str(pagereel_env / "face.png")})):
        with pytest.raises(ConfigurationError, match="not a built-in presenter"):
            video_flow(url, avatar=avatar, user_edits=edits, dry_run=True)
    outside = pagereel_env.parent / f"{pagereel_env.name}-page.html"  # a page outside the folder the run is in
    outside.write_text("<html><body><p>private</p></body></html>", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="reads local pages only inside its folder"):
        video_flow(outside.as_uri(), dry_run=True)
    with pytest.raises(ConfigurationError, match="reads URL lists only inside its folder"):
        batch_flow(url_file="/etc/passwd", dry_run=True)
    state = video_flow(url, workflow_id="chosen", avatar="ada", overrides=CHOICES, dry_run=True)
    assert state.status == "storyboard" and state.storyboard.avatar == "ada"


@pytest.mark.timeout(300)
def test_a_deployment_run_cannot_switch_the_private_host_guard_off(deployed: Deployed, pagereel_env: Path,
                                                                   http_server: HttpServer) -> None:
    page = f"/pages/{ARTICLE_PAGE}"
    hits = http_server.hits(page)
    # The worker's own settings keep the guard on; the run's parameters ask to turn it off.
    settings = run_settings()
    settings.pop("PAGEREEL_FETCH__ALLOW_PRIVATE_HOSTS")
    run = deployed.run("video-flow/from-url", {"url": http_server.url(page), "workflow_id": "opened",
                                               "dry_run": True, "overrides": {"fetch": {"allow_private_hosts": True}}},
                       settings)
    state = deployed.wait(run, lambda s: s.is_final())
    assert state.is_failed(), (state, deployed.tail())
    assert "may not set fetch.allow_private_hosts" in (state.message or ""), state.message
    assert http_server.hits(page) == hits  # the loopback page was never fetched
    assert not (pagereel_env / "out" / "opened").exists()
