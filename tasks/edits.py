"""User edits to a storyboard: parsed from JSON or YAML, validated, applied as a pure function.

An edits file looks like this (every key optional)::

    title: A better title
    voice: en-gb
    aspect: "9:16"
    theme: paper
    avatar: ada
    caption_style: karaoke
    scenes:
      s2: {narration: "Say this instead.", caption: "New caption"}
    drop: [s4]
    append:
      - {narration: "One more thing.", caption: "Bonus"}
    order: [title, s3, s2, s1, a1, closing]

Edits apply in that order: scene changes, drops, appends, then order. Scenes left out of
``order`` keep their relative order after the listed ones.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tasks.errors import EditError
from tasks.models import THEMES, Aspect, CaptionStyle, Scene, SceneKind, Storyboard
from tasks.text import TITLE_MIN_S, estimate_seconds, split_sentences, spoken_title

MAX_EDITS_BYTES = 1_000_000
#: Most characters of a bad value quoted in an error, and most problems named in one.
_QUOTE_CHARS = 60
_MAX_PROBLEMS = 5
#: Deepest nesting of lists and mappings accepted; real edits go four levels deep (scenes.s2.narration).
MAX_EDITS_DEPTH = 16
_SEXAGESIMAL_ASPECTS = {16 * 60 + 9: "16:9", 9 * 60 + 16: "9:16", 1 * 60 + 1: "1:1"}


class SceneEdit(BaseModel):
    """Changes to one existing scene."""

    model_config = ConfigDict(extra="forbid", strict=True)

    narration: str | None = Field(None, min_length=1, max_length=5000)
    caption: str | None = Field(None, max_length=120)
    image: str | None = None


class NewScene(BaseModel):
    """A scene added by the user."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    kind: SceneKind = "body"
    narration: str = Field(min_length=1, max_length=5000)
    caption: str = Field("", max_length=120)
    image: str | None = None


