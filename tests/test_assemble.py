"""assemble_video on real encoding: join synthetic segments, reopen the video and check it frame by frame."""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tasks.assemble import ASSEMBLED_FILES, assemble_video
from tasks.errors import ConfigurationError, RenderError
from tasks.models import Narration, Scene, Segment, Storyboard, WordTiming
from tasks.timeline import LEAD_S, scene_pcm

pytestmark = pytest.mark.integration

FPS = 30
SIZE = (320, 180)
SR = 48_000
VOICE_HZ = 220.0
MUSIC_HZ = 1000.0


@dataclass(frozen=True)
class Plan:
    """One synthetic scene: its length, colour, how long its voice speaks and what it says."""

    id: str
    kind: str
    frames: int
    colour: tuple[int, int, int]
    voice_s: float
    text: str
    sample_rate: int = SR
    image: str | None = None


PLANS = [
    Plan("intro", "title", 30, (200, 40, 40), 0.5, "Welcome to the harbour."),
    Plan("ships", "body", 45, (40, 180, 60), 0.5,
         "Lighthouses guide ships safely home at night across the rocky coast of the northern sea.",
         image="lighthouse.png"),
    # A narration at another rate: the assembler resamples it to the output rate.
    Plan("outro", "closing", 21, (50, 70, 210), 0.3, "Thanks.", sample_rate=24_000),
]


def narration(plan: Plan) -> Narration:
    t = np.arange(round(plan.voice_s * plan.sample_rate)) / plan.sample_rate
    pcm = (np.sin(2 * np.pi * VOICE_HZ * t) * 9000).astype("<i2")
    words = plan.text.split()
    step = plan.voice_s / len(words)
    timings = [WordTiming(word=w, t0=round(i * step, 4), t1=round((i + 1) * step, 4)) for i, w in enumerate(words)]
    return Narration(scene_id=plan.id, pcm=pcm.tobytes(), sample_rate=plan.sample_rate, voice="en", words=timings)


def encode_segment(plan: Plan, voice: Narration, *, preset: str = "ultrafast", size: tuple[int, int] = SIZE,
                   bframes: int = 0) -> Segment:
    """A self-contained MP4 as the renderer makes one: H.264 without B-frames, AAC mono, one colour."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS, options={"preset": preset, "crf": "23", "bf": str(bframes)})
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = Fraction(1, FPS)
        audio = out.add_stream("aac", rate=voice.sample_rate, layout="mono")
        picture = np.full((size[1], size[0], 3), plan.colour, np.uint8)
        for i in range(plan.frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        pcm = scene_pcm(voice, plan.frames, FPS)
        for start in range(0, len(pcm), 1024):
            af = av.AudioFrame.from_ndarray(pcm[start : start + 1024].reshape(1, -1).copy(), format="s16",
                                            layout="mono")
            af.sample_rate, af.pts, af.time_base = voice.sample_rate, start, Fraction(1, voice.sample_rate)
            out.mux(audio.encode(af))
        out.mux(audio.encode(None))
    return Segment(scene_id=plan.id, mp4=buf.getvalue(), duration_s=plan.frames / FPS, frames=plan.frames,
                   width=size[0], height=size[1], fps=FPS)


def storyboard(plans: list[Plan] = PLANS) -> Storyboard:
    scenes = [Scene(id=p.id, kind=p.kind, narration=p.text, image=p.image, hint_s=p.frames / FPS)  # type: ignore[arg-type]
              for p in plans]
    return Storyboard(title="Harbour", scenes=scenes)


@pytest.fixture(scope="module")
def narrations() -> list[Narration]:
    return [narration(p) for p in PLANS]


@pytest.fixture(scope="module")
def segments(narrations: list[Narration]) -> list[Segment]:
    return [encode_segment(p, n) for p, n in zip(PLANS, narrations, strict=True)]


@pytest.fixture(scope="module")
def music_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One second of a 1 kHz tone, stereo 44.1 kHz WAV: shorter than the video, so it has to loop."""
    path = tmp_path_factory.mktemp("music") / "bed.wav"
    rate = 44_100
    t = np.arange(rate) / rate
    tone = (np.sin(2 * np.pi * MUSIC_HZ * t) * 12000).astype(np.int16)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


