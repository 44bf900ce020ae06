"""Each stage's cache key follows the code it really runs: edit a module, and exactly its importers change key."""

from __future__ import annotations

import json
import modulefinder
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tasks", "kernels")

# Prints every cached stage's key (inputs held fixed, so only the code part can move) and its module;
# then, for each file named in argv: the keys after appending a comment to it, as a new process would see
# them (``forget`` drops what this one worked out), with the file put back afterwards.
_KEYS = textwrap.dedent("""
    import json
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    import tasks.stages as stages

    tasks = {"fetch": stages.fetch_page_task, "extract": stages.extract_article_task,
             "suggest": stages.suggest_storyboard_task, "edits": stages.apply_edits_task,
             **{k: t for k, t in stages.render_stage_tasks().items() if k != "assemble"}}

    def keys():
        return {name: [t.fn.__module__, t.cache_policy.compute_key(
            task_ctx=SimpleNamespace(task=t), inputs={}, flow_parameters={})] for name, t in tasks.items()}

    out = {"base": keys(), "edited": {}}
    for name in sys.argv[1:]:
        from tasks import cachekeys

        path = Path(name)
        original = path.read_bytes()
        path.write_bytes(original + b"\\n# an edit that changes no behaviour still changes the source\\n")
        try:
            cachekeys.forget()
            out["edited"][name] = keys()
        finally:
            path.write_bytes(original)
    if sys.argv[1:]:
        cachekeys.forget()
        out["restored"] = keys()
    print(json.dumps(out))
""")


def _keys(root: Path, *edit: Path) -> dict:
    """Keys computed in a fresh interpreter that imports pagereel from ``root``, before and after each edit."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", _KEYS, *map(str, edit)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _imported_by(root: Path, module: str) -> set[str]:
    """``module``, its packages and the first-party modules it loads, found by the standard library's scanner."""
    finder = modulefinder.ModuleFinder(path=[str(root)])  # third-party imports stay unresolved: ours only
    finder.import_hook(module)
    return {name for name in finder.modules if name.split(".")[0] in PACKAGES}


def _source(root: Path, module: str) -> Path:
    path = root.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _edited(path: Path, text: bytes = b"\n# edited\n") -> bytes:
    original = path.read_bytes()
    path.write_bytes(original + text)
    return original


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("code")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def modules(copy: Path) -> list[str]:
    """Every first-party module of the copy."""
    return sorted(".".join(p.relative_to(copy).with_suffix("").parts).removesuffix(".__init__")
                  for package in PACKAGES for p in (copy / package).rglob("*.py"))


@pytest.fixture(scope="module")
def edits(copy: Path, modules: list[str]) -> dict:
    """The keys before, after an edit to each module in turn, and with every file put back."""
    return _keys(copy, *(_source(copy, m) for m in modules))


def test_render_key_covers_models_and_kernel_flags_in_a_new_process(copy: Path, edits: dict) -> None:
    base = edits["base"]
    for module in ("tasks.models", "kernels._jit"):
        path = _source(copy, module)
        original = _edited(path)
        try:
            after = _keys(copy)["base"]
        finally:
            path.write_bytes(original)
        assert after["render"][1] != base["render"][1], f"editing {module} left the render key as it was"


def test_an_edit_changes_the_key_of_exactly_the_stages_that_import_it(copy: Path, modules: list[str],
                                                                     edits: dict) -> None:
    base = edits["base"]
    needs = {stage: _imported_by(copy, module) for stage, (module, _) in base.items()}
    assert {"tasks.models", "kernels._jit"} <= needs["render"]
    changed_by = {m: {s for s in base if edits["edited"][str(_source(copy, m))][s][1] != base[s][1]}
                  for m in modules}
    # A module no stage imports (tasks.stages, tasks.cachekeys) changes no key.
    expected = {m: {s for s, mods in needs.items() if m in mods} for m in modules}
    assert changed_by == expected
    assert edits["restored"] == base  # every file put back: the key is a function of the code alone


def test_keys_name_the_libraries_that_shape_each_stage() -> None:
    from tasks.cachekeys import libraries_of, library_fingerprint

    assert {"av", "PIL", "numba", "numpy"} <= set(libraries_of("tasks.render"))
    assert {"av", "espeakng_loader"} <= set(libraries_of("tasks.narrate"))
    assert "trafilatura" in libraries_of("tasks.extract")
    assert "av" in libraries_of("tasks.assemble")
    assert "av" not in libraries_of("tasks.suggest") and "numba" in libraries_of("tasks.suggest")
    espeak = library_fingerprint("espeakng_loader")
    assert "espeak-ng 1." in espeak, espeak
    pyav = library_fingerprint("av")
    assert "libavcodec" in pyav and "av==" in pyav


def test_a_library_upgrade_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks import cachekeys

    before = cachekeys.stage_code_digest("tasks.render")
    monkeypatch.setitem(cachekeys.LIBRARY_FINGERPRINTS, "PIL", lambda: "pillow==99.0")
    cachekeys.forget()
    try:
        assert cachekeys.stage_code_digest("tasks.render") != before
        assert cachekeys.stage_code_digest("tasks.fetch") == cachekeys.stage_code_digest("tasks.fetch")
    finally:
        monkeypatch.undo()
        cachekeys.forget()
    assert cachekeys.stage_code_digest("tasks.render") == before


def test_render_key_changes_with_the_caption_style() -> None:
    from tasks.cachekeys import DigestedInputs
    from tasks.models import RenderOptions

    def key(style: str | None) -> str:
        return DigestedInputs().compute_key(None, {"options": RenderOptions(caption_style=style)}, {})

    assert len({key(None), key("classic"), key("karaoke"), key("bold")}) == 4


_SCAN = textwrap.dedent("""
    import ast
    import json

    from tasks import cachekeys

    parsed = []
    real_parse = ast.parse

    def counting(source, filename="<unknown>", *args, **kwargs):
        parsed.append(filename)
        return real_parse(source, filename, *args, **kwargs)

    ast.parse = counting
    closure = sorted(cachekeys.module_closure("tasks.fetch"))
    print(json.dumps({"parsed": parsed, "closure": closure, "key": cachekeys.stage_code_digest("tasks.fetch")}))
""")


def test_a_new_process_parses_only_the_sources_that_changed(copy: Path, tmp_path: Path) -> None:
    """Imports are kept by the file's digest: a new process parses only an edited file, and sees its new import."""
    def scan() -> dict:
        env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(tmp_path)}
        proc = subprocess.run([sys.executable, "-c", _SCAN], cwd=copy, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first = scan()
    assert str(_source(copy, "tasks.fetch")) in first["parsed"] and "kernels.audio" not in first["closure"]
    again = scan()
    assert again["parsed"] == [] and again == {**first, "parsed": []}

    fetch = _source(copy, "tasks.fetch")
    original = _edited(fetch, b"\nimport kernels.audio  # noqa: E402,F401 - an import the edit adds\n")
    try:
        edited = scan()
    finally:
        fetch.write_bytes(original)
    assert str(fetch) in edited["parsed"]
    assert not {str(_source(copy, m)) for m in first["closure"] if m != "tasks.fetch"} & set(edited["parsed"])
    assert {"kernels", "kernels.audio"} <= set(edited["closure"]) and edited["key"] != first["key"]
    assert scan() == {**first, "parsed": []}  # put back: the first digest, with nothing parsed
