"""Settings: defaults, then pagereel.toml, then PAGEREEL_* variables; bad values name field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.settings import load_settings
from tasks.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PAGEREEL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_sane() -> None:
    s = load_settings()
    assert s.runner.kind == "thread"
    assert s.render.size == (1280, 720)
    assert s.fetch.allow_private_hosts is False
    assert s.cache.redis_url is None


def test_toml_then_env_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pagereel.toml").write_text(
        'runner = "dask"\n[fetch]\ntimeout_s = 3\nmax_bytes = 1000\n[render]\naspect = "9:16"\n'
    )
    monkeypatch.setenv("PAGEREEL_FETCH__MAX_BYTES", "2000")
    s = load_settings(render={"fps": 24})
    assert s.runner.kind == "dask"
    assert s.fetch.timeout_s == 3  # from the file
    assert s.fetch.max_bytes == 2000  # env beats the file
    assert s.render.aspect == "9:16" and s.render.fps == 24  # arguments merge into the file's section
    assert s.render.size == (720, 1280)


def test_explicit_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "custom.toml"
    cfg.write_text("[storyboard]\ntarget_duration_s = 90\n")
    assert load_settings(cfg).storyboard.target_duration_s == 90


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("PAGEREEL_FETCH__TIMEOUT_S", "-1", "fetch.timeout_s='-1'"),
        ("PAGEREEL_RENDER__THEME", "neon", "render.theme='neon'"),
        ("PAGEREEL_RENDER__ASPECT", "4:3", "render.aspect='4:3'"),
        ("PAGEREEL_RUNNER", "spark", "runner.kind='spark'"),
        ("PAGEREEL_CACHE__REDIS_URL", "http://x", "cache.redis_url='http://x'"),
        ("PAGEREEL_STORYBOARD__MAX_SCENES", "many", "storyboard.max_scenes='many'"),
    ],
)
def test_invalid_values_name_field_and_value(monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert named in str(info.value)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    (tmp_path / "pagereel.toml").write_text("[fetch]\ntimeout = 3\n")
    with pytest.raises(ConfigurationError, match="unknown setting 'fetch.timeout'"):
        load_settings()


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[fetch\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(tmp_path / "bad.toml")
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_settings(render={"fps": 0})


ADDRESS = "tcp://10.1.2.3:8786"


@pytest.mark.parametrize(
    ("file", "env", "arguments"),
    [
        (None, {"PAGEREEL_RUNNER": "dask", "PAGEREEL_RUNNER__ADDRESS": ADDRESS}, {}),
        ('runner = "dask"\n', {"PAGEREEL_RUNNER__ADDRESS": ADDRESS}, {}),
        (f'[runner]\naddress = "{ADDRESS}"\n', {"PAGEREEL_RUNNER": "dask"}, {}),
        (f'[runner]\naddress = "{ADDRESS}"\n', {}, {"runner": {"kind": "dask"}}),  # what --runner dask passes
        (None, {"PAGEREEL_RUNNER__ADDRESS": ADDRESS}, {"runner": "dask"}),
        ('runner = "ray"\n', {"PAGEREEL_RUNNER": "dask", "PAGEREEL_RUNNER__ADDRESS": ADDRESS}, {}),
    ],
    ids=["env-name+env-address", "file-name+env-address", "file-address+env-name", "file-address+flag",
         "argument-name+env-address", "env-beats-file"],
)
def test_runner_name_and_address_combine_from_any_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         file: str | None, env: dict[str, str],
                                                         arguments: dict) -> None:
    if file is not None:
        (tmp_path / "pagereel.toml").write_text(file)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = load_settings(**arguments).runner
    assert (runner.kind, runner.address) == ("dask", ADDRESS)


def test_runner_variables_keep_their_own_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_RUNNER", "ray")
    monkeypatch.setenv("PAGEREEL_RUNNER__MAX_WORKERS", "3")
    assert load_settings().runner.model_dump() == {"kind": "ray", "address": None, "max_workers": 3}
    monkeypatch.setenv("PAGEREEL_RUNNER__MAX_WORKERS", "0")
    with pytest.raises(ConfigurationError, match="runner.max_workers"):
        load_settings()


def test_caption_style_is_a_setting_a_run_may_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.settings import check_run_overrides

    monkeypatch.setenv("PAGEREEL_RENDER__CAPTION_STYLE", "karaoke")
    assert load_settings().render.caption_style == "karaoke"
    check_run_overrides({"render": {"caption_style": "bold", "resolution": 1080}})  # a deployment run may set them
    monkeypatch.setenv("PAGEREEL_RENDER__CAPTION_STYLE", "loud")
    with pytest.raises(ConfigurationError, match="render.caption_style='loud'"):
        load_settings()