class StoryboardEdits(BaseModel):
    """Everything a user may change about a storyboard before it is rendered."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: str | None = Field(None, min_length=1, max_length=300)
    voice: str | None = Field(None, min_length=1, max_length=400)  # ENGINE:NAME; a Piper voice may be a path
    aspect: Aspect | None = None
    theme: str | None = None
    avatar: str | None = Field(None, min_length=1, max_length=1000)
    caption_style: CaptionStyle | None = None
    scenes: dict[str, SceneEdit] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list)
    append: list[NewScene] = Field(default_factory=list)
    order: list[str] | None = None

    @field_validator("aspect", mode="before")
    @classmethod
    def _unquoted_yaml_aspect(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 9:16 as the base-60 integer 556; take it as the user meant it.
        return _SEXAGESIMAL_ASPECTS.get(value, value) if isinstance(value, int) else value

    @field_validator("theme")
    @classmethod
    def _known_theme(cls, value: str | None) -> str | None:
        if value is not None and value not in THEMES:
            raise ValueError(f"must be one of {', '.join(THEMES)}")
        return value


def parse_edits(source: str | bytes | dict[str, Any] | StoryboardEdits | None) -> StoryboardEdits:
    """Read edits from JSON or YAML text, a mapping, or a model; raise :class:`EditError` if malformed."""
    if source is None:
        return StoryboardEdits()
    if isinstance(source, StoryboardEdits):
        return source
    data: Any = source
    if isinstance(source, bytes | str):
        text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
        if len(text) > MAX_EDITS_BYTES:
            raise EditError(f"the edits are {len(text)} characters long; at most {MAX_EDITS_BYTES} are accepted")
        data = _load_text(text)
    if data is None:
        return StoryboardEdits()
    _check_depth(data)
    if not isinstance(data, dict):
        raise EditError(f"edits must be a mapping of keys to changes, not a {type(data).__name__}")
    try:
        return StoryboardEdits.model_validate(data)
    except ValidationError as exc:
        raise EditError(f"invalid edits: {_describe(exc)}") from None


def load_edits_file(path: str | Path) -> StoryboardEdits:
    """Read an edits file (JSON or YAML)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_EDITS_BYTES:
            raise EditError(f"edits file {str(path)!r} is larger than {MAX_EDITS_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EditError(f"edits file {str(path)!r} does not exist; check the --edits path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EditError(f"edits file {str(path)!r} cannot be read: {exc}") from None
    return parse_edits(text)


def apply_edits(
    storyboard: Storyboard,
    edits: str | bytes | dict[str, Any] | StoryboardEdits | None,
    *,
    words_per_minute: float = 160.0,
    max_scenes: int | None = None,
    max_duration_s: float | None = None,
) -> Storyboard:
    """Return a new storyboard with ``edits`` applied; the input is left untouched.

    The result has at most ``max_scenes`` scenes and lasts at most ``max_duration_s`` (when given):
    appended scenes are rendered like any other, so edits may not grow a video without bound.
    """
    changes = parse_edits(edits)
    ids = [s.id for s in storyboard.scenes]
    scenes = _edited_scenes(list(storyboard.scenes), ids, changes.scenes, words_per_minute,
                            storyboard.lang)
    scenes = _dropped(scenes, ids, changes.drop)
    _check_scene_count(len(scenes) + len(changes.append), max_scenes)
    scenes += _appended(changes.append, {s.id for s in scenes} | set(changes.drop), words_per_minute,
                        storyboard.lang)
    if changes.order is not None:
        scenes = _ordered(scenes, changes.order)
    if not scenes:
        raise EditError("invalid edits: they drop every scene; keep at least one")
    scenes = _retitle(scenes, set(ids), changes.title, changes.scenes, words_per_minute, storyboard.lang)
    total_s = sum(s.hint_s for s in scenes)
    # The writer fits its draft to a target of at most an hour and may run a little over: the cap
    # holds what edits add, so a draft of 3,634 s with no edits is not "invalid edits".
    drafted_s = sum(s.hint_s for s in storyboard.scenes)
    if max_duration_s is not None and total_s > max(max_duration_s, drafted_s):
        raise EditError(f"invalid edits: the video would last about {total_s:,.0f} s, more than "
                        f"storyboard.max_duration_s ({max_duration_s:g} s); shorten or drop scenes, or raise it")
    top = changes.model_dump(include={"title", "voice", "aspect", "theme", "avatar", "caption_style"},
                             exclude_none=True)
    return storyboard.model_copy(update={**top, "scenes": scenes})


def _edited_scenes(scenes: list[Scene], ids: list[str], edited: dict[str, SceneEdit],
                   words_per_minute: float, lang: str | None = None) -> list[Scene]:
    """The scenes with each scene edit applied in place; new words are the user's, timed afresh."""
    for scene_id, change in edited.items():
        if scene_id not in ids:
            raise EditError(_unknown("scenes", scene_id, ids))
        i = ids.index(scene_id)
        update = change.model_dump(exclude_unset=True)
        if "narration" in update:
            update["hint_s"] = estimate_seconds(update["narration"], words_per_minute, lang)
            update.update(writer=None, sources=None, repair=None)  # the words are the user's now
            update.update(_marks_of(scenes[i], update["narration"]))
        scenes[i] = scenes[i].model_copy(update=update)
    return scenes


def _marks_of(scene: Scene, narration: str) -> dict[str, Any]:
    """The list items and key figure a scene shows once its narration is ``narration``: the new words'.

    A list's bullets are the new narration's sentences, less those the scene said besides its items
    (an opening line left as it was); fewer than two make it plain text. A key figure is the new
    narration's, if it has one.
    """
    from tasks.suggest import MAX_ITEMS, key_figure  # the writer's own rules, loaded only when needed

    marks: dict[str, Any] = {}
    if scene.layout == "list" or scene.items:
        besides = set(split_sentences(scene.narration)) - set(scene.items or [])
        items = [s for s in split_sentences(narration) if s not in besides][:MAX_ITEMS]
        marks = {"layout": "list", "items": items} if len(items) >= 2 else {"layout": None, "items": None}
    if scene.figure or scene.layout == "figure":
        figure = key_figure(narration)
        marks["figure"] = figure
        if scene.layout == "figure" and not figure:
            marks["layout"] = None
    return marks


def _dropped(scenes: list[Scene], ids: list[str], drop: list[str]) -> list[Scene]:
    for scene_id in drop:
        if scene_id not in ids:
            raise EditError(_unknown("drop", scene_id, ids))
    return [s for s in scenes if s.id not in set(drop)]


def _appended(new_scenes: list[NewScene], taken: set[str], words_per_minute: float,
              lang: str | None = None) -> list[Scene]:
    """The appended scenes, each with a free id (or its own, when no other scene has it)."""
    free_ids = _free_ids(taken)
    out = []
    for n, new in enumerate(new_scenes, start=1):
        new_id = new.id or next(free_ids)
        if new_id in taken:
            raise EditError(f"invalid edits: append[{n - 1}].id {new_id!r} is already used by another scene")
        taken.add(new_id)
        out.append(Scene(id=new_id, kind=new.kind, narration=new.narration, caption=new.caption, image=new.image,
                         hint_s=estimate_seconds(new.narration, words_per_minute, lang)))
    return out


def _ordered(scenes: list[Scene], order: list[str]) -> list[Scene]:
    """Scenes in the given order; those it does not name follow, in their own order."""
    present = [s.id for s in scenes]
    seen: set[str] = set()
    for scene_id in order:
        if scene_id not in present:
            raise EditError(_unknown("order", scene_id, present))
        if scene_id in seen:
            raise EditError(f"invalid edits: order lists scene {scene_id!r} twice")
        seen.add(scene_id)
    rank = {scene_id: i for i, scene_id in enumerate(order)}
    return sorted(scenes, key=lambda s: rank.get(s.id, len(rank)))


def _retitle(scenes: list[Scene], drafted: set[str], title: str | None, edited: dict[str, SceneEdit],
             words_per_minute: float, lang: str | None = None) -> list[Scene]:
    """A new title is what the drafted title card shows and says, unless the edits give it other words."""
    if title is None:
        return scenes
    out = []
    for scene in scenes:
        own_words = scene.id in edited and "narration" in edited[scene.id].model_fields_set
        if scene.kind == "title" and scene.id in drafted and not own_words:
            narration = spoken_title(title)
            scene = scene.model_copy(update={
                "narration": narration,
                "hint_s": max(TITLE_MIN_S, estimate_seconds(narration, words_per_minute, lang)),
            })
        out.append(scene)
    return out
class _EditsLoader(yaml.SafeLoader):
    """Safe YAML without aliases: ``*name`` repeats a node, and repeats of repeats grow exponentially.

    Nine levels of nine aliases (a file of a few hundred bytes) stand for billions of items; edits
    never need them, so the first alias is refused before anything is built.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            mark = event.start_mark
            raise EditError(f"edits may not use YAML aliases (*{str(event.anchor)[:40]} at line {mark.line + 1}, "
                            f"column {mark.column + 1}); write each value out")
        return super().compose_node(parent, index)


def _check_depth(data: Any) -> None:
    """Refuse lists and mappings nested deeper than :data:`MAX_EDITS_DEPTH`, without recursing.

    A container met again at the same depth is not walked again: a mapping handed over by a caller
    may share one list many times (as a parsed alias bomb does), standing for billions of items.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    seen: set[tuple[int, int]] = set()
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list | tuple) and (id(value), depth) not in seen:
            if depth > MAX_EDITS_DEPTH:
                raise EditError(f"edits are nested more than {MAX_EDITS_DEPTH} levels deep; "
                                "an edits file needs four at most")
            seen.add((id(value), depth))
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))


