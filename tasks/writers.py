"""Script writers: what turns an article into a storyboard, chosen by name.

A writer is any callable ``(article, options) -> Storyboard``. :data:`WRITERS` maps the name a
user types (``storyboard.writer`` in the settings, ``--writer`` on the command line) to the
writer; :func:`writer_for` is the one place that reads it. Adding a writer is one module
with such a function and one line here; the contract every writer meets is tested in
``tests/test_writers.py`` against every name registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tasks.errors import ConfigurationError
from tasks.models import Article, Storyboard, StoryboardOptions


class Writer(Protocol):
    """Cut ``article`` into a storyboard: a title scene first, body scenes, a closing scene last."""

    def __call__(self, article: Article, options: StoryboardOptions | None = None) -> Storyboard: ...


def _extractive() -> Writer:
    from tasks.suggest import suggest_storyboard

    return suggest_storyboard


def _llm() -> Writer:
    from tasks.llm_writer import llm_storyboard

    return llm_storyboard


#: Every writer, by the name users type, as a function that imports it: knowing the names
#: (settings check them) costs no import of any writer.
WRITERS: dict[str, Callable[[], Writer]] = {
    "extractive": _extractive,
    "llm": _llm,
}


def writer_for(name: str) -> Writer:
    """The writer registered as ``name``; a clear error naming the known ones otherwise."""
    try:
        load = WRITERS[name]
    except KeyError:
        known = ", ".join(sorted(WRITERS))
        raise ConfigurationError(f"unknown script writer {name!r}; use one of: {known}") from None
    return load()


def write_storyboard(article: Article, options: StoryboardOptions | None = None) -> Storyboard:
    """The storyboard of ``article`` by the writer ``options.writer`` names."""
    options = options or StoryboardOptions()
    return writer_for(options.writer)(article, options)
