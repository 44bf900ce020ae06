"""The error tree has no dead branches, and one rule decides what is retried: an error's ``transient`` flag."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import tasks.errors
from tasks.errors import ConfigurationError, FetchError, PagereelError, RenderError
from tasks.stages import retry_if_transient

ROOT = Path(__file__).resolve().parents[1]


def _raised_names() -> set[str]:
    """Names of every class raised (``raise X(...)``) anywhere in flows/, tasks/ and kernels/."""
    names: set[str] = set()
    for package in ("flows", "tasks", "kernels"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    if isinstance(target, ast.Name):
                        names.add(target.id)
                    elif isinstance(target, ast.Attribute):
                        names.add(target.attr)
    return names


def test_every_error_class_is_raised_somewhere() -> None:
    raised = _raised_names()
    classes = {name: cls for name, cls in vars(tasks.errors).items()
               if inspect.isclass(cls) and issubclass(cls, PagereelError) and cls.__module__ == "tasks.errors"}
    # A class is alive if it, or a subclass of it, is raised.
    dead = sorted(name for name, cls in classes.items()
                  if not any(issubclass(other, cls) and other_name in raised for other_name, other in classes.items()))
    assert dead == []


class _Finished:
    """The state a task run ends in: ``result()`` raises what the task raised."""

    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc

    def result(self) -> object:
        if self.exc is not None:
            raise self.exc
        return None


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (FetchError("503 Service Unavailable", transient=True), True),
        (FetchError("404 Not Found"), False),
        (RenderError("encoder hiccup", transient=True), True),
        (ConfigurationError("render.fps must be positive"), False),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (ValueError("bad input"), False),
        (None, False),
    ],
)
def test_one_rule_decides_retries(exc: BaseException | None, retried: bool) -> None:
    assert retry_if_transient(None, None, _Finished(exc)) is retried


def test_fetch_has_no_classifier_of_its_own() -> None:
    import tasks.fetch

    assert not [n for n in vars(tasks.fetch) if "transient" in n and not n.startswith("_")]