def _load_text(text: str) -> Any:
    # Both parsers recurse once per level of nesting; what they can read is then held to MAX_EDITS_DEPTH.
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except RecursionError:
            raise EditError("edits are nested too deeply to read; an edits file needs four levels at most") from None
        except json.JSONDecodeError as exc:
            raise EditError(f"edits are not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    try:
        return yaml.load(text, Loader=_EditsLoader)  # noqa: S506 - a SafeLoader that also refuses aliases
    except RecursionError:
        raise EditError("edits are nested too deeply to read; an edits file needs four levels at most") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise EditError(f"edits are not valid YAML or JSON{where}: {getattr(exc, 'problem', exc)}") from None


def _describe(error: ValidationError) -> str:
    parts = []
    problems = error.errors(include_url=False)
    for item in problems[:_MAX_PROBLEMS]:
        key = ".".join(str(p) for p in item["loc"])[:_QUOTE_CHARS] or "edits"
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown key {key!r}")
        else:
            parts.append(f"{key!r} {item['msg'].lower()} (got {_quote(item.get('input'))})")
    if len(problems) > _MAX_PROBLEMS:
        parts.append(f"and {len(problems) - _MAX_PROBLEMS} more")
    return "; ".join(parts)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = _QUOTE_CHARS


def _quote(value: Any) -> str:
    """A short repr of ``value`` whose cost is bounded whatever its size (never the whole repr, then cut)."""
    text = _REPR.repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


def _unknown(key: str, scene_id: str, ids: list[str]) -> str:
    return f"invalid edits: {key} names scene {scene_id!r}, which does not exist; scenes are {', '.join(ids)}"


def _check_scene_count(count: int, max_scenes: int | None) -> None:
    if max_scenes is not None and count > max_scenes:
        raise EditError(f"invalid edits: they make {count:,} scenes, and a video has at most {max_scenes} "
                        "(storyboard.max_scenes, up to 60); drop scenes or append fewer")


def _free_ids(taken: set[str]) -> Iterator[str]:
    """a1, a2, ... skipping ids in ``taken`` (read as it grows): linear in the ids handed out and skipped."""
    n = 0
    while True:
        n += 1
        if f"a{n}" not in taken:
            yield f"a{n}"