# --------------------------------------------------------------------------- helpers


def decoded(path: Path) -> tuple[list[tuple[float, np.ndarray]], np.ndarray, float]:
    """The video frames as (time, rgb), the mono audio in int16 units, and the time of its first sample."""
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        chunks = list(c.decode(audio=0))
        audio_start = float(chunks[0].pts * chunks[0].time_base)
        # The AAC decoder gives float samples in [-1, 1]; scale them to int16 units.
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in chunks]).astype(np.float64) * 32768
        assert chunks[0].sample_rate == SR
    return frames, audio, audio_start


def top_level_boxes(data: bytes) -> list[str]:
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
        boxes.append(kind.decode("ascii"))
        if size == 0:
            break
        at += size
    return boxes


def stamps(text: str) -> list[tuple[float, float]]:
    def seconds(h: str, m: str, s: str, ms: str) -> float:
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    pattern = r"(\d\d):(\d\d):(\d\d)[,.](\d{3}) --> (\d\d):(\d\d):(\d\d)[,.](\d{3})"
    return [(seconds(*m[:4]), seconds(*m[4:])) for m in re.findall(pattern, text)]


def tone_level(audio: np.ndarray, start_s: float, stop_s: float, hz: float, t0: float) -> float:
    """Amplitude of the ``hz`` component of ``audio`` between two times, Hann-windowed."""
    a, b = round((start_s - t0) * SR), round((stop_s - t0) * SR)
    x = audio[a:b].astype(np.float64) * np.hanning(b - a)
    phase = np.exp(-2j * np.pi * hz * np.arange(b - a) / SR)
    return float(abs(np.sum(x * phase)) * 4 / (b - a))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".part")


# --------------------------------------------------------------------------- tests


def test_joins_segments_without_re_encoding(tmp_path: Path, segments: list[Segment],
                                           narrations: list[Narration]) -> None:
    result = assemble_video(storyboard(), segments, narrations, tmp_path)
    total = sum(p.frames for p in PLANS)

    assert Path(result.video_path) == tmp_path / "video.mp4"
    assert result.frames == total
    assert result.duration_s == pytest.approx(total / FPS)
    assert [s.id for s in result.scenes] == [p.id for p in PLANS]
    assert result.scenes[0].start_s == 0 and result.scenes[-1].end_s == pytest.approx(total / FPS, abs=1e-3)
    assert all(b.start_s == a.end_s for a, b in zip(result.scenes, result.scenes[1:], strict=False))

    frames, audio, audio_start = decoded(tmp_path / "video.mp4")
    assert len(frames) == total
    video_s = total / FPS
    audio_s = audio_start + len(audio) / SR
    assert abs(audio_s - video_s) < 0.1
    with av.open(result.video_path) as c:
        assert float(c.duration / av.time_base) == pytest.approx(video_s, rel=0.02)
        assert c.streams.video[0].frames in (0, total)
        dts = [p.dts for p in c.demux(video=0) if p.dts is not None]
    assert len(dts) == total and all(b > a for a, b in zip(dts, dts[1:], strict=False))

    # The frame shown at each scene's middle has that scene's colour: order and timestamps are right.
    times = np.array([t for t, _ in frames])
    for plan, timing in zip(PLANS, result.scenes, strict=True):
        middle = (timing.start_s + timing.end_s) / 2
        _, rgb = frames[int(np.argmin(abs(times - middle)))]
        assert np.abs(rgb.reshape(-1, 3).mean(axis=0) - plan.colour).max() < 12, plan.id
    assert np.allclose(times, np.arange(total) / FPS, atol=1e-3)

    # The narration sits where the timeline puts it: loud inside each scene's voice, silent in the lead-in.
    for plan, timing in zip(PLANS, result.scenes, strict=True):
        speak = timing.start_s + LEAD_S
        assert tone_level(audio, speak + 0.05, speak + plan.voice_s - 0.05, VOICE_HZ, audio_start) > 6000
        assert tone_level(audio, timing.start_s + 0.05, speak - 0.05, VOICE_HZ, audio_start) < 300

    data = (tmp_path / "video.mp4").read_bytes()
    boxes = top_level_boxes(data)
    assert boxes.index("moov") < boxes.index("mdat"), boxes

    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thumbnail.png", "video.mp4", "video.srt", "video.vtt"]


