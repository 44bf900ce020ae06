"""One `Settings` object: defaults, then an optional ``pagereel.toml``, then ``PAGEREEL_*`` variables.

Nested sections are set from the environment with a double underscore:
``PAGEREEL_FETCH__TIMEOUT_S=5``, ``PAGEREEL_CACHE__REDIS_URL=redis://127.0.0.1:6379/0``.
Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import json
import os
import threading
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from tasks.errors import ConfigurationError
from tasks.models import FetchOptions, LLMOptions, RenderOptions, RunnerKind, SpeechOptions, StoryboardOptions
from tasks.writers import WRITERS

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
        # `RunnerSettings("dask")`-style values; settings sources turn names into sections before merging.
        return _runner_section(value)


def _runner_section(value: Any) -> Any:
    """``"dask"`` (TOML ``runner = "dask"``, PAGEREEL_RUNNER=dask) is short for ``{"kind": "dask"}``."""
    return {"kind": value} if isinstance(value, str) else value


class _RunnerByName(PydanticBaseSettingsSource):
    """A source whose ``runner = "dask"`` becomes a section, so another source's ``runner.address`` merges in."""

    def __init__(self, source: PydanticBaseSettingsSource) -> None:
        super().__init__(source.settings_cls)
        self._source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self._source()
        if "runner" in values:
            values = {**values, "runner": _runner_section(values["runner"])}
        return values


class _EnvSource(EnvSettingsSource):
    """PAGEREEL_* variables, where PAGEREEL_RUNNER=dask and PAGEREEL_RUNNER__ADDRESS=... combine."""

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool) -> Any:
        if field_name == "runner" and isinstance(value, str):
            # pydantic-settings keeps a plain value and drops the nested variables; merge them instead.
            nested = self.explode_env_vars(field_name, field, self.env_vars)
            return {**nested, "kind": value}
        return super().prepare_field_value(field_name, field, value, value_is_complex)


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
    address: str = Field("127.0.0.1", description="Address the endpoint listens on (0.0.0.0: every interface).")
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


