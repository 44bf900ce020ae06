"""How much of a video's body shows nothing but the backdrop, with the article's pictures unavailable.

    python benchmarks/layouts.py [PAGE_OR_FOLDER ...] [--resolution 144]
    python benchmarks/layouts.py --speed [--rounds 3]

Each saved page (default: ``tests/pages/`` and the saved real pages in ``../shared/samples/pages/``
when present) is cut into a storyboard by the default writer, each body scene is narrated
(espeak-ng) and planned without its picture, and the frames that show no layout (no quote, list,
figure or section card over the backdrop) are counted. The table gives, per page, the body
seconds, the seconds with nothing but the backdrop and caption, their share, and the layouts the
scenes got. Before layouts existed every one of those seconds showed the bare backdrop (100 %).
The script exits non-zero when a page's share is above ``--most`` (default 20 %).

``--speed`` times instead one 720p30 list scene without a picture (a section card, then bullets)
rendered with its layout and, in alternating rounds, with the layout left out: the cost of the
layout is drawing it once per scene and blending one more layer per frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import tasks.scene_plan  # noqa: E402
from tasks.errors import ExtractionError  # noqa: E402
from tasks.extract import extract_article  # noqa: E402
from tasks.models import RenderOptions, Scene  # noqa: E402
from tasks.narrate import narrate_scene  # noqa: E402
from tasks.render import SceneContext, render_scene  # noqa: E402
from tasks.scene_layouts import is_layout, layout_of  # noqa: E402
from tasks.scene_plan import ScenePlan, plan_scene  # noqa: E402
from tasks.suggest import suggest_storyboard  # noqa: E402

ROOT = _HERE.parent
FOLDERS = (ROOT / "tests" / "pages", ROOT.parent / "shared" / "samples" / "pages")


@dataclass(frozen=True)
class PageShare:
    """A page's body seconds, the seconds that show no layout, and the layouts its scenes got."""

    name: str
    body_s: float
    bare_s: float
    layouts: Counter

    @property
    def share(self) -> float:
        return self.bare_s / self.body_s if self.body_s else 0.0


def bare_frames(plan: ScenePlan) -> int:
    """Frames of ``plan`` in which no layout layer shows."""
    return sum(1 for k in range(plan.frames) if not any(is_layout(layer.name) and layer.shows_at(k)
                                                        for layer in plan.layers))


def page_share(path: Path, options: RenderOptions) -> PageShare | None:
    """The share for the page at ``path`` (None: the page has no article to narrate)."""
    try:
        article = extract_article(path.read_text(encoding="utf-8", errors="replace"), f"https://example.org/{path.name}")
        board = suggest_storyboard(article)
    except ExtractionError:
        return None
    body = [s for s in board.scenes if s.kind == "body"]
    body_s = bare_s = 0.0
    layouts: Counter = Counter()
    for n, scene in enumerate(body, start=1):
        narration = narrate_scene(scene, voice="en", rate_wpm=options.speech_rate_wpm)
        plan = plan_scene(scene, narration, options, SceneContext(index=n, total=len(board.scenes)))
        body_s += plan.frames / plan.fps
        bare_s += bare_frames(plan) / plan.fps
        layouts.update([layout_of(scene) or "none"] + (["section"] if scene.section else []))
    return PageShare(path.name, body_s, bare_s, layouts)


def pages(arguments: list[str]) -> list[Path]:
    """The pages named (files, or folders of ``*.html``), or the default folders that exist."""
    out: list[Path] = []
    for target in [Path(a) for a in arguments] or [f for f in FOLDERS if f.is_dir()]:
        if target.is_dir():
            out += sorted(target.glob("*.html"))
        elif target.is_file():
            out.append(target)
        else:
            raise SystemExit(f"{target} is neither a saved page nor a folder of them; name .html files or folders")
    return out


SPEED_TEXT = ("Keeping a starter alive takes three habits. Feed it flour and water every day, at the same hour. "
              "Keep it somewhere warm but out of direct sunlight. Discard half of it before each feeding, "
              "so that the yeast always has fresh food and the jar never overflows.")
SPEED_ITEMS = ["Feed it flour and water every day, at the same hour.",
               "Keep it somewhere warm but out of direct sunlight.",
               "Discard half of it before each feeding, so that the yeast always has fresh food and the jar never "
               "overflows."]


def speed(rounds: int) -> None:
    """Render the same pictureless scene with and without its layout, in alternating rounds."""
    scene = Scene(id="s1", narration=SPEED_TEXT, caption="Starter care", hint_s=10, layout="list",
                  items=SPEED_ITEMS, section="Keeping a starter")
    options = RenderOptions(preset="veryfast")
    narration = narrate_scene(scene, voice="en", rate_wpm=options.speech_rate_wpm)
    with_layout = tasks.scene_plan.scene_layout
    times: dict[str, list[float]] = {"with layout": [], "without": []}
    for _ in range(rounds + 1):  # the first round warms the kernels up and is not counted
        for name, layout in (("with layout", with_layout), ("without", lambda *args: [])):
            tasks.scene_plan.scene_layout = layout
            start = time.perf_counter()
            segment = render_scene(scene, narration, options, context=SceneContext(index=1, total=3))
            times[name].append(time.perf_counter() - start)
    tasks.scene_plan.scene_layout = with_layout
    on, off = (statistics.median(times[n][1:]) for n in ("with layout", "without"))
    print(f"{segment.frames} frames 720p30, {rounds} rounds: with layout {on:.2f} s, without {off:.2f} s "
          f"(median), ratio {on / off:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="saved pages or folders of them (default: tests/pages and samples)")
    parser.add_argument("--resolution", type=int, default=144, help="short side of the planned frames")
    parser.add_argument("--most", type=float, default=0.2, help="largest share of bare seconds accepted per page")
    parser.add_argument("--speed", action="store_true", help="time a scene with and without its layout instead")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --speed")
    args = parser.parse_args(argv)
    if args.speed:
        speed(args.rounds)
        return 0
    options = RenderOptions(resolution=args.resolution, fps=15)
    print(f"{'page':42} {'body s':>7} {'bare s':>7} {'bare now':>8} {'before':>7}  layouts")
    worst = 0.0
    for path in pages(args.pages):
        result = page_share(path, options)
        if result is None:
            print(f"{path.name:42} no article")
            continue
        worst = max(worst, result.share)
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(result.layouts.items()))
        print(f"{result.name:42} {result.body_s:7.1f} {result.bare_s:7.1f} {result.share:8.1%} {1:7.0%}  {kinds}")
    print(f"largest share of bare body seconds: {worst:.1%} (at most {args.most:.0%} wanted)")
    return 0 if worst <= args.most else 1


if __name__ == "__main__":
    raise SystemExit(main())