def test_subtitles_follow_the_scenes(tmp_path: Path, segments: list[Segment], narrations: list[Narration]) -> None:
    result = assemble_video(storyboard(), segments, narrations, tmp_path)
    srt = Path(result.srt_path).read_text()
    vtt = Path(result.vtt_path).read_text()
    assert vtt.startswith("WEBVTT\n")

    for text in (srt, vtt):
        cues = stamps(text)
        assert len(cues) >= len(PLANS) + 1  # the long narration needs more than one cue
        assert all(a < b for a, b in cues)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(cues, cues[1:], strict=False))
        assert abs(cues[-1][1] - result.duration_s) <= 0.5
        # The first cue of each scene starts when its voice does.
        starts = [a for a, _ in cues]
        for timing in result.scenes:
            assert min(abs(s - (timing.start_s + LEAD_S)) for s in starts) < 0.002
    lines = [line for line in srt.splitlines() if line and "-->" not in line and not line.isdigit()]
    assert lines and all(len(line) <= 42 for line in lines)
    assert len(re.findall(r"^\d+$", srt, re.M)) == len(stamps(srt))


def test_thumbnail_shows_the_first_scene_with_a_picture(tmp_path: Path, segments: list[Segment],
                                                        narrations: list[Narration]) -> None:
    result = assemble_video(storyboard(), segments, narrations, tmp_path)
    with Image.open(result.thumbnail_path) as image:
        assert image.format == "PNG"
        assert image.size == (640, 360)
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3).mean(axis=0)
    assert np.abs(rgb - PLANS[1].colour).max() < 12

    # A still kept by the renderer is used as it is.
    still = io.BytesIO()
    Image.new("RGB", (640, 360), (255, 255, 0)).save(still, "PNG")
    with_still = [s.model_copy(update={"still": still.getvalue()}) if s.scene_id == "ships" else s for s in segments]
    result = assemble_video(storyboard(), with_still, narrations, tmp_path)
    assert Path(result.thumbnail_path).read_bytes() == still.getvalue()


def test_music_is_ducked_under_the_narration(tmp_path: Path, segments: list[Segment], narrations: list[Narration],
                                            music_file: Path) -> None:
    result = assemble_video(storyboard(), segments, narrations, tmp_path, music=music_file, music_gain=0.35,
                            duck_gain=0.12)
    _, audio, t0 = decoded(Path(result.video_path))
    ships = result.scenes[1]
    speaking = ships.start_s + LEAD_S
    # Inside the narration of "ships", and in the long pause after it (clear of the ramps and the hold).
    under_voice = tone_level(audio, speaking + 0.15, speaking + 0.35, MUSIC_HZ, t0)
    alone = tone_level(audio, speaking + 0.5 + 0.4, ships.end_s + LEAD_S - 0.4, MUSIC_HZ, t0)
    assert alone == pytest.approx(12000 * 0.35, rel=0.2)
    assert under_voice == pytest.approx(12000 * 0.12, rel=0.3)
    assert under_voice < 0.5 * alone
    # The voice is still there on top of the music.
    assert tone_level(audio, speaking + 0.15, speaking + 0.35, VOICE_HZ, t0) > 6000
    assert leftovers(tmp_path) == []


