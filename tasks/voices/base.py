"""What every narration engine gives: the :class:`Narrator` protocol and the :class:`Speech` it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

#: Speaking rates every engine honours (words per minute); espeak-ng needs no speed-up stream for them.
MIN_RATE_WPM, MAX_RATE_WPM = 80, 450


@dataclass(frozen=True)
class Speech:
    """One synthesis: mono int16 samples at their native rate, and when the words it timed begin.

    ``marks`` are ``(position, length, ms)``: the 1-based character position in the spoken text of
    a word the engine timed, its length in characters, and its start in milliseconds. Words without
    a mark get times shared out between their neighbours (``tasks.narrate``).
    """

    samples: np.ndarray
    sample_rate: int
    marks: list[tuple[int, int, int]] = field(default_factory=list)


class Narrator(Protocol):
    """A speech engine: names its voices, and turns text into speech with word times."""

    #: The ``ENGINE`` of ``ENGINE:NAME`` voice names.
    name: str

    def version(self, voice: str) -> str:
        """Which build speaks resolved ``voice``: changes whenever the same text may come out differently."""
        ...

    def voices(self) -> list[str]:
        """The voice names :meth:`resolve` accepts as they are."""
        ...

    def resolve(self, voice: str) -> str:
        """The canonical name of ``voice``; raises ``ConfigurationError`` (naming what fits) when none."""
        ...

    def about(self, voice: str) -> str:
        """One line on a resolved voice for ``python -m flows status``: sample rate, licence."""
        ...

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> Speech:
        """Speak ``text`` with a resolved ``voice`` at about ``rate_wpm`` words a minute."""
        ...
