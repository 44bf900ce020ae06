"""The error tree every stage raises from; each message says what was wrong and what to do."""

from __future__ import annotations


class PagereelError(Exception):
    """Root of every error pagereel raises on purpose.

    ``transient`` marks failures worth retrying (timeouts, 5xx, connection resets);
    everything else fails at once.
    """

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class ConfigurationError(PagereelError, ValueError):
    """A setting, option or parameter has a value pagereel cannot use."""


class FetchError(PagereelError):
    """The page could not be fetched, or what came back is not a usable HTML page."""


class ExtractionError(PagereelError):
    """No article worth narrating could be found in the page."""


class EditError(PagereelError, ValueError):
    """User edits to a storyboard are malformed or refer to something that does not exist."""


class RenderError(PagereelError):
    """Narration, rendering or assembling the video failed."""


# A backend that is missing or unreachable (Redis, Dask, Ray, Numba) is never an error: the run falls back
# (local folder, threads, NumPy references) with one warning, and `python -m flows status` says why.

# A name used by the original design, kept so its callers keep working.
OptimizationError = PagereelError

__all__ = [
    "ConfigurationError",
    "EditError",
    "ExtractionError",
    "FetchError",
    "OptimizationError",
    "PagereelError",
    "RenderError",
]
