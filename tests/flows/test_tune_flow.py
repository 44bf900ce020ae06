"""The tuning flow on a small reference clip, the choice rule, and render profiles applied with --profile."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import redis
from optuna.distributions import CategoricalDistribution, IntDistribution
from typer.testing import CliRunner

from flows.profiles import RenderProfile, apply_profile, load_profile, redacted, write_profile
from flows.settings import load_settings
from flows.tune_flow import _render, choose, luma_frames, mean_ssim, reference_clip, run_tune
from flows.video_flow import app as video_app
from tasks.errors import ConfigurationError, PagereelError
from tasks.models import RenderOptions
from tests.conftest import redis_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_tuning(monkeypatch: pytest.MonkeyPatch, pagereel_env: Path) -> Path:
    monkeypatch.setenv("PAGEREEL_TUNING__RESOLUTION", "144")
    monkeypatch.setenv("PAGEREEL_TUNING__CLIP_SECONDS", "1.5")
    monkeypatch.setenv("PAGEREEL_RENDER__FPS", "12")
    monkeypatch.setenv("PAGEREEL_TUNING__SEED", "7")
    return pagereel_env


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api")
def test_tuning_writes_a_profile_whose_video_meets_the_floor(small_tuning: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGEREEL_TUNING__CONCURRENCY", "2")  # two trials at once on the thread runner
    result = run_tune(4, name="small")
    settings = load_settings()
    profile = load_profile(settings, "small")
    assert Path(result.profile_path) == small_tuning / ".pagereel" / "profiles" / "small.json"
    assert set(profile.render) == {"crf", "preset", "keyframe_interval", "threads", "resolution"}
    assert profile.render["resolution"] == settings.tuning.resolution  # what it was tuned at
    assert profile.study["ssim"] >= 0.95 and profile.study["trials"] == 4
    assert profile.study["trial"] in {p["trial"] for p in profile.study["pareto_front"]}

    study = optuna.load_study(study_name="pagereel-encoder",
                              storage=f"sqlite:///{small_tuning / '.pagereel' / 'profiles' / 'tuning.db'}")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 4 and trials[0].params["crf"] == 23  # the current defaults go first
    assert all(t.constraints == {"min_ssim": pytest.approx(0.95 - t.user_attrs["ssim"], abs=1e-5)} for t in trials)

    # The profile's own render of the clip, against a lossless one, meets the floor.
    tuned = apply_profile(load_settings(profile="small"))
    clip = reference_clip(str(ROOT / "examples" / "article.html"), tuned)
    lossless = luma_frames(_render(clip, clip.options.model_copy(update={"crf": 0, "preset": "ultrafast"})))
    assert mean_ssim(lossless, _render(clip, clip.options)) >= 0.95
    assert tuned.render.crf == profile.render["crf"] and tuned.render.preset == profile.render["preset"]

    # A second run continues the same study.
    run_tune(1, name="small")
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 5


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api")
def test_study_in_a_redis_journal(small_tuning: Path, empty_redis: redis.Redis,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    client = empty_redis  # the session's own redis-server (tests/conftest.py)
    url = redis_url(client)
    monkeypatch.setenv("PAGEREEL_TUNING__STORAGE", url)
    monkeypatch.setenv("PAGEREEL_TUNING__STUDY_NAME", "journal-test")
    try:
        result = run_tune(2, name="journal")
        assert result.trials_run == 2
        assert client.dbsize() > 0  # the study lives in Redis
        from flows.tune_flow import open_storage

        study = optuna.load_study(study_name="journal-test", storage=open_storage(load_settings()))
        assert len(study.trials) == 2
        assert load_profile(load_settings(), "journal").study["storage"] == url
    finally:
        client.flushdb()


def _trial(number: int, seconds: float, size: int, quality: float) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(
        values=[seconds, size], params={"crf": 20 + number, "preset": "fast"},
        distributions={"crf": IntDistribution(16, 40), "preset": CategoricalDistribution(["fast", "medium"])},
        user_attrs={"ssim": quality})
    trial.number = number
    return trial


def test_choice_is_the_fastest_near_the_smallest_that_meets_the_floor() -> None:
    trials = [
        _trial(0, 1.0, 1000, 0.99),   # fast but big
        _trial(1, 3.0, 500, 0.97),    # smallest
        _trial(2, 2.0, 540, 0.96),    # within 10 % of the smallest, faster: chosen
        _trial(3, 0.5, 300, 0.90),    # smallest and fastest, but under the floor
    ]
    assert choose(trials, 0.95, 0.10).number == 2
    assert choose(trials, 0.95, 0.0).number == 1
    with pytest.raises(PagereelError, match="no trial reached SSIM 0.999"):
        choose(trials, 0.999, 0.1)


def test_profile_fills_defaults_but_never_a_setting_the_user_pinned(pagereel_env: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    write_profile(settings, RenderProfile(name="quick", render={"crf": 30, "preset": "faster", "threads": 1,
                                                                "keyframe_interval": 60}))
    applied = apply_profile(load_settings(profile="quick"))
    assert (applied.render.crf, applied.render.preset, applied.render.threads) == (30, "faster", 1)
    monkeypatch.setenv("PAGEREEL_RENDER__CRF", "18")
    pinned = apply_profile(load_settings(profile="quick"))
    assert pinned.render.crf == 18 and pinned.render.preset == "faster" and pinned.render.keyframe_interval == 60
    assert apply_profile(load_settings()).render.crf == 18  # no profile: nothing changes


def test_unknown_or_broken_profiles_are_refused_clearly(pagereel_env: Path) -> None:
    settings = load_settings()
    with pytest.raises(ConfigurationError, match="known profiles: none yet"):
        apply_profile(load_settings(profile="nope"))
    write_profile(settings, RenderProfile(name="one", render={"crf": 20}))
    write_profile(settings, RenderProfile(name="two", render={"crf": 22}))
    with pytest.raises(ConfigurationError, match="unknown render profile 'nope'.*known profiles: one, two"):
        apply_profile(load_settings(profile="nope"))
    broken = pagereel_env / ".pagereel" / "profiles" / "bad.json"
    broken.write_text(json.dumps({"name": "bad", "render": {"crf": 99}}))
    with pytest.raises(ConfigurationError, match="bad.json.*not valid"):
        apply_profile(load_settings(profile="bad"))
    with pytest.raises(ConfigurationError, match="holds only"):
        write_profile(settings, RenderProfile(name="wide", render={"aspect": "9:16"}))
    done = CliRunner().invoke(video_app, ["examples/article.html", "--profile", "nope"])
    assert done.exit_code == 1 and "unknown render profile 'nope'" in done.output and "one, two" in done.output


def test_storage_passwords_never_reach_the_profile() -> None:
    assert redacted("postgresql://tuner:s3cret@db:5432/optuna") == "postgresql://tuner:***@db:5432/optuna"
    assert redacted("redis://127.0.0.1:6400/12") == "redis://127.0.0.1:6400/12"


def test_1080p_is_a_quality_preset_whose_encoder_settings_every_1080p_run_takes(pagereel_env: Path) -> None:
    from flows.profiles import BUILTIN_PROFILES

    hd = BUILTIN_PROFILES["1080p"].render
    preset = apply_profile(load_settings(profile="1080p")).render
    assert preset.resolution == 1080 and preset.size == (1920, 1080)
    assert (preset.preset, preset.crf, preset.keyframe_interval) == (hd["preset"], hd["crf"], hd["keyframe_interval"])
    # A run asking for 1080 names no profile and still gets the encoder settings chosen for 1080p...
    auto = apply_profile(load_settings(render={"resolution": 1080, "aspect": "9:16", "preset": "fast"})).render
    assert auto.size == (1080, 1920) and auto.crf == hd["crf"] != RenderOptions().crf
    assert auto.preset == "fast"  # ...under what it pinned
    assert apply_profile(load_settings()).render == load_settings().render  # 720p: nothing changes
    # A tuned profile of the same name takes the built-in one's place.
    write_profile(load_settings(), RenderProfile(name="1080p", render={"crf": 26, "resolution": 1080}))
    assert apply_profile(load_settings(render={"resolution": 1080})).render.crf == 26
