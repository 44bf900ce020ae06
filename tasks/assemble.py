"""Join scene segments into the finished video, its subtitles and its thumbnail.

Video packets are copied, not re-encoded, with timestamps made continuous. The sound is mixed
once from the narrations (and optional music) and encoded once, so picture and sound agree to
the sample however many scenes there are: copying each segment's AAC would add its encoder
priming (about 21 ms) at every cut.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from kernels.loudness import gated_loudness, normalize_loudness, peak_limit, spanned_block_powers
from tasks.errors import ConfigurationError, RenderError
from tasks.files import atomic_write
from tasks.layout import Cue, subtitle_cues
from tasks.models import Narration, SceneTiming, Segment, Storyboard, VideoResult
from tasks.pcm import AUDIO_FRAME, resample, resampled_chunks
from tasks.pcm import encode as encode_pcm
from tasks.spool import SpooledNarration, SpooledSegment
from tasks.subtitles import shift, to_srt, to_vtt
from tasks.timeline import LEAD_S, OUTPUT_SAMPLE_RATE, samples_for, scene_pcm

#: Samples of sound read (and mixed with the music) in one step, about 10 s; a whole number of AAC frames,
#: so the frames sent to the encoder are the same however the track is read.
MIX_SPAN = 480 * AUDIO_FRAME
THUMBNAIL_WIDTH = 640
#: How the segments are opened for copying: the MP4 index gives every stream's figures, so the demuxer
#: need not decode the first frames to guess them (a third of the time opening a 720p segment took).
SEGMENT_PROBE = {"probesize": "4096"}
THUMBNAIL_AT = 0.4


AnySegment = Segment | SpooledSegment
AnyNarration = Narration | SpooledNarration


def assemble_video(
    storyboard: Storyboard,
    segments: Sequence[AnySegment],
    narrations: Sequence[AnyNarration],
    out_dir: Path,
    *,
    music: str | Path | None = None,
    music_gain: float = 0.35,
    duck_gain: float = 0.12,
    loudness_lufs: float | None = None,
    peak_dbfs: float = -1.0,
) -> VideoResult:
    """Write video.mp4, video.srt, video.vtt and thumbnail.png into ``out_dir`` and say where each scene sits.

    Segments and narrations may be in memory or spooled to disk (:mod:`tasks.spool`); either way one
    scene is read at a time, and the sound track is built in a temporary file beside the video.
    """
    out_dir = Path(out_dir)
    music_path = _check_music(music)
    for name, gain in (("music_gain", music_gain), ("duck_gain", duck_gain)):
        if music_path is not None and not 0.0 <= gain <= 4.0:
            raise ConfigurationError(f"{name} must lie between 0 and 4, got {gain}")
    _check_inputs(storyboard, segments, narrations)
    fps = segments[0].fps
    timings, cues, frames = _timeline(storyboard, segments, narrations)

    # The small files first: a video.mp4 in the folder means everything beside it is there too.
    atomic_write(out_dir / "video.srt", to_srt(cues))
    atomic_write(out_dir / "video.vtt", to_vtt(cues))
    atomic_write(out_dir / "thumbnail.png", _thumbnail(storyboard, segments))
    video_path = out_dir / "video.mp4"
    with _SoundTrack(out_dir, narrations, segments, fps) as track:
        if music_path is not None:
            bed = _music(music_path, track.length)
            if loudness_lufs is not None:  # the gains then set the music against the voice, whatever the file's level
                bed = normalize_loudness(bed, OUTPUT_SAMPLE_RATE, loudness_lufs, 0.0)
            track.add_music(bed, duck_gain=duck_gain, music_gain=music_gain)
        if loudness_lufs is not None:  # the whole mix at the target: scenes, engines and music agree
            track.normalize(loudness_lufs, peak_dbfs)
        _write_video(video_path, segments, track)
    return _result(out_dir, timings, frames, fps)


def _result(out_dir: Path, timings: list[SceneTiming], frames: int, fps: int) -> VideoResult:
    return VideoResult(video_path=str(out_dir / "video.mp4"), srt_path=str(out_dir / "video.srt"),
                       vtt_path=str(out_dir / "video.vtt"), thumbnail_path=str(out_dir / "thumbnail.png"),
                       duration_s=frames / fps, frames=frames, scenes=timings)


def _timeline(storyboard: Storyboard, segments: Sequence[AnySegment],
              narrations: Sequence[AnyNarration]) -> tuple[list[SceneTiming], list[Cue], int]:
    """Where each scene sits, the subtitle cues (clipped to the video) and the video's length in frames."""
    fps = segments[0].fps
    timings: list[SceneTiming] = []
    cues: list[Cue] = []
    start_frame = 0
    for scene, seg, narration in zip(storyboard.scenes, segments, narrations, strict=True):
        start, end = start_frame / fps, (start_frame + seg.frames) / fps
        timings.append(SceneTiming(id=scene.id, start_s=round(start, 3), end_s=round(end, 3)))
        cues += shift(subtitle_cues(narration.words, narration.duration_s), start + LEAD_S)
        start_frame += seg.frames
    return timings, _clip(cues, start_frame / fps), start_frame


