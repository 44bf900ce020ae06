"""Join scene segments into the finished video, its subtitles and its thumbnail.

Video packets are copied, not re-encoded, with timestamps made continuous. The sound is mixed
once from the narrations (and optional music) and encoded once, so picture and sound agree to
the sample however many scenes there are: copying each segment's AAC would add its encoder
priming (about 21 ms) at every cut.
"""

from __future__ import annotations

import io
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from kernels.audio import mix_ducked
from kernels.loudness import normalize_loudness
from tasks.errors import ConfigurationError, RenderError
from tasks.files import atomic_write
from tasks.layout import Cue, subtitle_cues
from tasks.models import Narration, SceneTiming, Segment, Storyboard, VideoResult
from tasks.subtitles import shift, to_srt, to_vtt
from tasks.timeline import LEAD_S, OUTPUT_SAMPLE_RATE, samples_for, scene_pcm

AUDIO_FRAME = 1024
THUMBNAIL_WIDTH = 640
THUMBNAIL_AT = 0.4


def assemble_video(
    storyboard: Storyboard,
    segments: list[Segment],
    narrations: list[Narration],
    out_dir: Path,
    *,
    music: str | Path | None = None,
    music_gain: float = 0.35,
    duck_gain: float = 0.12,
    loudness_lufs: float | None = None,
    peak_dbfs: float = -1.0,
) -> VideoResult:
    """Write video.mp4, video.srt, video.vtt and thumbnail.png into ``out_dir`` and say where each scene sits."""
    out_dir = Path(out_dir)
    music_path = _check_music(music)
    for name, gain in (("music_gain", music_gain), ("duck_gain", duck_gain)):
        if music_path is not None and not 0.0 <= gain <= 4.0:
            raise ConfigurationError(f"{name} must lie between 0 and 4, got {gain}")
    _check_inputs(storyboard, segments, narrations)
    fps = segments[0].fps

    timings: list[SceneTiming] = []
    cues: list[Cue] = []
    start_frame = 0
    for scene, seg, narration in zip(storyboard.scenes, segments, narrations, strict=True):
        start, end = start_frame / fps, (start_frame + seg.frames) / fps
        timings.append(SceneTiming(id=scene.id, start_s=round(start, 3), end_s=round(end, 3)))
        cues += shift(subtitle_cues(narration.words, narration.duration_s), start + LEAD_S)
        start_frame += seg.frames
    duration = start_frame / fps

    pcm = np.concatenate([_scene_pcm_48k(n, s.frames, fps) for n, s in zip(narrations, segments, strict=True)])
    if music_path is not None:
        bed = _music(music_path, len(pcm))
        if loudness_lufs is not None:  # the gains then set the music against the voice, whatever the file's level
            bed = normalize_loudness(bed, OUTPUT_SAMPLE_RATE, loudness_lufs, 0.0)
        pcm = mix_ducked(pcm, bed, OUTPUT_SAMPLE_RATE, duck_gain=duck_gain, music_gain=music_gain)
    if loudness_lufs is not None:  # the whole mix at the target: scenes, engines and music agree
        pcm = normalize_loudness(pcm, OUTPUT_SAMPLE_RATE, loudness_lufs, peak_dbfs)

    # The small files first: a video.mp4 in the folder means everything beside it is there too.
    cues = _clip(cues, duration)
    srt_path = atomic_write(out_dir / "video.srt", to_srt(cues))
    vtt_path = atomic_write(out_dir / "video.vtt", to_vtt(cues))
    thumb_path = atomic_write(out_dir / "thumbnail.png", _thumbnail(storyboard, segments))
    video_path = out_dir / "video.mp4"
    _write_video(video_path, segments, pcm)
    return VideoResult(video_path=str(video_path), srt_path=str(srt_path), vtt_path=str(vtt_path),
                       thumbnail_path=str(thumb_path), duration_s=duration, frames=start_frame, scenes=timings)


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


def _check_inputs(storyboard: Storyboard, segments: list[Segment], narrations: list[Narration]) -> None:
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
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OUTPUT_SAMPLE_RATE)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = narration.sample_rate
    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame) + resampler.resample(None)]
    out = np.concatenate(parts) if parts else np.zeros(0, np.int16)
    wanted = samples_for(frames, fps, OUTPUT_SAMPLE_RATE)
    return np.pad(out, (0, max(0, wanted - len(out))))[:wanted].astype(np.int16)


def _music(path: Path, length: int) -> np.ndarray:
    """``length`` samples of the music at 48 kHz mono int16, looped when the file is shorter."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OUTPUT_SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].size
                if total >= length:
                    break
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.FFmpegError as exc:
        raise ConfigurationError(f"music file {str(path)!r} cannot be decoded: {exc}") from None
    track = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    if track.size == 0:
        raise ConfigurationError(f"music file {str(path)!r} holds no sound")
    return np.ascontiguousarray(np.resize(track, length).astype(np.int16, copy=False))


# --------------------------------------------------------------------------- video


def _write_video(path: Path, segments: list[Segment], pcm: np.ndarray) -> None:
    """Mux the copied video and the encoded sound into a temporary file beside ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)
        with av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            _mux(out, segments, pcm)
        os.replace(tmp, path)
    except av.FFmpegError as exc:
        raise RenderError(f"joining the scenes into {path.name} failed: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _mux(out: av.container.OutputContainer, segments: list[Segment], pcm: np.ndarray) -> None:
    """Copy each segment's H.264 packets, shifted to follow the previous ones, with its span of sound."""
    fps = segments[0].fps
    video: av.VideoStream | None = None
    audio: av.AudioStream | None = None
    reference: tuple[object, ...] = ()
    frames_done = 0
    for seg in segments:
        with av.open(io.BytesIO(seg.mp4)) as src:
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
        _encode_audio(out, audio, pcm, start, samples_for(frames_done, fps, OUTPUT_SAMPLE_RATE))
    if audio is not None:
        out.mux(audio.encode(None))


def _describe(settings: tuple[object, ...]) -> str:
    name, width, height, tb, extradata = settings
    size = len(extradata) if isinstance(extradata, bytes) else 0
    return f"{name} {width}x{height}, time base {tb}, {size} bytes of SPS/PPS"


def _encode_audio(out: av.container.OutputContainer, stream: av.AudioStream, pcm: np.ndarray, start: int,
                  stop: int) -> None:
    """Encode samples ``start:stop`` of the whole track; pts count samples from the start of the video."""
    for at in range(start, stop, AUDIO_FRAME):
        chunk = np.ascontiguousarray(pcm[at : min(at + AUDIO_FRAME, stop)]).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = OUTPUT_SAMPLE_RATE
        frame.pts = at
        frame.time_base = Fraction(1, OUTPUT_SAMPLE_RATE)
        out.mux(stream.encode(frame))


# --------------------------------------------------------------------------- extras


def _clip(cues: list[Cue], duration: float) -> list[Cue]:
    """Drop cues past the end of the video and end the last one with it."""
    out = [c for c in cues if c.start_s < duration]
    if out:
        last = out[-1]
        out[-1] = Cue(last.start_s, round(duration, 3), last.text)
    return out


def _thumbnail(storyboard: Storyboard, segments: list[Segment]) -> bytes:
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
