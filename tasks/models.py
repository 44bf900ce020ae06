"""The plain, JSON-serializable models the stages pass to one another, and their options.

Every model here round-trips through JSON (``model_dump_json`` / ``model_validate_json``)
so results can be cached by content, shipped to a worker and stored without pickle.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, computed_field, field_validator, model_validator

from tasks.text import length_in_words

Aspect = Literal["16:9", "9:16", "1:1"]
RunnerKind = Literal["thread", "process", "dask", "ray"]
RunStatus = Literal["pending", "running", "storyboard", "completed", "failed"]
SceneKind = Literal["title", "body", "closing"]
#: Where a paragraph of an article came from: prose, a heading, a list item, a quote, a table cell.
BlockKind = Literal["p", "heading", "item", "quote", "cell"]
#: How a scene asks to be laid out: plain text, a list of items, or one key figure.
SceneLayout = Literal["text", "list", "figure"]
#: How subtitles are burnt in: two lines at the bottom, the same with the spoken word lit, or a few big words.
CaptionStyle = Literal["classic", "karaoke", "bold"]

#: Longest narration of one scene, in characters (about five minutes of speech).
NARRATION_MAX_CHARS = 5000

#: Colour themes a storyboard may ask for; the renderer maps each name to its palette.
THEMES: tuple[str, ...] = ("midnight", "paper", "sunrise", "forest")

#: Frame size for each aspect ratio at the default 720p class; all even, as yuv420p needs.
ASPECT_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (1280, 720),
    "9:16": (720, 1280),
    "1:1": (720, 720),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- options


class FetchOptions(_Frozen):
    """How pages are fetched: limits, identity and which hosts may be reached."""

    timeout_s: float = Field(15.0, gt=0, le=600, description="Seconds for connect, each read, and the whole body.")
    max_bytes: int = Field(5_000_000, gt=0, description="Largest body accepted, enforced while streaming.")
    max_redirects: int = Field(5, ge=0, le=30, description="Redirect hops followed before giving up.")
    user_agent: str = Field(
        "pagereel/0.1 (+https://github.com/pagereel/pagereel)",
        min_length=1,
        description="User-Agent header sent with every request.",
    )
    allow_private_hosts: bool = Field(
        False, description="Allow loopback, private and link-local addresses (tests and intranets)."
    )
    allow_local_files: bool = Field(True, description="Allow file:// URLs and local paths.")
    image_hosts: tuple[str, ...] | None = Field(
        None, description="Only download pictures from these hosts; None allows any (local files always pass)."
    )
    retries: int = Field(3, ge=0, le=10, description="Retries of transient failures (timeouts, 429, 5xx).")
    retry_base_s: float = Field(1.0, ge=0, le=60, description="First retry delay; doubles each retry, with jitter.")
    cache_ttl_s: float = Field(3600.0, ge=0, description="How long a fetched page is reused from the cache.")

    @field_validator("user_agent")
    @classmethod
    def _header_safe(cls, value: str) -> str:
        # CR or LF would end the header (and httpx refuses it on every request, which looked transient).
        if not all(" " <= char <= "~" for char in value):
            raise ValueError("must be printable ASCII on one line (no CR, LF, tabs or other control characters)")
        return value

    def picture_allowed(self, url: str, page_url: str | None = None) -> bool:
        """Whether a scene's picture at ``url`` may be fetched for the page at ``page_url`` under these options.

        A local picture (file:// or a path) only for a local page, from inside that page's own folder.
        """
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme.lower() == "file" or not parts.scheme:
            from tasks.errors import FetchError
            from tasks.guarded_http import local_picture_path, picture_folder

            try:
                local_picture_path(url, picture_folder(page_url))
            except FetchError:
                return False
            return self.allow_local_files
        if parts.scheme.lower() not in ("http", "https"):
            return False
        return self.image_hosts is None or (parts.hostname or "") in self.image_hosts


class LLMOptions(_Frozen):
    """Where the ``llm`` script writer asks: any OpenAI-compatible chat-completions endpoint.

    The API key is never an option: the writer reads it from ``PAGEREEL_LLM__API_KEY`` when it
    sends a request, so it is in no cache key, storyboard or log.
    """

    base_url: str | None = Field(
        None, description="Endpoint base, e.g. http://localhost:11434/v1 (Ollama); None: the llm writer is off."
    )
    model: str = Field("llama3.2", min_length=1, max_length=200, description="Model name the endpoint knows.")
    timeout_s: float = Field(60.0, gt=0, le=900, description="Seconds for connect, each read, and the whole reply.")
    attempts: int = Field(3, ge=1, le=10, description="Requests tried on invalid output, 429, 5xx and timeouts.")
    temperature: float = Field(0.2, ge=0, le=2, description="Sampling temperature.")


class StoryboardOptions(_Frozen):
    """How the script is cut: length, pacing and language."""

    target_duration_s: float = Field(60.0, ge=10, le=3600, description="Wanted video length in seconds.")
    max_scenes: int = Field(12, ge=4, le=60, description="Most scenes, title and closing included (edits too).")
    max_duration_s: float = Field(
        3600.0, ge=10, le=4 * 3600, description="Longest video, edits included; longer edits are refused."
    )
    min_scenes: int = Field(4, ge=3, le=60, description="Fewest scenes, title and closing included.")
    words_per_minute: float = Field(160.0, ge=60, le=400, description="Narration pace used to fit the script.")
    language: str | None = Field(None, description="Narration language; None takes the article's.")
    min_article_words: int = Field(60, ge=1, description="Shorter article bodies are refused.")
    writer: str = Field(
        "extractive", pattern=r"^[a-z][a-z0-9_-]{0,39}$",
        description="Script writer, by name (tasks.writers.WRITERS): extractive, offline, is the default.",
    )
    llm: LLMOptions = Field(default_factory=LLMOptions, description="The llm writer's endpoint (the [llm] section).")

    @model_validator(mode="after")
    def _scenes_range(self) -> StoryboardOptions:
        if self.min_scenes > self.max_scenes:
            raise ValueError(f"min_scenes={self.min_scenes} is more than max_scenes={self.max_scenes}; "
                             "make min_scenes at most max_scenes")
        return self


class SpeechOptions(_Frozen):
    """The ``http`` narration engine: an OpenAI-compatible ``/v1/audio/speech`` endpoint.

    The API key is read from the environment only (``PAGEREEL_SPEECH__API_KEY``), never from a
    file, and never travels with the options (so it is in no cache key or log).
    """

    base_url: str = Field("http://127.0.0.1:8880/v1", pattern=r"^https?://\S+$",
                          description="Base URL of the API; /audio/speech is added.")
    model: str = Field("tts-1", min_length=1, max_length=100, description="The API's speech model.")
    voice: str = Field("alloy", min_length=1, max_length=100, description="Voice for a bare `http:`.")
    response_format: Literal["wav", "mp3"] = Field("wav", description="Audio the API is asked for.")
    timeout_s: float = Field(60.0, gt=0, le=600, description="Longest wait for one answer.")
    retries: int = Field(3, ge=0, le=10, description="Further tries after a 429, a 5xx or a timeout.")
    # Accepted so that PAGEREEL_SPEECH__API_KEY parses; the engine reads the key from the environment
    # itself, and the flows hand the tasks options without it.
    api_key: SecretStr | None = Field(None, exclude=True, repr=False, description="From the environment only.")

    @field_validator("api_key", mode="before")
    @classmethod
    def _from_the_environment_only(cls, value: object) -> object:
        given = value.get_secret_value() if isinstance(value, SecretStr) else value
        if given and given != os.environ.get("PAGEREEL_SPEECH__API_KEY"):
            raise ValueError("the key belongs in the environment (PAGEREEL_SPEECH__API_KEY), not in a file")
        return value


class RenderOptions(_Frozen):
    """How frames look and are encoded."""

    aspect: Aspect = Field("16:9", description="Frame shape: 16:9, 9:16 or 1:1.")
    width: int | None = Field(None, ge=16, le=4096, description="Frame width; None takes it from the aspect.")
    height: int | None = Field(None, ge=16, le=4096, description="Frame height; None takes it from the aspect.")
    resolution: int = Field(720, ge=16, le=2160, description="Short side of the frame in pixels (720 gives 720p).")
    fps: int = Field(30, ge=1, le=120, description="Frames per second.")
    theme: str = Field("midnight", description=f"Colour theme, one of {', '.join(THEMES)}.")
    caption_style: CaptionStyle | None = Field(
        None, description="Burnt-in subtitles: classic, karaoke or bold; None: bold for 9:16, classic otherwise."
    )
    crf: int = Field(23, ge=0, le=51, description="x264 constant rate factor (lower is better quality).")
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"
    ] = Field("veryfast", description="x264 preset.")
    keyframe_interval: int | None = Field(
        None, ge=1, le=1000, description="Most frames between keyframes (x264 keyint); None lets x264 choose."
    )
    threads: int = Field(0, ge=0, le=64, description="x264 threads; 0 lets x264 size them to the machine.")
    voice: str | None = Field(
        None, description="ENGINE:NAME voice (a bare name is espeak-ng's); None takes the storyboard language."
    )
    speech_rate_wpm: int = Field(165, ge=80, le=450, description="Speaking rate, words per minute.")
    music: str | None = Field(None, description="Background music file, ducked under the narration.")
    loudness_lufs: float = Field(
        -16.0, ge=-40.0, le=-6.0,
        description="Integrated loudness (EBU R128 / BS.1770, LUFS) of every narration and of the final mix.",
    )
    peak_dbfs: float = Field(-1.0, ge=-20.0, le=0.0, description="No sample of the sound goes above this (dBFS).")

    @field_validator("theme")
    @classmethod
    def _known_theme(cls, value: str) -> str:
        if value not in THEMES:
            raise ValueError(f"must be one of {', '.join(THEMES)}")
        return value

    @property
    def captions(self) -> CaptionStyle:
        """The caption style to draw: the one chosen, else ``bold`` for 9:16 and ``classic`` otherwise."""
        if self.caption_style is not None:
            return self.caption_style
        return "bold" if self.aspect == "9:16" else "classic"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height): explicit width/height win, else the aspect at ``resolution``; always even."""
        base_w, base_h = ASPECT_SIZES[self.aspect]
        scale = self.resolution / min(base_w, base_h)
        w = self.width or round(base_w * scale)
        h = self.height or round(base_h * scale)
        return w - w % 2, h - h % 2


# --------------------------------------------------------------------------- stage data


class Page(_Frozen):
    """A fetched web page: where it came from and its decoded HTML."""

    url: str
    final_url: str
    status: int
    content_type: str
    encoding: str
    html: str


class Article(_Frozen):
    """The readable body of a page with its metadata."""

    title: str
    byline: str | None = None
    published: str | None = None
    lang: str | None = None
    paragraphs: list[str]
    images: list[str] = Field(default_factory=list)
    #: For each image, the index of the paragraph it stands before (len(paragraphs) if after all).
    image_positions: list[int] = Field(default_factory=list)
    source_url: str | None = None
    site_name: str | None = None
    #: For each paragraph, the block it came from; empty when unknown (every paragraph plain prose).
    paragraph_kinds: list[BlockKind] = Field(default_factory=list)

    def kind_of(self, paragraph: int) -> BlockKind:
        """What paragraph ``paragraph`` is: prose, a heading, a list item, a quote or a table cell."""
        return self.paragraph_kinds[paragraph] if paragraph < len(self.paragraph_kinds) else "p"

    @property
    def text(self) -> str:
        """The body paragraphs joined by blank lines."""
        return "\n\n".join(self.paragraphs)

    @property
    def word_count(self) -> int:
        return sum(length_in_words(p) for p in self.paragraphs)


class Scene(_Frozen):
    """One shot of the video: what is said, what is shown."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    kind: SceneKind = "body"
    narration: str = Field(min_length=1, max_length=NARRATION_MAX_CHARS)
    caption: str = Field("", max_length=120)
    image: str | None = None
    hint_s: float = Field(gt=0, le=600, description="Expected duration, from the narration length.")
    layout: SceneLayout | None = Field(None, description="A layout hint for the renderer; None: plain text.")
    items: list[str] | None = Field(None, max_length=20, description="The list items a list scene narrates.")
    figure: str | None = Field(None, max_length=120, description="The key figure a scene carries, as written.")
    section: str | None = Field(None, max_length=120,
                                description="The heading of the article section this scene opens; None: none.")
    writer: str | None = Field(None, max_length=40, description="Which writer wrote this scene; None: a user.")
    sources: list[int] | None = Field(None, description="Numbers of the article sentences the scene draws on.")
    repair: str | None = Field(None, max_length=300, description="Why the writer's text was replaced, if it was.")


class Storyboard(_Frozen):
    """The script of the video: scenes in order, plus choices that apply to the whole video."""

    title: str
    source_url: str | None = None
    lang: str = "en"
    voice: str | None = None
    aspect: Aspect | None = None
    theme: str | None = None
    avatar: str | None = None
    caption_style: CaptionStyle | None = None
    scenes: list[Scene]

    @property
    def duration_hint_s(self) -> float:
        return sum(s.hint_s for s in self.scenes)

    def scene(self, scene_id: str) -> Scene:
        for s in self.scenes:
            if s.id == scene_id:
                return s
        raise KeyError(scene_id)


class WordTiming(_Frozen):
    """A spoken word and when it is said, in seconds from the start of its narration."""

    word: str
    t0: float = Field(ge=0)
    t1: float = Field(ge=0)


class Narration(BaseModel):
    """A scene's speech: mono 16-bit little-endian PCM and word timings."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    scene_id: str
    pcm: bytes
    sample_rate: int = Field(gt=0)
    voice: str
    words: list[WordTiming] = Field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class Segment(BaseModel):
    """One scene encoded as a self-contained MP4 (H.264 yuv420p + AAC)."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    scene_id: str
    mp4: bytes
    duration_s: float = Field(gt=0)
    frames: int = Field(gt=0)
    width: int
    height: int
    fps: int
    #: A PNG of the frame at 40% of the scene, 640 pixels wide: the video's thumbnail candidate.
    still: bytes | None = None


class SceneTiming(BaseModel):
    """Where a scene sits in the finished video."""

    id: str
    start_s: float
    end_s: float


class VideoResult(BaseModel):
    """What assembling wrote: the finished files and where each scene sits in the video."""

    video_path: str
    srt_path: str
    vtt_path: str
    thumbnail_path: str
    duration_s: float
    frames: int
    scenes: list[SceneTiming]


class AssemblyRecord(BaseModel):
    """What a finished video was assembled from, and the SHA-256 of each file assembling wrote.

    A later run of the same workflow whose inputs have the same digest takes the files over instead
    of assembling them again, once each file still has its recorded digest.
    """

    inputs: str
    files: dict[str, str]


# --------------------------------------------------------------------------- run state


class WorkflowMetrics(BaseModel):
    """What a run cost: per-stage seconds, cache use, retries and resources."""

    stage_seconds: dict[str, float] = Field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    retries: dict[str, int] = Field(default_factory=dict)
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


class WorkflowState(BaseModel):
    """What a run returns and writes into its manifest."""

    workflow_id: str
    status: RunStatus = "pending"
    source_url: str
    title: str | None = None
    video_path: str | None = None
    storyboard_path: str | None = None
    duration_s: float | None = None
    scenes: list[SceneTiming] = Field(default_factory=list)
    storyboard: Storyboard | None = None
    optimizations_used: list[str] = Field(default_factory=list)
    assembly: AssemblyRecord | None = None
    metrics: WorkflowMetrics = Field(default_factory=WorkflowMetrics)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def succeeded(self) -> bool:
        return self.status in ("completed", "storyboard")
