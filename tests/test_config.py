import pytest

from core.platform.config import AppConfig, ConfigError, load_config


def test_defaults_are_documented_values():
    config = AppConfig()
    assert config.model.max_length == 128
    assert (config.split.train, config.split.validation, config.split.test) == (0.8, 0.1, 0.1)


def test_workspace_comes_from_environment(tmp_path):
    config = load_config(environ={"FEEDBACK_STUDIO_WORKSPACE": str(tmp_path / "ws")})
    assert config.workspace_path == tmp_path / "ws"


def test_toml_file_overrides_defaults(write_file):
    path = write_file("settings.toml", "[model]\nmax_length = 64\n[training.quick]\nepochs = 2\n")
    config = load_config(path, environ={})
    assert config.model.max_length == 64
    assert config.training.quick.epochs == 2.0  # an int widens to the float field


def test_yaml_file_overrides_defaults(write_file):
    path = write_file("settings.yaml", "split:\n  train: 0.7\n  validation: 0.15\n  test: 0.15\n")
    assert load_config(path, environ={}).split.train == 0.7


def test_file_named_by_environment_variable(write_file):
    path = write_file("s.toml", "[data]\nmax_upload_mb = 5\n")
    assert load_config(environ={"FEEDBACK_STUDIO_CONFIG": str(path)}).data.max_upload_mb == 5


@pytest.mark.parametrize("content, message", [
    ("[model]\nmax_lenght = 64\n", "unknown setting 'model.max_lenght'"),
    ("[modle]\nname = 'x'\n", "unknown setting 'modle'"),
    ("[model]\nmax_length = 'long'\n", "model.max_length: expected int"),
    ("[split]\ntrain = 0.5\n", "split ratios must be non-negative and sum to 1"),
    ("model = 3\n", "model: expected a table"),
    ("[model\n", "is not valid"),
    ("[labelling]\nretrain_every = 0\n", "labelling: batch, candidates, pool_factor and retrain_every >= 1"),
])
def test_bad_files_are_refused_with_the_key(write_file, content, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(write_file("bad.toml", content), environ={})


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml", environ={})
