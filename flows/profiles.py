"""Render profiles: encoder settings chosen by ``tune_flow``, applied to a run with ``--profile NAME``.

A profile is ``tuning.profiles_dir/NAME.json``: the chosen render settings and the study's figures
for them. It fills in the encoder settings a user left at their defaults and never overrides one
the user set (in ``pagereel.toml``, ``PAGEREEL_RENDER__*`` or an override): a profile is tuned on
one reference clip, so a setting someone pinned on purpose (a higher quality for an archive, one
thread on a shared host) must not change behind their back.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.settings import Settings
from tasks.errors import ConfigurationError
from tasks.files import atomic_write
from tasks.models import RenderOptions

#: The encoder settings a profile carries (what tune_flow chooses; not the look of the video).
PROFILE_FIELDS = ("crf", "preset", "keyframe_interval", "threads")
#: Everything a profile may set: the encoder settings and the resolution they were chosen for.
PRESET_FIELDS = (*PROFILE_FIELDS, "resolution")
#: Runs at this resolution or more take the ``1080p`` profile's encoder settings when they name no profile.
HD_RESOLUTION = 1080


class RenderProfile(BaseModel):
    """One named set of encoder settings and how it scored."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    render: dict[str, Any]
    study: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


#: Quality presets that come with pagereel: ``--profile 1080p`` renders 1080p (1920x1080, 1080x1920 or
#: 1080x1080) with encoder settings chosen for it; a profile of the same name in ``tuning.profiles_dir``
#: (``python -m flows.tune_flow --name 1080p`` with ``tuning.resolution = 1080``) takes its place.
BUILTIN_PROFILES: dict[str, RenderProfile] = {
    "720p": RenderProfile(name="720p", render={"resolution": 720}, study={"note": "the defaults"}),
    "1080p": RenderProfile(
        name="1080p",
        render={"resolution": 1080, "preset": "veryfast", "crf": 27, "keyframe_interval": None, "threads": 0},
        # python -m flows.tune_flow --trials 8 --name 1080p with tuning.resolution = 1080 (the 3 s clip of
        # examples/article.html): every trial met the floor; the smallest file was crf 27, veryfast, with
        # keyframes every 15 frames (SSIM 0.991). Keyframes that close cost little on a 3 s clip but made
        # benchmarks/render.py's 10 s scene 2.3x larger (1.27 MB against 0.55 MB) in the same time, so
        # x264 places them itself, as at 720p.
        study={"trial": 3, "ssim": 0.990669, "bytes": 278493, "min_ssim": 0.95, "trials": 8, "feasible": 8,
               "clip": "examples/article.html@3s:1920x1080@30", "defaults_bytes": 289594},
    ),
}


def profile_path(settings: Settings, name: str) -> Path:
    return Path(settings.tuning.profiles_dir).expanduser() / f"{name}.json"


def known_profiles(settings: Settings) -> list[str]:
    """Names of the profiles in the profiles folder (the built-in ones are :data:`BUILTIN_PROFILES`)."""
    folder = Path(settings.tuning.profiles_dir).expanduser()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def write_profile(settings: Settings, profile: RenderProfile) -> Path:
    """Write ``profile`` atomically into the profiles folder; its path."""
    unknown = set(profile.render) - set(PRESET_FIELDS)
    if unknown:
        raise ConfigurationError(f"a profile holds only {', '.join(PRESET_FIELDS)}, not {', '.join(sorted(unknown))}")
    path = profile_path(settings, profile.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, profile.model_dump_json(indent=2))


def load_profile(settings: Settings, name: str) -> RenderProfile:
    """The profile called ``name``; a clear error naming the known ones if there is none."""
    path = profile_path(settings, name)
    if not path.is_file():
        if name in BUILTIN_PROFILES:
            return BUILTIN_PROFILES[name]
        known = known_profiles(settings)
        listed = ", ".join(known) if known else "none yet (run python -m flows.tune_flow to make one)"
        raise ConfigurationError(f"unknown render profile {name!r} in {path.parent}; known profiles: {listed} "
                                 f"(built in: {', '.join(BUILTIN_PROFILES)})")
    try:
        profile = RenderProfile.model_validate_json(path.read_text(encoding="utf-8"))
        RenderOptions(**{k: v for k, v in profile.render.items() if k in PRESET_FIELDS})
    except (ValidationError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"render profile {str(path)!r} is not valid: {exc}; tune again or delete it") from None
    return profile


def apply_profile(settings: Settings) -> Settings:
    """``settings`` with its profile's settings under the ones the user set explicitly.

    A run at 1080p or more that names no profile takes the ``1080p`` profile's encoder settings.
    """
    name = settings.profile
    if not name and settings.render.resolution >= HD_RESOLUTION and settings.render.width is None:
        name = "1080p"
    if not name:
        return settings
    profile = load_profile(settings, name)
    pinned = settings.render.model_fields_set | ({"resolution"} if not settings.profile else set())
    update = {k: v for k, v in profile.render.items() if k in PRESET_FIELDS and k not in pinned}
    render = RenderOptions.model_validate({**settings.render.model_dump(exclude_unset=True), **update})
    return settings.model_copy(update={"render": render})


def redacted(url: str | None) -> str | None:
    """``url`` without its password, for files and logs."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
