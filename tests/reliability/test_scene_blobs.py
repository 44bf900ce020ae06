"""A scene's cached record stays small however long the scene: its PCM and MP4 lie beside it as checked blobs."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import av
import numpy as np
import pytest
import redis

from flows import cache
from flows.settings import load_settings
from flows.video_flow import _blobs_reachable, configured_render_tasks
from tasks import blobs
from tasks.models import Narration, RenderOptions, Scene, Segment
from tasks.render import SceneContext, render_scene
from tasks.spool import Spool

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

SR = 48_000
OPTIONS = RenderOptions(resolution=144, fps=4, preset="ultrafast")
SHORT = "A lamp at the harbour."
LONG = " ".join(["The keeper climbs the stair and trims the wick while the fog rolls over the reef."] * 3)


def _scene(text: str) -> Scene:
    return Scene(id="s1", kind="body", narration=text, caption="Harbour", hint_s=4.0)


def _run_scene(settings, text: str) -> dict:
    """Narrate and render one scene through the run's configured tasks, as the flow does; what came back."""
    from prefect import flow

    tasks = configured_render_tasks(settings)
    storage = tasks["render"].result_storage

    @flow
    def one_scene() -> dict:
        scene = _scene(text)
        narrated = tasks["narrate"](scene, voice="espeak:en", rate_wpm=170, sample_rate=SR, blobs=True,
                                    return_state=True)
        rendered = tasks["render"](scene, narrated.result(), OPTIONS, None, None,
                                   SceneContext(index=1, total=3), blobs=True, return_state=True)
        return {"narration": narrated.result(), "segment": rendered.result(),
                "keys": (cache.result_key(narrated), cache.result_key(rendered)),
                "states": (narrated.name, rendered.name)}

    return {**one_scene(), "storage": storage}


def _record_size(settings, key: str, client: redis.Redis | None) -> int:
    if client is not None:
        return len(client.get(key))
    return (settings.cache.dir / key).stat().st_size


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest, prefect_api: str) -> redis.Redis | None:
    """The result store of the test: the local folder, or a database of the session's own redis-server."""
    if request.param == "redis":
        return request.getfixturevalue("redis_db")
    request.getfixturevalue("pagereel_env")
    return None


def test_a_scenes_records_stay_small_however_long_the_scene(store: redis.Redis | None, tmp_path: Path) -> None:
    settings = load_settings()
    sizes, short_still = {}, b""
    for text in (SHORT, LONG):
        got = _run_scene(settings, text)
        narration, segment = got["narration"], got["segment"]
        assert isinstance(narration, blobs.StoredNarration) and isinstance(segment, blobs.StoredSegment)
        sizes[text] = [_record_size(settings, key, store) for key in got["keys"]]
        short_still = short_still if text == LONG else segment.still or b""
        assert got["states"] == ("Completed", "Completed")
        # The bytes are where the results are, for workers and the flow alike.
        if store is not None:
            assert store.exists(blobs.REDIS_PREFIX + narration.sha256, blobs.REDIS_PREFIX + segment.sha256) == 2
        else:
            assert (settings.cache.dir / blobs.BLOB_DIR / segment.sha256).is_file()
    long_scene = _run_scene(settings, LONG)
    assert long_scene["states"] == ("Cached", "Cached")
    narration, segment = long_scene["narration"], long_scene["segment"]
    assert narration.duration_s > 8.0  # the long scene's PCM is big next to its record
    # Before, each record held its scene's bytes in base64: the long scene's narration record was 1.3x its PCM.
    (short_narration, short_segment), (long_narration, long_segment) = sizes[SHORT], sizes[LONG]
    assert long_narration < narration.size / 8, f"{long_narration:,} bytes of record for {narration.size:,} of PCM"
    # A segment's record holds its thumbnail candidate (a 640-pixel PNG, whatever the scene's length), no more.
    assert long_segment - 4 / 3 * len(segment.still or b"") < 16 * 1024, f"{long_segment:,} bytes of record"
    assert long_narration < short_narration + 24 * 1024  # only the word timings grow with the scene
    assert short_segment - 4 / 3 * len(short_still) < 16 * 1024
    # What the flow spools is bit for bit what rendering the scene in memory gives.
    pcm = blobs.read(long_scene["storage"], narration.sha256, narration.size)
    inline = render_scene(_scene(LONG), Narration(scene_id="s1", pcm=pcm, sample_rate=SR, voice=narration.voice,
                                                  words=narration.words), OPTIONS, None, None,
                          SceneContext(index=1, total=3))
    (tmp_path / "spool").mkdir()
    with Spool(tmp_path / "spool", long_scene["storage"]) as spool:
        spooled = spool.add_segment(segment), spool.add_narration(narration)
        assert spooled[0].mp4 == inline.mp4 and spooled[1].load().pcm == pcm
        assert (spooled[0].still, spooled[0].frames) == (inline.still, inline.frames)