def test_mismatched_inputs_are_refused(tmp_path: Path, segments: list[Segment], narrations: list[Narration]) -> None:
    board = storyboard()
    with pytest.raises(RenderError, match="3 scenes"):
        assemble_video(board, segments[:2], narrations, tmp_path)
    with pytest.raises(RenderError, match="storyboard order"):
        assemble_video(board, [segments[1], segments[0], segments[2]], narrations, tmp_path)
    with pytest.raises(RenderError, match="storyboard order"):
        assemble_video(board, segments, [narrations[0], narrations[0], narrations[2]], tmp_path)
    bigger = segments[1].model_copy(update={"width": 640, "height": 360})
    with pytest.raises(RenderError, match="640x360"):
        assemble_video(board, [segments[0], bigger, segments[2]], narrations, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_segments_encoded_differently_are_refused(tmp_path: Path, segments: list[Segment],
                                                 narrations: list[Narration]) -> None:
    # Same size and rate, but another preset: other SPS/PPS, which a stream copy cannot mix.
    odd = encode_segment(PLANS[2], narrations[2], preset="medium")
    with pytest.raises(RenderError, match="encoded differently"):
        assemble_video(storyboard(), [*segments[:2], odd], narrations, tmp_path)
    assert not (tmp_path / "video.mp4").exists()
    assert leftovers(tmp_path) == []


def test_music_file_problems_are_configuration_errors(tmp_path: Path, segments: list[Segment],
                                                      narrations: list[Narration]) -> None:
    with pytest.raises(ConfigurationError, match="nowhere.mp3"):
        assemble_video(storyboard(), segments, narrations, tmp_path, music=tmp_path / "nowhere.mp3")
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not music at all" * 64)
    with pytest.raises(ConfigurationError, match="junk.mp3"):
        assemble_video(storyboard(), segments, narrations, tmp_path, music=junk)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp3"]  # refused before any work


def test_a_failure_mid_write_leaves_no_video(tmp_path: Path, segments: list[Segment],
                                             narrations: list[Narration]) -> None:
    broken = segments[2].model_copy(update={"mp4": b"\x00\x00\x00\x18ftypisom" + b"garbage!" * 500})
    with pytest.raises(RenderError, match="outro|joining"):
        assemble_video(storyboard(), [*segments[:2], broken], narrations, tmp_path)
    assert not (tmp_path / "video.mp4").exists()
    assert leftovers(tmp_path) == []

    # A segment that holds fewer frames than it claims would put sound and picture out of step.
    short = segments[2].model_copy(update={"frames": segments[2].frames + 5})
    with pytest.raises(RenderError, match="holds 21 frames"):
        assemble_video(storyboard(), [*segments[:2], short], narrations, tmp_path)
    assert not (tmp_path / "video.mp4").exists()
    assert leftovers(tmp_path) == []


def test_packets_without_timestamps_are_copied_not_dropped(tmp_path: Path, narrations: list[Narration]) -> None:
    """Only the demuxer's empty flush packet is skipped: a raw H.264 stream's packets carry no dts at all."""
    raw = []
    for plan, voice in zip(PLANS, narrations, strict=True):
        mp4 = encode_segment(plan, voice)
        buf = io.BytesIO()
        with av.open(io.BytesIO(mp4.mp4)) as src, av.open(buf, "w", format="h264") as out:
            stream = out.add_stream_from_template(src.streams.video[0])
            for packet in src.demux(video=0):
                if packet.size:
                    packet.stream = stream
                    out.mux(packet)
        with av.open(io.BytesIO(buf.getvalue())) as check:
            assert all(p.dts is None for p in check.demux(video=0))
        raw.append(mp4.model_copy(update={"mp4": buf.getvalue()}))
    result = assemble_video(storyboard(), raw, narrations, tmp_path)
    frames, _, _ = decoded(tmp_path / "video.mp4")
    total = sum(p.frames for p in PLANS)
    assert result.frames == len(frames) == total
    assert np.allclose([t for t, _ in frames], np.arange(total) / FPS, atol=1e-3)


def test_the_loudness_shortcuts_change_no_byte_of_the_files(tmp_path: Path, segments: list[Segment],
                                                           narrations: list[Narration], music_file: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiter works around clusters of peaks and the meter keeps its filter: the files stay as they were."""
    import kernels.loudness as loudness
    import tasks.assemble as assemble_module
    from tests.test_loudness import reference_k_weighted, reference_peak_limit

    clicked = []
    for k, voice in enumerate(narrations):
        pcm = np.frombuffer(voice.pcm, "<i2").copy()
        pcm[100 + 37 * k :: 2900] = 32000  # clicks over the ceiling, some 60 ms apart: many clusters
        clicked.append(voice.model_copy(update={"pcm": pcm.tobytes()}))
    over: list[int] = []

    def whole_signal_limiter(x: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
        over.append(int(np.count_nonzero(np.abs(x) > ceiling)))
        return reference_peak_limit(x, ceiling, rate)

    def files(folder: Path, music: Path | None) -> dict[str, bytes]:
        folder.mkdir()
        assemble_video(storyboard(), segments, clicked, folder, music=music, loudness_lufs=-16.0)
        return {name: (folder / name).read_bytes() for name in ASSEMBLED_FILES}

    for music in (None, music_file):
        fast = files(tmp_path / f"fast-{music is not None}", music)
        with monkeypatch.context() as patched:
            patched.setattr(loudness, "peak_limit", whole_signal_limiter)
            patched.setattr(assemble_module, "peak_limit", whole_signal_limiter)
            patched.setattr(loudness, "k_weighted", reference_k_weighted)
            plain = files(tmp_path / f"plain-{music is not None}", music)
        assert fast == plain
    assert sum(over) > 20  # the limiter had peaks to catch


def test_segments_opened_without_probing_frames_give_the_same_video(tmp_path: Path, narrations: list[Narration],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a segment reads its figures from the MP4 index alone: the video's bytes are those of a full probe."""
    import tasks.assemble as assemble_module

    quick = assemble_module.SEGMENT_PROBE
    assert quick  # else the test compares a full probe with itself
    for bframes in (0, 2):
        segments = [encode_segment(p, n, preset="veryfast", bframes=bframes)
                    for p, n in zip(PLANS, narrations, strict=True)]
        videos = []
        for probe in (quick, {}):
            monkeypatch.setattr(assemble_module, "SEGMENT_PROBE", probe)
            folder = tmp_path / f"{bframes}-{len(probe)}"
            folder.mkdir()
            assemble_video(storyboard(), segments, narrations, folder, loudness_lufs=-16.0)
            videos.append((folder / "video.mp4").read_bytes())
        assert videos[0] == videos[1]


# --------------------------------------------------------------------------- taking a finished video over


def test_the_assembly_digest_moves_with_every_input_the_files_depend_on(tmp_path: Path, segments: list[Segment],
                                                                         narrations: list[Narration],
                                                                         music_file: Path) -> None:
    from tasks.assemble import assembled_result, assembly_digest
    from tasks.spool import Spool

    board = storyboard()
    base = assembly_digest(board, segments, narrations)
    with Spool(tmp_path) as spool:  # spooled inputs key as their bytes do
        spooled = ([spool.add_segment(s) for s in segments], [spool.add_narration(n) for n in narrations])
        assert assembly_digest(board, *spooled) == base
    edited = [*narrations[:2], narrations[2].model_copy(update={"words": narrations[2].words[:0]})]
    one_frame_more = encode_segment(Plan("outro", "closing", 22, (50, 70, 210), 0.3, "Thanks."), narrations[2])
    louder_music = tmp_path / "bed.wav"
    louder_music.write_bytes(music_file.read_bytes()[:-2] + b"\x7f\x7f")
    changed = [
        assembly_digest(board, [*segments[:2], one_frame_more], narrations),
        assembly_digest(board, segments, edited),
        assembly_digest(storyboard([*PLANS[:2], Plan("outro", "closing", 21, (0, 0, 0), 0.3, "Thanks.",
                                                     image="other.png")]), segments, narrations),
        assembly_digest(board, segments, narrations, music=music_file),
        assembly_digest(board, segments, narrations, music=louder_music),
        assembly_digest(board, segments, narrations, loudness_lufs=-16.0),
        assembly_digest(board, segments, narrations, peak_dbfs=-2.0),
    ]
    assert len({base, *changed}) == 1 + len(changed)
    made = assemble_video(board, segments, narrations, tmp_path)
    assert assembled_result(board, segments, narrations, tmp_path) == made
