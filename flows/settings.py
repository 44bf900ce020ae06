"""One `Settings` object: defaults, then an optional ``pagereel.toml``, then ``PAGEREEL_*`` variables.

Nested sections are set from the environment with a double underscore:
``PAGEREEL_FETCH__TIMEOUT_S=5``, ``PAGEREEL_CACHE__REDIS_URL=redis://127.0.0.1:6379/0``.
Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
import threading
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from tasks.errors import ConfigurationError
from tasks.models import FetchOptions, RenderOptions, RunnerKind, SpeechOptions, StoryboardOptions

DEFAULT_CONFIG_FILE = "pagereel.toml"


class RunnerSettings(BaseModel):
    """Where scenes run: threads (default), processes, a Dask or a Ray cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: RunnerKind = Field("thread", description="thread, process, dask or ray.")
    address: str | None = Field(None, description="Scheduler or cluster address; None starts a local one.")
    max_workers: int | None = Field(None, gt=0, le=256, description="Workers; None sizes to the machine.")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        # `runner = "dask"` in TOML or PAGEREEL_RUNNER=dask is the common case.
        return {"kind": value} if isinstance(value, str) else value


class CacheSettings(BaseModel):
    """Where task results are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Reuse results of earlier runs.")
    dir: Path = Field(Path(".pagereel/cache"), description="Local result store.")
    redis_url: str | None = Field(None, description="Shared result store, e.g. redis://host:6379/0.")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None


class MetricsSettings(BaseModel):
    """Prometheus exposition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="Serve metrics on `port` while a flow runs.")
    port: int = Field(9108, ge=0, le=65535, description="Port of the metrics endpoint; 0 picks a free one.")
    address: str = Field("0.0.0.0", description="Address the endpoint listens on (127.0.0.1: this host only).")
    pushgateway_url: str | None = Field(None, description="Push metrics here at the end of each run.")
    push_job: str = Field("pagereel", min_length=1, description="Job name the pushed metrics are grouped under.")


class TuningSettings(BaseModel):
    """The encoder tuning study (``python -m flows.tune_flow``) and where its render profiles live."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(8, ge=1, le=1000, description="Trials per tuning run.")
    min_ssim: float = Field(0.95, gt=0, le=1, description="Quality floor: SSIM of the luma against a lossless render.")
    storage: str | None = Field(
        None, description="Optuna storage URL (postgresql://..., a JournalStorage path); None: SQLite in profiles_dir."
    )
    study_name: str = Field("pagereel-encoder", min_length=1, description="Study to create or continue.")
    profiles_dir: Path = Field(Path(".pagereel/profiles"), description="Where render profiles are written.")
    profile_name: str = Field("tuned", pattern=r"^[A-Za-z0-9_-]{1,40}$", description="Name of the written profile.")
    clip_seconds: float = Field(3.0, gt=0.5, le=30, description="Length of the reference clip.")
    resolution: int = Field(720, ge=144, le=2160, description="Short side of the reference clip in pixels.")
    concurrency: int = Field(
        1, ge=1, le=64, description="Trials at once on the runner; above 1 they share cores and time each other."
    )
    bytes_slack: float = Field(
        0.10, ge=0, le=10, description="Choose the fastest trial whose bytes are within this share of the smallest."
    )
    seed: int | None = Field(None, description="Sampler seed, for repeatable studies.")


class Settings(BaseSettings):
    """Everything a run can be told, validated once."""

    model_config = SettingsConfigDict(
        env_prefix="PAGEREEL_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    fetch: FetchOptions = Field(default_factory=FetchOptions)
    storyboard: StoryboardOptions = Field(default_factory=StoryboardOptions)
    render: RenderOptions = Field(default_factory=RenderOptions)
    speech: SpeechOptions = Field(default_factory=SpeechOptions)
    runner: Annotated[RunnerSettings, NoDecode] = Field(default_factory=RunnerSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tuning: TuningSettings = Field(default_factory=TuningSettings)
    profile: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,40}$", description="Render profile from tuning.profiles_dir to apply."
    )
    out_dir: Path = Field(Path("out"), description="Where each run's folder is written.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Later sources lose: explicit arguments, then the environment, then the file.
        toml_file = _CONFIG_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


# The file is chosen per call of load_settings; pydantic-settings reads sources from the class.
_CONFIG_FILE: dict[str, Path | None] = {"path": None}
_CONFIG_LOCK = threading.Lock()


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "settings"
        value = item.get("input")
        shown = repr(value) if not isinstance(value, dict) else "a section"
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown setting {field!r}")
        else:
            parts.append(f"{field}={shown}: {item['msg']}")
    return "; ".join(parts)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, ``config_file`` (or ./pagereel.toml), env and overrides.

    Raises :class:`ConfigurationError` naming each bad field and its value.
    """
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigurationError(f"config file {str(path)!r} does not exist; check the --config path")
    else:
        candidate = Path(os.environ.get("PAGEREEL_CONFIG", DEFAULT_CONFIG_FILE))
        path = candidate if candidate.is_file() else None
    if path is not None:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    with _CONFIG_LOCK:
        _CONFIG_FILE["path"] = path
        try:
            return Settings(**overrides)
        except SettingsError as exc:
            raise ConfigurationError(f"invalid settings: {exc} ({exc.__cause__})") from None
        except ValidationError as exc:
            where = f" (from {path})" if path else ""
            raise ConfigurationError(f"invalid settings{where}: {_describe(exc)}") from None
        finally:
            _CONFIG_FILE["path"] = None