def test_a_record_whose_bytes_are_gone_is_computed_again(store: redis.Redis | None,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings()
    first = _run_scene(settings, SHORT)
    digest = first["segment"].sha256
    if store is not None:
        store.delete(blobs.REDIS_PREFIX + digest)
    else:
        (settings.cache.dir / blobs.BLOB_DIR / digest).unlink()
    with caplog.at_level(logging.WARNING, logger="pagereel.records"):
        again = _run_scene(settings, SHORT)
    assert again["states"] == ("Cached", "Completed")  # the narration's bytes are there; the segment is made again
    assert again["segment"] == first["segment"]
    assert "no longer stored" in caplog.text
    assert blobs.exists(again["storage"], digest)


def test_blobs_are_checked_when_read_and_cleared_with_the_cache(store: redis.Redis | None, tmp_path: Path) -> None:
    settings = load_settings()
    storage = cache.result_storage(settings)
    data = np.arange(300_000, dtype="<i2").tobytes()
    digest, size = blobs.put(storage, data)
    assert digest == hashlib.sha256(data).hexdigest() and size == len(data)
    assert blobs.read(storage, digest, size) == data
    forged = bytes(data[:-1]) + b"\x00"
    if store is not None:
        store.set(blobs.REDIS_PREFIX + digest, forged)
    else:
        (settings.cache.dir / blobs.BLOB_DIR / digest).write_bytes(forged)
    with pytest.raises(blobs.BlobMissing, match="damaged"):
        blobs.read(storage, digest, size)
    assert not blobs.exists(storage, digest)  # so a record naming it is a miss, and the bytes are made again
    assert blobs.put(storage, data) == (digest, size)
    with pytest.raises(blobs.BlobMissing):
        blobs.read(storage, hashlib.sha256(b"never stored").hexdigest(), 12)
    cache.clear_cache(settings)
    assert not blobs.exists(storage, digest)


def test_bytes_travel_in_the_records_when_the_flow_cannot_see_the_workers_store(pagereel_env: Path) -> None:
    local = load_settings()
    storage = cache.result_storage(local)
    assert _blobs_reachable(local, storage)  # thread runner: same disk
    assert _blobs_reachable(load_settings(runner={"kind": "dask"}), storage)  # a cluster started here
    remote = load_settings(runner={"kind": "dask", "address": "tcp://10.0.0.9:8786"})
    assert not _blobs_reachable(remote, storage)  # each worker's own disk: bytes stay in the records
    # Called outside a task run (or without blobs), the tasks' functions give the bytes themselves.
    from tasks.narrate import narrate_scene
    from tasks.render import render_scene_kept

    narration = narrate_scene(_scene(SHORT), voice="espeak:en", rate_wpm=170, sample_rate=SR, blobs=True)
    assert isinstance(narration, Narration)
    segment = render_scene_kept(_scene(SHORT), narration, OPTIONS, blobs=True)
    assert isinstance(segment, Segment)
    assert json.loads(segment.model_dump_json())["mp4"]  # base64 in the record, as before


@pytest.mark.slow
def test_workers_of_a_remote_cluster_keep_the_bytes_in_redis_for_the_flow(http_server, redis_db: redis.Redis,
                                                                          prefect_api: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask cluster the flow only knows by its address writes blobs to Redis, where the flow reads them."""
    from distributed import LocalCluster

    from flows.video_flow import run_video
    from tests.reliability.helpers import ARTICLE, SMALL_VIDEO, assert_valid_video

    for name, value in SMALL_VIDEO.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)  # the workers report to this session's API
    url = http_server.url(ARTICLE)
    reference = run_video(url, workflow_id="ref")
    redis_db.flushdb()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        state = run_video(url, workflow_id="remote",
                          overrides={"runner": {"kind": "dask", "address": cluster.scheduler_address}})
    assert "runner:dask" in state.optimizations_used and "cache:redis" in state.optimizations_used
    assert_valid_video(Path(state.video_path).parent)
    assert state.scenes == reference.scenes
    stored = {k.decode() for k in redis_db.scan_iter(match=blobs.REDIS_PREFIX + "*")}
    assert len(stored) >= 2 * len(state.scenes)  # every scene's PCM and MP4
    with av.open(state.video_path) as remote, av.open(reference.video_path) as local:
        assert remote.duration == local.duration