#: The files :func:`assemble_video` writes into its folder.
ASSEMBLED_FILES = ("video.srt", "video.vtt", "thumbnail.png", "video.mp4")


def assembly_digest(storyboard: Storyboard, segments: Sequence[AnySegment], narrations: Sequence[AnyNarration], *,
                    music: str | Path | None = None, music_gain: float = 0.35, duck_gain: float = 0.12,
                    loudness_lufs: float | None = None, peak_dbfs: float = -1.0) -> str:
    """One SHA-256 of everything :func:`assemble_video` reads, called with the same arguments.

    The storyboard, each segment's and narration's bytes (by digest) and figures, the music file's
    bytes, the gains and levels, and the code that assembles (this module's import closure and the
    builds of PyAV, NumPy and Numba it uses): equal digests, equal files.
    """
    from tasks.cachekeys import stage_code_digest

    music_path = Path(music).expanduser() if music else None
    what = {
        "code": stage_code_digest(__name__),
        "storyboard": storyboard.model_dump(mode="json"),
        "segments": [{**_figures(seg, "mp4"), "still": _sha256(seg.still)} for seg in segments],
        "narrations": [{**_figures(n, "pcm"), "sample_rate": n.sample_rate, "voice": n.voice,
                        "words": [w.model_dump(mode="json") for w in n.words]} for n in narrations],
        "music": _sha256(music_path.read_bytes()) if music_path and music_path.is_file() else str(music or ""),
        "levels": [music_gain, duck_gain, loudness_lufs, peak_dbfs],
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _figures(item: AnySegment | AnyNarration, field: str) -> dict[str, object]:
    """A segment's or narration's scene, size and bytes' digest (taken when it was spooled, else now)."""
    digest = getattr(item, "sha256", "") or _sha256(getattr(item, field))
    shape = {k: getattr(item, k) for k in ("frames", "width", "height", "fps") if hasattr(item, k)}
    return {"scene_id": item.scene_id, "sha256": digest, **shape}


def _sha256(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def assembled_result(storyboard: Storyboard, segments: Sequence[AnySegment], narrations: Sequence[AnyNarration],
                     out_dir: Path) -> VideoResult:
    """What :func:`assemble_video` returns for these inputs, for files already in ``out_dir``: nothing is written."""
    _check_inputs(storyboard, segments, narrations)
    timings, _, frames = _timeline(storyboard, segments, narrations)
    return _result(Path(out_dir), timings, frames, segments[0].fps)


# --------------------------------------------------------------------------- checks


def _check_music(music: str | Path | None) -> Path | None:
    """The music file as a path, proven to hold a decodable audio stream; None for no music."""
    if music is None or str(music) == "":
        return None
    path = Path(music).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"music file {str(path)!r} does not exist or is not a file; check render.music")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ConfigurationError(f"music file {str(path)!r} has no audio stream; check render.music")
    except av.FFmpegError as exc:
        raise ConfigurationError(f"music file {str(path)!r} cannot be read as audio: {exc}") from None
    return path


def _check_inputs(storyboard: Storyboard, segments: Sequence[AnySegment], narrations: Sequence[AnyNarration]) -> None:
    """One segment and one narration per scene, in scene order, all segments of one size and rate."""
    ids = [s.id for s in storyboard.scenes]
    if not ids or len(segments) != len(ids) or len(narrations) != len(ids):
        raise RenderError(f"{len(ids)} scenes need as many segments and narrations; "
                          f"got {len(segments)} segments and {len(narrations)} narrations")
    for scene_id, seg, narration in zip(ids, segments, narrations, strict=True):
        if seg.scene_id != scene_id or narration.scene_id != scene_id:
            raise RenderError(f"scene {scene_id!r} got the segment of {seg.scene_id!r} "
                              f"and the narration of {narration.scene_id!r}; pass them in storyboard order")
    first = segments[0]
    for seg in segments[1:]:
        if (seg.width, seg.height, seg.fps) != (first.width, first.height, first.fps):
            raise RenderError(f"segment {seg.scene_id!r} is {seg.width}x{seg.height}@{seg.fps}, but the video is "
                              f"{first.width}x{first.height}@{first.fps}; render every scene with the same settings")


# --------------------------------------------------------------------------- audio


def _scene_pcm_48k(narration: Narration, frames: int, fps: int) -> np.ndarray:
    """The scene's audio at the output rate, exactly as long as its ``frames``."""
    pcm = scene_pcm(narration, frames, fps)
    if narration.sample_rate == OUTPUT_SAMPLE_RATE:
        return pcm
    out = resample(pcm, narration.sample_rate, OUTPUT_SAMPLE_RATE)
    wanted = samples_for(frames, fps, OUTPUT_SAMPLE_RATE)
    return np.pad(out, (0, max(0, wanted - len(out))))[:wanted].astype(np.int16)


class _SoundTrack:
    """The video's whole sound at 48 kHz in a temporary file, read back one span at a time.

    Each scene's narration is padded to its frames and appended in turn; music, when added, is
    mixed into each span as it is read, with enough of the voice either side that the ducking
    comes out sample for sample as if the whole track had been mixed at once.
    """

    def __init__(self, out_dir: Path, narrations: Sequence[AnyNarration], segments: Sequence[AnySegment],
                 fps: int) -> None:
        fd, self.path = tempfile.mkstemp(prefix=".video.mp4.sound.", suffix=".part", dir=out_dir)
        self.length = 0
        self._music: np.ndarray | None = None
        self._gains = (0.0, 0.0)
        self._level: tuple[float, float] | None = None  # gain and sample ceiling of the whole mix
        try:
            with os.fdopen(fd, "wb") as fh:
                for narration, seg in zip(narrations, segments, strict=True):
                    voice = narration.load() if isinstance(narration, SpooledNarration) else narration
                    pcm = _scene_pcm_48k(voice, seg.frames, fps)
                    fh.write(pcm.tobytes())
                    self.length += len(pcm)
        except BaseException:
            self.close()
            raise

    def add_music(self, track: np.ndarray, *, duck_gain: float, music_gain: float) -> None:
        """Mix ``track`` (looped to the video's length) under the voice, ducked while it speaks."""
        self._music = track
        self._gains = (duck_gain, music_gain)

    def normalize(self, target_lufs: float, ceiling_dbfs: float) -> None:
        """Bring the whole mix to ``target_lufs`` (measured span by span), peaks limited under ``ceiling_dbfs``."""
        powers = spanned_block_powers(lambda lo, hi: self._mixed(lo, hi).astype(np.float64) / 32768.0,
                                      self.length, OUTPUT_SAMPLE_RATE)
        measured = gated_loudness(powers)
        if math.isfinite(measured):
            self._level = (10.0 ** ((target_lufs - measured) / 20.0), 10.0 ** (ceiling_dbfs / 20.0))

    def span(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` of the track (shorter where the track ends), as a slice of the whole would be."""
        start, stop = min(start, self.length), min(max(start, stop), self.length)
        if self._level is None:
            return self._mixed(start, stop)
        gain, ceiling = self._level
        # The limiter looks 5 ms either side of a sample; a margin of 10 ms makes each span exact.
        margin = OUTPUT_SAMPLE_RATE // 100
        lo, hi = max(0, start - margin), min(self.length, stop + margin)
        x = self._mixed(lo, hi).astype(np.float64) * (gain / 32768.0)
        y = peak_limit(x, ceiling, OUTPUT_SAMPLE_RATE)[start - lo : stop - lo]
        return np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)

    def _mixed(self, start: int, stop: int) -> np.ndarray:
        if self._music is None:
            return self._voice(start, stop)
        # The ducking of a sample depends on the voice within window + hold + fade of it (0.5 s with
        # mix_ducked's defaults); a second either side makes every sample of the span come out exact.
        from kernels.audio import mix_ducked  # Numba's kernel, loaded by a run that mixes music, not by every run

        margin = OUTPUT_SAMPLE_RATE
        lo, hi = max(0, start - margin), min(self.length, stop + margin)
        voice = self._voice(lo, hi)
        bed = self._music[np.arange(lo, hi) % len(self._music)]
        duck_gain, music_gain = self._gains
        mixed = mix_ducked(voice, np.ascontiguousarray(bed), OUTPUT_SAMPLE_RATE, duck_gain=duck_gain,
                           music_gain=music_gain)
        return mixed[start - lo : stop - lo]

    def _voice(self, start: int, stop: int) -> np.ndarray:
        with open(self.path, "rb") as fh:
            return np.fromfile(fh, dtype=np.int16, count=stop - start, offset=start * 2)

    def close(self) -> None:
        Path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> _SoundTrack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _music(path: Path, length: int) -> np.ndarray:
    """Up to ``length`` samples of the music at 48 kHz mono int16 (the track loops it when shorter)."""
    try:
        with av.open(str(path)) as container:
            chunks = resampled_chunks(container.decode(audio=0), OUTPUT_SAMPLE_RATE, enough=length)
    except av.FFmpegError as exc:
        raise ConfigurationError(f"music file {str(path)!r} cannot be decoded: {exc}") from None
    track = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    if track.size == 0:
        raise ConfigurationError(f"music file {str(path)!r} holds no sound")
    return np.ascontiguousarray(track[:length].astype(np.int16, copy=False))


# --------------------------------------------------------------------------- video


def _write_video(path: Path, segments: Sequence[AnySegment], track: _SoundTrack) -> None:
    """Mux the copied video and the encoded sound into a temporary file beside ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)
        with av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            _mux(out, segments, track)
        os.replace(tmp, path)
    except av.FFmpegError as exc:
        raise RenderError(f"joining the scenes into {path.name} failed: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _mux(out: av.container.OutputContainer, segments: Sequence[AnySegment], track: _SoundTrack) -> None:
    """Copy each segment's H.264 packets, shifted to follow the previous ones, with its span of sound."""
    fps = segments[0].fps
    video: av.VideoStream | None = None
    audio: av.AudioStream | None = None
    reference: tuple[object, ...] = ()
    frames_done = 0
    for seg in segments:
        with av.open(io.BytesIO(seg.mp4), options=SEGMENT_PROBE) as src:  # one scene's bytes at a time
            if not src.streams.video:
                raise RenderError(f"the segment of scene {seg.scene_id!r} holds no video stream")
            src_video = src.streams.video[0]
            ctx = src_video.codec_context
            settings = (ctx.name, ctx.width, ctx.height, src_video.time_base, ctx.extradata)
            if video is None or audio is None:
                # Both streams must exist before the first packet goes out: that writes the header.
                video = out.add_stream_from_template(src_video)
                audio = out.add_stream("aac", rate=OUTPUT_SAMPLE_RATE, layout="mono", options={"aac_coder": "fast"})
                reference = settings
            elif settings != reference:
                raise RenderError(
                    f"the segment of scene {seg.scene_id!r} was encoded differently from the first "
                    f"({_describe(settings)} against {_describe(reference)}); render every scene with the same "
                    "settings"
                )
            tb = src_video.time_base
            offset = round(Fraction(frames_done, fps) / tb)  # from the frame count: no rounding piles up
            copied = 0
            for packet in src.demux(src_video):
                if packet.size == 0:  # the demuxer's empty flush packet (PyAV's own remux skips only these)
                    continue
                if packet.dts is None and packet.pts is None:
                    # A raw stream carries no timestamps; without B-frames decode order is display order.
                    packet.pts = packet.dts = round(Fraction(copied, fps) / tb)
                if packet.dts is not None:
                    packet.dts += offset
                if packet.pts is not None:
                    packet.pts += offset
                packet.stream = video
                out.mux(packet)
                copied += 1
        if copied != seg.frames:
            raise RenderError(f"the segment of scene {seg.scene_id!r} holds {copied} frames, "
                              f"not the {seg.frames} it claims; render it again")
        start = samples_for(frames_done, fps, OUTPUT_SAMPLE_RATE)
        frames_done += seg.frames
        # Sound goes in scene by scene, so the file interleaves like a normal one.
        _encode_audio(out, audio, track, start, samples_for(frames_done, fps, OUTPUT_SAMPLE_RATE))
    if audio is not None:
        out.mux(audio.encode(None))


def _describe(settings: tuple[object, ...]) -> str:
    name, width, height, tb, extradata = settings
    size = len(extradata) if isinstance(extradata, bytes) else 0
    return f"{name} {width}x{height}, time base {tb}, {size} bytes of SPS/PPS"


def _encode_audio(out: av.container.OutputContainer, stream: av.AudioStream, track: _SoundTrack, start: int,
                  stop: int) -> None:
    """Encode samples ``start:stop`` of the whole track; pts count samples from the start of the video."""
    for base in range(start, stop, MIX_SPAN):
        encode_pcm(out, stream, track.span(base, min(base + MIX_SPAN, stop)), OUTPUT_SAMPLE_RATE, first_sample=base,
                   flush=False)


# --------------------------------------------------------------------------- extras


def _clip(cues: list[Cue], duration: float) -> list[Cue]:
    """Drop cues past the end of the video and end the last one with it."""
    out = [c for c in cues if c.start_s < duration]
    if out:
        last = out[-1]
        out[-1] = Cue(last.start_s, round(duration, 3), last.text)
    return out


def _thumbnail(storyboard: Storyboard, segments: Sequence[AnySegment]) -> bytes:
    """A 640-pixel-wide PNG of the first scene with a picture, else of the first body scene, else of the first."""
    scenes = storyboard.scenes
    pick = next((i for i, s in enumerate(scenes) if s.image), None)
    if pick is None:
        pick = next((i for i, s in enumerate(scenes) if s.kind == "body"), 0)
    seg = segments[pick]
    if seg.still:  # the renderer already kept this frame
        image = Image.open(io.BytesIO(seg.still))
        if image.width == THUMBNAIL_WIDTH:
            return seg.still
        return _png(image)
    target = int(seg.frames * THUMBNAIL_AT)
    try:
        with av.open(io.BytesIO(seg.mp4)) as src:
            for n, frame in enumerate(src.decode(video=0)):
                if n >= target:
                    return _png(frame.to_image())
    except av.FFmpegError as exc:
        raise RenderError(f"the segment of scene {seg.scene_id!r} cannot be decoded: {exc}") from exc
    raise RenderError(f"the segment of scene {seg.scene_id!r} holds no video frames")


def _png(image: Image.Image) -> bytes:
    height = max(2, round(image.height * THUMBNAIL_WIDTH / image.width))
    buf = io.BytesIO()
    image.convert("RGB").resize((THUMBNAIL_WIDTH, height), Image.Resampling.LANCZOS).save(buf, "PNG")
    return buf.getvalue()
