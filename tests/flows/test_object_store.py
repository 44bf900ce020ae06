"""Outputs on an object store: S3 on a local S3-compatible server (moto's standalone server), through s3fs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from flows.outputs import OUTPUT_NAMES
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration]
s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "videos"
SMALL = {"PAGEREEL_RENDER__RESOLUTION": "144", "PAGEREEL_RENDER__FPS": "12", "PAGEREEL_RENDER__PRESET": "ultrafast",
         "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "15"}
# Slow enough that a kill lands while scenes render: one worker, 360p at 24 fps, 40 s.
SLOW = {"PAGEREEL_RENDER__RESOLUTION": "360", "PAGEREEL_RENDER__FPS": "24", "PAGEREEL_RENDER__PRESET": "ultrafast",
        "PAGEREEL_STORYBOARD__TARGET_DURATION_S": "40", "PAGEREEL_RUNNER__MAX_WORKERS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, pagereel_env: Path) -> Iterator[s3fs.S3FileSystem]:
    """A local S3 server with an empty bucket; the AWS variables in the environment point every client at it."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "pagereel", "AWS_SECRET_ACCESS_KEY": "pagereel-secret",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()  # moto keeps buckets per process
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    try:
        yield fs
    finally:
        server.stop()


def objects(fs: s3fs.S3FileSystem, prefix: str) -> dict[str, bytes]:
    fs.invalidate_cache()
    return {Path(key).name: fs.cat_file(key) for key in fs.find(f"{BUCKET}/{prefix}")}


def assert_valid_video(data: bytes, folder: Path) -> int:
    """Open a downloaded video with PyAV: H.264 + AAC, frames decoded; returns the frame count."""
    local = folder / "video.mp4"
    local.write_bytes(data)
    with av.open(str(local)) as container:
        assert {s.type: s.codec_context.name for s in container.streams} == {"video": "h264", "audio": "aac"}
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 0
    return frames


def _segments(cache_dir: Path) -> int:
    count = 0
    for path in cache_dir.glob("*"):
        try:
            count += b"tasks.blobs.StoredSegment" in path.read_bytes()
        except OSError:
            continue
    return count


@pytest.mark.usefixtures("prefect_api")
def test_a_run_writes_to_s3_and_a_killed_rerun_leaves_it_whole(s3, http_server, pagereel_env: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               prefect_api: str) -> None:
    from flows.video_flow import video_flow

    for name, value in SMALL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PAGEREEL_OUT_DIR", f"s3://{BUCKET}/runs")
    url = http_server.url("/pages/lighthouse-keeper.html")
    state = video_flow(url, workflow_id="on-s3")
    assert state.video_path == f"s3://{BUCKET}/runs/on-s3/video.mp4"
    assert state.storyboard_path == f"s3://{BUCKET}/runs/on-s3/storyboard.json"
    first = objects(s3, "runs/on-s3")
    assert sorted(first) == sorted(OUTPUT_NAMES)
    manifest = json.loads(first["manifest.json"])
    assert manifest["status"] == "completed" and manifest["video_path"] == state.video_path
    assert assert_valid_video(first["video.mp4"], pagereel_env) == round(state.duration_s * 12)
    assert not (pagereel_env / "s3:").exists()  # nothing went to a local folder named after the URL

    # A re-run of the same id with other settings (every scene renders again) is killed mid-render.
    env = {**os.environ, **SLOW, "PREFECT_API_URL": prefect_api, "PYTHONPATH": str(ROOT),
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    before = _segments(pagereel_env / "cache")
    child = subprocess.Popen([sys.executable, "-m", "flows.video_flow", url, "--workflow-id", "on-s3"],
                             env=env, cwd=pagereel_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ends = time.monotonic() + 150
        while _segments(pagereel_env / "cache") < before + 1 and child.poll() is None and time.monotonic() < ends:
            time.sleep(0.05)
        assert child.poll() is None, f"the run ended before it could be killed: {child.stderr.read()[-2000:]!r}"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()
    assert objects(s3, "runs/on-s3") == first  # no partial object, nothing of the killed run


@pytest.mark.slow  # a single run to S3 (above) runs on every `make test`; a Dask batch in `make soak`
def test_a_dask_batch_writes_every_video_to_s3(s3, http_server, pagereel_env: Path, prefect_api: str) -> None:
    urls = [http_server.url("/pages/lighthouse-keeper.html"), http_server.url("/pages/sourdough-steps.html")]
    env = {**os.environ, **SMALL, "PAGEREEL_RUNNER__MAX_WORKERS": "1", "PREFECT_API_URL": prefect_api,
           "PYTHONPATH": str(ROOT), "PREFECT_LOGGING_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "flows.batch_flow", *urls, "--runner", "dask",
                           "--out", f"s3://{BUCKET}/batch", "--json"],
                          env=env, cwd=pagereel_env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    items = json.loads(done.stdout)["items"]
    assert [i["status"] for i in items] == ["completed", "completed"]
    for item in items:
        prefix = f"batch/{item['workflow_id']}"
        assert item["video_path"] == f"s3://{BUCKET}/{prefix}/video.mp4"
        found = objects(s3, prefix)
        assert sorted(found) == sorted(OUTPUT_NAMES)
        manifest = json.loads(found["manifest.json"])
        assert "runner:dask" in manifest["optimizations_used"]
        assert assert_valid_video(found["video.mp4"], pagereel_env) > 0


def test_unknown_store_and_missing_bucket_are_refused_in_one_line(s3, pagereel_env: Path) -> None:
    from flows.outputs import check_out_dir
    from flows.settings import load_settings
    from tasks.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="ftp://"):
        load_settings(out_dir="ftp://host/videos")
    with pytest.raises(ConfigurationError, match="bucket 'no-such-bucket' does not exist"):
        check_out_dir(load_settings(out_dir="s3://no-such-bucket/videos").out_dir)
    check_out_dir(load_settings(out_dir=f"s3://{BUCKET}/videos").out_dir)
