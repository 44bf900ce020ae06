"""Join scene segments into the finished video, its subtitles and its thumbnail.

Video packets are copied, not re-encoded, with timestamps made continuous. The sound is mixed
once from the narrations (and optional music) and encoded once, so picture and sound agree to
the sample however many scenes there are.
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
from tasks.errors import ConfigurationError, RenderError
from tasks.files import atomic_write
from tasks.layout import subtitle_cues
from tasks.models import Narration, SceneTiming, Segment, Storyboard, VideoResult
from tasks.subtitles import shift, to_srt, to_vtt
from tasks.timeline import LEAD_S, OUTPUT_SAMPLE_RATE, scene_pcm

AUDIO_FRAME = 1024
THUMBNAIL_WIDTH = 640


def assemble_video(
    storyboard: Storyboard,
    segments: list[Segment],
    narrations: list[Narration],
    out_dir: Path,
    *,
    music: str | Path | None = None,
    music_gain: float = 0.35,
    duck_gain: float = 0.12,
) -> VideoResult:
    """Write video.mp4, video.srt, video.vtt and thumbnail.png into ``out_dir``."""
    out_dir = Path(out_dir)
    music_path = _check_music(music)
    _check_inputs(storyboard, segments, narrations)
    fps = segments[0].fps

    timings: list[SceneTiming] = []
    cues = []
    start_frame = 0
    for scene, seg, narration in zip(storyboard.scenes, segments, narrations, strict=True):
        start = start_frame / fps
        end = (start_frame + seg.frames) / fps
        timings.append(SceneTiming(id=scene.id, start_s=round(start, 3), end_s=round(end, 3)))
        cues += shift(subtitle_cues(narration.words, narration.duration_s), start + LEAD_S)
        start_frame += seg.frames
    duration = start_frame / fps

    voice = np.concatenate([_resampled_pcm(n, s.frames, fps) for n, s in zip(narrations, segments, strict=True)])
    if music_path is not None:
        voice = mix_ducked(voice, _music(music_path, len(voice)), OUTPUT_SAMPLE_RATE, duck_gain=duck_gain,
                           music_gain=music_gain)

    video_path = out_dir / "video.mp4"
    _write_video(video_path, segments, voice)
    srt_path = atomic_write(out_dir / "video.srt", to_srt(_clip(cues, duration)))
    vtt_path = atomic_write(out_dir / "video.vtt", to_vtt(_clip(cues, duration)))
    thumb_path = atomic_write(out_dir / "thumbnail.png", _thumbnail(storyboard, segments))
    return VideoResult(video_path=str(video_path), srt_path=str(srt_path), vtt_path=str(vtt_path),
                       thumbnail_path=str(thumb_path), duration_s=round(duration, 3), frames=start_frame,
                       scenes=timings)


# --------------------------------------------------------------------------- checks


def _check_music(music: str | Path | None) -> Path | None:
    if music is None or str(music) == "":
        return None
    path = Path(music).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"music file {str(path)!r} does not exist; check render.music")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ConfigurationError(f"music file {str(path)!r} has no audio stream")
    except av.FFmpegError as exc:
        raise ConfigurationError(f"music file {str(path)!r} cannot be read as audio: {exc}") from None
    return path


def _check_inputs(storyboard: Storyboard, segments: list[Segment], narrations: list[Narration]) -> None:
    ids = [s.id for s in storyboard.scenes]
    if not segments or len(segments) != len(ids) or len(narrations) != len(ids):
        raise RenderError(f"{len(ids)} scenes need as many segments and narrations; "
                          f"got {len(segments)} segments and {len(narrations)} narrations")
    for scene_id, seg, narration in zip(ids, segments, narrations, strict=True):
        if seg.scene_id != scene_id or narration.scene_id != scene_id:
            raise RenderError(f"scene {scene_id!r} got the segment of {seg.scene_id!r} "
                              f"and the narration of {narration.scene_id!r}")
    first = segments[0]
    for seg in segments[1:]:
        if (seg.width, seg.height, seg.fps) != (first.width, first.height, first.fps):
            raise RenderError(f"segment {seg.scene_id!r} is {seg.width}x{seg.height}@{seg.fps}, but the video is "
                              f"{first.width}x{first.height}@{first.fps}; render every scene with the same settings")


# --------------------------------------------------------------------------- audio


def _resampled_pcm(narration: Narration, frames: int, fps: int) -> np.ndarray:
    if narration.sample_rate == OUTPUT_SAMPLE_RATE:
        return scene_pcm(narration, frames, fps)
    # Narrations normally arrive at 48 kHz already; this keeps other rates correct too.
    pcm = scene_pcm(narration, frames, fps)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OUTPUT_SAMPLE_RATE)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = narration.sample_rate
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame) + resampler.resample(None)]
    pcm48 = np.concatenate(out) if out else np.zeros(0, np.int16)
    wanted = round(frames * OUTPUT_SAMPLE_RATE / fps)
    return np.pad(pcm48, (0, max(0, wanted - len(pcm48))))[:wanted].astype(np.int16)


def _music(path: Path, length: int) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OUTPUT_SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += len(chunk)
            if total >= length:
                break
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    track = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    if len(track) == 0:
        raise ConfigurationError(f"music file {str(path)!r} holds no sound")
    # Loop a short track under a long video.
    return np.ascontiguousarray(np.resize(track, length).astype(np.int16))


# --------------------------------------------------------------------------- video


def _write_video(path: Path, segments: list[Segment], pcm: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".video.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)
    try:
        with av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out, \
                av.open(io.BytesIO(segments[0].mp4)) as first:
            # Both streams must exist before the first packet is written (that writes the header).
            video = out.add_stream_from_template(first.streams.video[0])
            video.time_base = first.streams.video[0].time_base
            audio = out.add_stream("aac", rate=OUTPUT_SAMPLE_RATE, layout="mono")
            _copy_video(out, video, first.streams.video[0].codec_context.extradata, segments)
            _encode_audio(out, audio, pcm)
        os.replace(tmp, path)
    except av.FFmpegError as exc:
        raise RenderError(f"joining the scenes failed: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _copy_video(out: av.container.OutputContainer, stream: av.VideoStream, extradata: bytes | None,
                segments: list[Segment]) -> None:
    offset = 0  # in the segments' video time base
    for seg in segments:
        with av.open(io.BytesIO(seg.mp4)) as src:
            video = src.streams.video[0]
            if video.codec_context.extradata != extradata or video.time_base != stream.time_base:
                raise RenderError(f"segment {seg.scene_id!r} was encoded with other settings than the first; "
                                  "render every scene with the same settings")
            tb = video.time_base
            step = round(Fraction(1, seg.fps) / tb)
            for packet in src.demux(video):
                if packet.dts is None:
                    continue
                packet.pts += offset
                packet.dts += offset
                packet.stream = stream
                out.mux(packet)
            offset += seg.frames * step


def _encode_audio(out: av.container.OutputContainer, stream: av.AudioStream, pcm: np.ndarray) -> None:
    for start in range(0, len(pcm), AUDIO_FRAME):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[start : start + AUDIO_FRAME]).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = OUTPUT_SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, OUTPUT_SAMPLE_RATE)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


# --------------------------------------------------------------------------- extras


def _clip(cues: list, duration: float) -> list:
    out = [c for c in cues if c.start_s < duration]
    if out:
        last = out[-1]
        out[-1] = type(last)(last.start_s, round(min(max(last.end_s, duration), duration), 3), last.text)
    return out


def _thumbnail(storyboard: Storyboard, segments: list[Segment]) -> bytes:
    scenes = storyboard.scenes
    pick = next((i for i, s in enumerate(scenes) if s.image), None)
    if pick is None:
        pick = next((i for i, s in enumerate(scenes) if s.kind == "body"), 0)
    seg = segments[pick]
    target = int(seg.frames * 0.4)
    image = None
    with av.open(io.BytesIO(seg.mp4)) as src:
        for n, frame in enumerate(src.decode(video=0)):
            image = frame.to_image()
            if n >= target:
                break
    if image is None:
        raise RenderError(f"the segment of scene {seg.scene_id!r} holds no video frames")
    height = round(image.height * THUMBNAIL_WIDTH / image.width)
    buf = io.BytesIO()
    image.resize((THUMBNAIL_WIDTH, height - height % 2), Image.Resampling.LANCZOS).save(buf, "PNG", optimize=True)
    return buf.getvalue()
