"""config.load_settings: defaults, user file, environment, unknown keys and bad values."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, EngineSettings, apply_overrides, load_settings
from config.values import parse


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(in_tmp: Path) -> None:
    settings = load_settings(env={})
    assert settings.shared_dir == in_tmp / "shared" / "ocr_input"
    assert settings.data_dir == in_tmp / "data"
    assert settings.redis_url is None
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 8080, "INFO")
    # default.toml and the dataclass defaults must not drift apart.
    assert settings.engine == EngineSettings()


def test_user_file_overrides_defaults(in_tmp: Path) -> None:
    user = write(
        in_tmp / "team.toml",
        'port = 9000\nshared_dir = "/srv/share"\nredis_url = "redis://r:6379/0"\n'
        '[engine]\nmodel_set = "tiny"\ndet_box_thresh = 1\n',
    )
    settings = load_settings(user, env={})
    assert settings.port == 9000
    assert settings.shared_dir == Path("/srv/share")
    assert settings.redis_url == "redis://r:6379/0"
    assert settings.engine.model_set == "tiny"
    assert isinstance(settings.engine.det_box_thresh, float)
    assert settings.engine.det_box_thresh == 1.0
    assert settings.engine.rec_batch_size == 4  # untouched keys keep their defaults


def test_user_file_from_env_and_env_wins(in_tmp: Path) -> None:
    user = write(in_tmp / "team.toml", 'port = 9000\nhost = "0.0.0.0"\n')
    settings = load_settings(env={"TEAMOCR_CONFIG": str(user), "TEAMOCR_PORT": "9100"})
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)


def test_env_override_and_nested_engine_keys(in_tmp: Path) -> None:
    env = {
        "TEAMOCR_DATA_DIR": "state",
        "TEAMOCR_LOG_LEVEL": "debug",
        "TEAMOCR_ENGINE__MODEL_SET": "tiny",
        "TEAMOCR_ENGINE__THREADS": "4",
        "TEAMOCR_ENGINE__DET_BOX_THRESH": "0.65",
        "TEAMOCR_ENGINE__MAX_IMAGE_PIXELS": "50_000_000",
        "OTHER_VARIABLE": "ignored",
    }
    settings = load_settings(env=env)
    assert settings.data_dir == in_tmp / "state"
    assert settings.log_level == "DEBUG"
    assert settings.engine.model_set == "tiny"
    assert settings.engine.threads == 4
    assert settings.engine.det_box_thresh == 0.65
    assert settings.engine.max_image_pixels == 50_000_000


@pytest.mark.parametrize(
    ("toml", "key"),
    [("colour = 1\n", "colour"), ("[engine]\nbeam_width = 5\n", "engine.beam_width"), ("[webui]\nport = 1\n", "webui")],
)
def test_unknown_key_in_file_names_key_and_file(in_tmp: Path, toml: str, key: str) -> None:
    user = write(in_tmp / "team.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_settings(user, env={})
    assert info.value.key == key
    assert key in str(info.value) and "team.toml" in str(info.value)


@pytest.mark.parametrize("name", ["TEAMOCR_COLOUR", "TEAMOCR_ENGINE__BEAM_WIDTH", "TEAMOCR_ENGINE"])
def test_unknown_env_var_names_it(in_tmp: Path, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={name: "1"})
    assert name in str(info.value) and "environment" in str(info.value)


@pytest.mark.parametrize(
    ("toml", "env", "named"),
    [
        ('port = "eighty"\n', {}, "port"),
        ("port = true\n", {}, "port"),
        ("[engine]\nthreads = 1.5\n", {}, "engine.threads"),
        ("[engine]\ndet_thresh = 1.5\n", {}, "engine.det_thresh"),
        ('[engine]\nmodel_set = "huge"\n', {}, "engine.model_set"),
        ("", {"TEAMOCR_PORT": "eighty"}, "TEAMOCR_PORT"),
        ("", {"TEAMOCR_PORT": "70000"}, "TEAMOCR_PORT"),
        ("", {"TEAMOCR_ENGINE__REC_BATCH_SIZE": "0"}, "TEAMOCR_ENGINE__REC_BATCH_SIZE"),
        ("", {"TEAMOCR_ENGINE__DET_THRESH": "high"}, "TEAMOCR_ENGINE__DET_THRESH"),
        ('[engine]\nrec_cascade = "small"\n', {}, "engine.rec_cascade"),
        ('[engine]\nrec_cascade_signal = "median"\n', {}, "engine.rec_cascade_signal"),
        ("", {"TEAMOCR_ENGINE__REC_CASCADE_GATE": "-0.5"}, "TEAMOCR_ENGINE__REC_CASCADE_GATE"),
    ],
)
def test_bad_value_names_key(in_tmp: Path, toml: str, env: dict[str, str], named: str) -> None:
    user = write(in_tmp / "team.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_settings(user, env=env)
    assert named in str(info.value)


def test_type_error_says_expected_type_and_value() -> None:
    with pytest.raises(ConfigError, match=r"TEAMOCR_PORT: expected int, got 'x'"):
        parse("port", "x", int, source="environment", label="TEAMOCR_PORT", from_text=True)


@pytest.mark.parametrize(
    ("text", "typ", "value"),
    [
        ("yes", bool, True),
        ("Off", bool, False),
        ("12", int, 12),
        ("0.5", float, 0.5),
        ("a b", str, "a b"),
        ("/x/y", Path, Path("/x/y")),
    ],
)
def test_env_text_coercion(text: str, typ: type, value: object) -> None:
    assert parse("some.key", text, typ, source="environment", from_text=True) == value


@pytest.mark.parametrize(
    ("toml", "env", "value"),
    [
        ("rec_cascade = true\n", {}, "tiny"),
        ("rec_cascade = false\n", {}, "off"),
        ('rec_cascade = "tiny"\n', {}, "tiny"),
        ("", {"TEAMOCR_ENGINE__REC_CASCADE": "yes"}, "tiny"),
        ("", {"TEAMOCR_ENGINE__REC_CASCADE": "off"}, "off"),
        ("", {"TEAMOCR_ENGINE__REC_CASCADE": "Tiny"}, "tiny"),
    ],
)
def test_rec_cascade_takes_a_boolean_or_the_set_name(in_tmp: Path, toml: str, env: dict[str, str], value: str) -> None:
    user = write(in_tmp / "team.toml", "[engine]\n" + toml)
    assert load_settings(user, env=env).engine.rec_cascade == value


def test_bool_rejects_other_text() -> None:
    with pytest.raises(ConfigError, match="expected bool"):
        parse("some.flag", "maybe", bool, source="environment", from_text=True)


def test_bad_or_missing_user_file_names_it(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match="missing.toml"):
        load_settings(in_tmp / "missing.toml", env={})
    broken = write(in_tmp / "broken.toml", "port = \n")
    with pytest.raises(ConfigError, match="broken.toml: invalid TOML"):
        load_settings(broken, env={})


def test_apply_overrides_checks_values(in_tmp: Path) -> None:
    settings = load_settings(env={})
    changed = apply_overrides(settings, {"engine.det_box_thresh": 0.7}, "command line")
    assert changed.engine.det_box_thresh == 0.7 and settings.engine.det_box_thresh == 0.5
    with pytest.raises(ConfigError, match="command line: engine.det_box_thresh"):
        apply_overrides(settings, {"engine.det_box_thresh": 2.0}, "command line")


def test_config_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(ConfigError("a.toml", "unknown setting", "x")))
    assert str(error) == "a.toml: x: unknown setting"


def test_import_reads_nothing() -> None:
    # A broken environment must not break imports: settings are read only when asked for.
    code = "import config, config.settings, cli.main; print('ok')"
    env = {"TEAMOCR_PORT": "not-a-port", "PATH": ""}
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_channel_tables_and_env_set_a_channels_engine(in_tmp: Path) -> None:
    """[channels.<name>] and TEAMOCR_CHANNELS__<NAME>__<KEY> set the engine keys a channel may set,
    checked as the engine's own; names match whatever their case; a child gets them in its env."""
    from config.settings import settings_env

    user = write(
        in_tmp / "team.toml",
        '[channels.Receipts]\ndet_box_thresh = 0.3\nmodel_set = "tiny"\n[channels.whiteboards]\nenhance = "clahe"\n',
    )
    settings = load_settings(user, env={"TEAMOCR_CHANNELS__SHOTS__DET_THRESH": "0.2"})
    assert settings.channel_engine("receipts") == {"det_box_thresh": 0.3, "model_set": "tiny"}
    assert settings.channel_engine("Receipts") == settings.channel_engine("RECEIPTS")
    assert settings.channel_engine("shots") == {"det_thresh": 0.2}
    assert settings.channel_engine("finance") == {}
    merged = load_settings(user, env={"TEAMOCR_CHANNELS__RECEIPTS__DET_BOX_THRESH": "0.4"})
    assert merged.channel_engine("Receipts") == {"det_box_thresh": 0.4, "model_set": "tiny"}  # the env wins
    child = load_settings(env=settings_env(settings))
    assert {c.name.lower(): c.overrides() for c in child.channels} == {
        c.name.lower(): c.overrides() for c in settings.channels
    }
    with pytest.raises(ConfigError, match="a channel may set only"):
        load_settings(env={"TEAMOCR_CHANNELS__SHOTS__THREADS": "2"})
    with pytest.raises(ConfigError, match="between 0 and 1"):
        load_settings(write(in_tmp / "bad.toml", "[channels.x]\ndet_box_thresh = 3\n"), env={})
    with pytest.raises(ConfigError, match="must be one of"):
        load_settings(env={"TEAMOCR_CHANNELS__X__MODEL_SET": "huge"})