class ReviewSettings(BaseModel):
    """Review of the storyboard before rendering (``review`` parameter, ``--review``): how long a run waits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="Wait for a person to approve or edit each storyboard before rendering.")
    timeout_s: int = Field(86400, ge=10, le=30 * 86400, description="How long a run waits for an answer.")
    on_timeout: Literal["stop", "render"] = Field(
        "stop", description="When nobody answers: stop (the run fails, nothing rendered) or render the storyboard "
                            "as it is. A deployment run that stops suspends and frees its worker while it waits; "
                            "one that renders keeps its process, which renders when the time is up.")
    poll_s: int = Field(5, ge=1, le=600, description="How often a waiting process asks the API for the answer.")


class LLMSettings(LLMOptions):
    """The ``[llm]`` section: the llm script writer's endpoint. Its key comes from the environment only."""

    api_key: SecretStr | None = Field(
        None, exclude=True, description="Set PAGEREEL_LLM__API_KEY; the writer reads it there, never from here."
    )


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
    out_dir: Path | str = Field(
        Path("out"), description="Where each run's folder is written: a folder, or s3://, gs://, az:// URL."
    )

    @field_validator("out_dir", mode="before")
    @classmethod
    def _out_dir(cls, value: Any) -> Any:
        # An object-store URL stays a string (a Path would fold "s3://b" into "s3:/b"); anything else is a folder.
        if isinstance(value, str) and "://" in value:
            from flows.outputs import OBJECT_STORES

            if value.split("://", 1)[0].lower() not in OBJECT_STORES:
                known = ", ".join(f"{s}://" for s in OBJECT_STORES)
                raise ValueError(f"must be a folder or an object-store URL ({known})")
            return value
        return Path(value) if isinstance(value, str) else value
    llm: LLMSettings = Field(default_factory=LLMSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    out_url: str | None = Field(
        None, pattern=r"^https?://", description="Base URL where out_dir's run folders are served (a web server "
        "over the folder, or the bucket's URL): the Prefect UI's links and thumbnail use it. None: paths only.")

    @model_validator(mode="before")
    @classmethod
    def _llm_for_the_writer(cls, data: Any) -> Any:
        # Writers see only their options: the [llm] section (less its key) travels in storyboard.llm.
        if not isinstance(data, dict) or data.get("llm") is None:
            return data
        llm, story = data["llm"], data.get("storyboard") or {}
        llm = llm.model_dump() if isinstance(llm, BaseModel) else {k: v for k, v in dict(llm).items() if k != "api_key"}
        story = story.model_dump() if isinstance(story, BaseModel) else dict(story)
        return {**data, "storyboard": {**story, "llm": llm}}

    @field_validator("storyboard")
    @classmethod
    def _known_writer(cls, value: StoryboardOptions) -> StoryboardOptions:
        if value.writer not in WRITERS:
            raise ValueError(f"writer must be one of {', '.join(sorted(WRITERS))}, not {value.writer!r}")
        return value

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
        env = _EnvSource(settings_cls)  # the prefix and delimiter come from model_config
        sources: list[PydanticBaseSettingsSource] = [_RunnerByName(init_settings), env]
        if toml_file is not None:
            sources.append(_RunnerByName(TomlConfigSettingsSource(settings_cls, toml_file=toml_file)))
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
        elif isinstance(value, dict) and item["type"] == "value_error":  # fields of one section that disagree
            parts.append(f"{field}: {item['msg'].removeprefix('Value error, ')}")
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


# --------------------------------------------------------------------------- settings handed to a run

#: The settings a command built, with the arguments it built them from (see :func:`handing_down`).
_HANDED_DOWN: ContextVar[tuple[str | None, str, Settings] | None] = ContextVar("pagereel_settings", default=None)


def _arguments_key(config_file: str | Path | None, overrides: Mapping[str, Any] | None) -> tuple[str | None, str]:
    return (str(config_file) if config_file is not None else None,
            json.dumps(overrides or {}, sort_keys=True, default=str))


@contextmanager
def handing_down(settings: Settings, config_file: str | Path | None,
                 overrides: Mapping[str, Any] | None) -> Iterator[None]:
    """Within the block, a flow called with ``config_file`` and ``overrides`` uses ``settings`` as they are.

    A command builds its settings once, checks them before any server starts, and hands them to
    the flow it calls (and the flow to its subflows) instead of each building them again. A flow
    called with other arguments, or outside the block (a deployment run on a worker), builds its own.
    """
    token = _HANDED_DOWN.set((*_arguments_key(config_file, overrides), settings))
    try:
        yield
    finally:
        _HANDED_DOWN.reset(token)


def handed_down(config_file: str | Path | None, overrides: Mapping[str, Any] | None) -> Settings | None:
    """The settings handed down for exactly these arguments (see :func:`handing_down`), else None."""
    given = _HANDED_DOWN.get()
    if given is None or given[:2] != _arguments_key(config_file, overrides):
        return None
    return given[2]


# --------------------------------------------------------------------------- what a run may choose

#: The settings a deployment run's parameters may set: what a user chooses about a video. Everything
#: else guards the machine the worker runs on (which hosts and files may be read, where results,
#: outputs and metrics go, which cluster runs the work, how much one run may take) and comes only
#: from the worker's pagereel.toml and PAGEREEL_* environment.
RUN_CHOICES: dict[str, frozenset[str] | None] = {
    "storyboard": frozenset({"target_duration_s", "max_scenes", "min_scenes", "words_per_minute", "language", "writer",
                             "min_article_words"}),
    "render": frozenset({"aspect", "width", "height", "resolution", "fps", "theme", "caption_style", "crf", "preset",
                         "keyframe_interval", "voice", "speech_rate_wpm"}),
    "tuning": frozenset({"trials", "min_ssim", "clip_seconds", "resolution", "bytes_slack", "seed", "study_name",
                         "profile_name"}),
    "profile": None,  # a name, looked up in the worker's tuning.profiles_dir
}


def deployment_run() -> bool:
    """Whether the flow running now was started from a deployment (or is a subflow of such a run)."""
    import prefect.context
    from prefect.runtime import deployment

    # The run in hand says so itself; a subflow asks Prefect's engine, which marks a deployment's run
    # and every subflow run inside it in the run's context. Only without either is the API asked
    # (``deployment.id`` reads the flow run back: a round trip per video of a batch before its first stage).
    context = prefect.context.FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is not None and run.deployment_id is not None:
        return True
    if run is not None and run.parent_task_run_id is None:
        return False
    marked = getattr(prefect.context, "_deployment_id", None)
    if marked is not None and run is not None:
        return marked.get() is not None
    try:
        return deployment.id is not None
    except Exception:  # noqa: BLE001 - no API to ask: not a deployment run of this process
        return False


def check_run_parameters(overrides: Mapping[str, Any] | None, config_file: str | None) -> None:
    """In a deployment run, refuse parameters that would change a setting that guards the machine.

    A command-line or Python caller owns this process and may set anything; someone who can start
    a deployment may only choose what :data:`RUN_CHOICES` lists. Raises ConfigurationError naming
    the field.
    """
    if deployment_run():
        refuse_guarded_parameters(overrides, config_file)


def refuse_guarded_parameters(overrides: Mapping[str, Any] | None, config_file: str | None) -> None:
    """Raise ConfigurationError for a ``config_file`` or an override a deployment run's parameters may not set."""
    if config_file is not None:
        raise ConfigurationError("config_file cannot be a run parameter: a deployment run takes its settings from "
                                 "the worker's pagereel.toml and PAGEREEL_* environment")
    check_run_overrides(overrides)


def require_inside_run_folder(path: str | Path, what: str) -> None:
    """Raise ConfigurationError unless ``path`` lies inside the folder the run works in (symlinks resolved).

    A deployment runs in its own checkout (the pull step's folder): files there are the project's,
    files elsewhere are the worker machine's, which a run's parameters may not name.
    """
    root = Path(os.path.realpath(Path.cwd()))
    if not Path(os.path.realpath(Path(path).expanduser())).is_relative_to(root):
        raise ConfigurationError(f"a deployment run reads {what} only inside its folder {root}, not "
                                 f"{str(path)[:120]}")


def check_run_overrides(overrides: Mapping[str, Any] | None) -> None:
    """Raise ConfigurationError unless every setting in ``overrides`` is one a run may choose."""
    if overrides is None:
        return
    if not isinstance(overrides, Mapping):
        raise ConfigurationError(f"overrides must be a mapping of settings, not a {type(overrides).__name__}")
    for key, value in overrides.items():
        if str(key) not in RUN_CHOICES:
            inner = next(iter(value), None) if isinstance(value, Mapping) else None
            raise _guarded(f"{key}.{inner}" if inner is not None else str(key))
        allowed = RUN_CHOICES[str(key)]
        if allowed is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"overrides.{str(key)[:40]} must be a section (a mapping), "
                                     f"not a {type(value).__name__}")
        for name in value:
            if str(name) not in allowed:
                raise _guarded(f"{key}.{name}")


def _guarded(field: str) -> ConfigurationError:
    section = RUN_CHOICES.get(field.split(".", 1)[0])
    if section:
        choices = ", ".join(f"{field.split('.', 1)[0]}.{name}" for name in sorted(section))
    else:
        choices = "profile and some settings of storyboard, render and tuning"
    return ConfigurationError(
        f"a run's parameters may not set {field[:80]}: it guards the machine the worker runs on, so it comes only "
        f"from the worker's pagereel.toml and PAGEREEL_* environment; a run may choose {choices} "
        "(see flows.settings.RUN_CHOICES)"
    )
