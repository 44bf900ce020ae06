"""A picture whose host does not resolve is left out at once: one warning line, no retry, no traceback."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from prefect import flow

from flows.settings import load_settings
from flows.video_flow import configured_render_tasks
from tasks.errors import FetchError
from tasks.fetch import fetch_page
from tasks.images import fetch_picture
from tests.reliability.conftest import PYTHON, cli_env
from tests.reliability.helpers import SMALL_VIDEO, assert_valid_video

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

HOST = "pictures.invalid"  # RFC 2606: never resolves
PICTURE = f"http://{HOST}/harbour.jpg"


def _page(picture: str) -> str:
    sentences = " ".join(f"The harbour light number {n} turns slowly over the dark water of the bay." for n in range(8))
    return (f"<!doctype html><html lang='en'><head><title>Harbour lights</title></head><body><article>"
            f"<h1>Harbour lights</h1><p>{sentences}</p><figure><img src='{picture}' alt='harbour'></figure>"
            f"<p>{sentences}</p><p>{sentences}</p></article></body></html>")


def _run_count(state) -> int:  # noqa: ANN001 - a Prefect state
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_task_run(state.state_details.task_run_id).run_count


@pytest.mark.parametrize("private_hosts", ["1", "0"])
def test_the_picture_task_does_not_retry_a_name_that_does_not_resolve(pagereel_env: Path, prefect_api: str,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     private_hosts: str) -> None:
    # With private hosts allowed httpx resolves the name; without, the address guard does: both paths.
    monkeypatch.setenv("PAGEREEL_FETCH__ALLOW_PRIVATE_HOSTS", private_hosts)
    monkeypatch.setenv("PAGEREEL_FETCH__IMAGE_HOSTS", f'["{HOST}"]')
    settings = load_settings()
    picture = configured_render_tasks(settings)["picture"]

    @flow(name="one-picture")
    def one_picture(url: str):  # noqa: ANN202
        return picture(url, settings.fetch, return_state=True)

    state = one_picture(PICTURE)
    assert state.is_completed() and state.result() is None
    assert _run_count(state) == 1, "a name that does not resolve was retried"


def test_a_temporary_resolver_failure_is_not_retried_either(monkeypatch: pytest.MonkeyPatch) -> None:
    # EAI_AGAIN cannot be produced on demand here; the resolver's answer is the only stand-in.
    def no_answer(*args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_answer)
    for call in (lambda: fetch_picture(PICTURE), lambda: fetch_page(f"http://{HOST}/story")):
        with pytest.raises(FetchError, match=f"cannot resolve host {HOST}") as caught:
            call()
        assert not caught.value.transient


def test_a_video_with_an_unresolvable_picture_warns_once(pagereel_env: Path, prefect_api: str) -> None:
    page = pagereel_env / "harbour.html"
    page.write_text(_page(PICTURE), encoding="utf-8")
    env = cli_env(prefect_api, **SMALL_VIDEO, PAGEREEL_FETCH__IMAGE_HOSTS=f'["{HOST}"]',
                  PAGEREEL_FETCH__RETRY_BASE_S="1")
    done = subprocess.run([PYTHON, "-m", "flows.video_flow", str(page), "--workflow-id", "harbour", "--json"],
                          env=env, cwd=pagereel_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    mentions = [line for line in done.stderr.splitlines() if HOST in line]
    assert len(mentions) == 1 and "cannot resolve host" in mentions[0], done.stderr[-3000:]
    manifest = assert_valid_video(pagereel_env / "out" / "harbour")
    assert manifest["metrics"]["retries"].get("picture", 0) == 0
