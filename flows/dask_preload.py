"""What pagereel runs inside a Dask cluster: the check that a worker reaches the Prefect API, and a preload.

Start the scheduler and the workers with the preload, as README's "Running at scale" does::

    dask scheduler --port 8786 --preload flows.dask_preload
    dask worker tcp://SCHEDULER:8786 --nthreads 1 --preload flows.dask_preload

A Dask scheduler unpickles every graph it is sent: the first scene of the first video makes it
import Prefect's task engine and pagereel's stages (2-3.5 s on a 2-core machine), on its event loop,
while no worker gets any task. A fresh worker does the same as it unpickles its first task, then
loads the speech engine, the compiled kernels, PyAV and the fonts in its first scenes. With the
preload, :func:`dask_setup` does this when the process starts, before it serves anything: the
scheduler imports the modules, a worker also narrates and renders one tiny scene.

This module imports nothing heavy at import time: the flow's process registers
:class:`PrefectApiCheck` on every worker of a cluster it uses (``flows.dask_workers``), and a
fresh worker unpickling it imports only this module.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from distributed.diagnostics.plugin import WorkerPlugin

log = logging.getLogger("pagereel.dask_workers")

#: Longest a worker waits for the API's TCP port when it joins.
CONNECT_TIMEOUT_S = 2.0


def api_unreachable(api_url: str) -> str | None:
    """Why a TCP connection to the API at ``api_url`` cannot be opened from here, or None when it can."""
    parts = urlsplit(api_url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "not a URL"
    if not parts.hostname:
        return "not a URL"
    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


class PrefectApiCheck(WorkerPlugin):
    """On each worker, once: can it reach the Prefect API the flow's tasks will report to?"""

    name = "pagereel-prefect-api"

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    def setup(self, worker: Any) -> None:
        why = api_unreachable(self.api_url)
        if why is not None:
            log.warning("this Dask worker (%s on host %s) cannot reach the Prefect API at %s (%s): its task runs "
                        "will fail; set PREFECT_API_URL where the flow runs to a server every worker reaches",
                        getattr(worker, "address", "?"), socket.gethostname(), self.api_url, why)


def import_stages() -> None:
    """Import what unpickling one of pagereel's submitted tasks imports: Prefect's task engine and the stages."""
    import prefect.task_engine  # noqa: F401
    import prefect_dask  # noqa: F401

    import tasks.render_stages  # noqa: F401  the narrate, render and picture tasks, and what they import


def ready() -> None:
    """Import the stages, then narrate and render one tiny scene."""
    import_stages()
    from tasks.models import RenderOptions, Scene
    from tasks.narrate import narrate
    from tasks.render import render_scene

    scene = Scene(id="ready", kind="body", narration="Ready.", caption="Ready", hint_s=0.5)
    narration = narrate(scene.narration, scene_id=scene.id, voice="en")
    render_scene(scene, narration, RenderOptions(width=64, height=36, fps=5, preset="ultrafast"))


def dask_setup(server: Any) -> None:
    """Dask's preload hook, in a scheduler or a worker as it starts; a failure is logged, never fatal.

    A scheduler or worker that could not get ready still works: its first video loads what it needs.
    """
    from distributed import Scheduler

    what = "scheduler" if isinstance(server, Scheduler) else "worker"
    t0 = time.perf_counter()
    try:
        if what == "scheduler":
            import_stages()
        else:
            from flows.runners import share_tls_context

            share_tls_context()  # each task run makes a Prefect client: no CA bundle read for each
            ready()
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("this Dask %s could not load pagereel's stages (%s: %s); its first video will load them",
                    what, type(exc).__name__, exc)
        return
    log.info("Dask %s ready for pagereel in %.1f s", what, time.perf_counter() - t0)
