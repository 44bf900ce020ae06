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


class BackendUnavailableError(PagereelError):
    """A configured backend (Redis, Dask, Ray, Numba, ...) cannot be used here."""


# Names used by the original design, kept so its callers keep working.
LibraryNotAvailableError = BackendUnavailableError
OptimizationError = PagereelError

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "EditError",
    "ExtractionError",
    "FetchError",
    "LibraryNotAvailableError",
    "OptimizationError",
    "PagereelError",
    "RenderError",
]
