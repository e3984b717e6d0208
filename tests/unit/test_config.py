"""Config validation: bad keys and values are rejected with the key's path; the environment overrides the file."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifelong.cli import app
from lifelong.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_default_config_is_valid():
    settings = load_settings(ROOT / "configs" / "default.yaml")
    assert settings.codec.name == "f32"
    assert settings.model.max_classes == 10


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, "optim:\n  lr: 0.1\n  learning_rate: 0.2\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert ("optim.learning_rate", "unknown key") in err.value.problems


def test_negative_learning_rate_is_named(tmp_path):
    path = write(tmp_path, "optim:\n  lr: -0.1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    keys = [key for key, _ in err.value.problems]
    assert keys == ["optim.lr"]
    assert "greater than 0" in err.value.problems[0][1]


def test_environment_overrides_file(tmp_path, monkeypatch):
    path = write(tmp_path, "optim:\n  lr: 0.1\nkafka:\n  topics: [a]\n")
    monkeypatch.setenv("LIFELONG_OPTIM__LR", "0.02")
    monkeypatch.setenv("LIFELONG_KAFKA__BOOTSTRAP_SERVERS", "b1:9092,b2:9092")
    settings = load_settings(path)
    assert settings.optim.lr == 0.02
    assert settings.kafka.bootstrap_servers == ["b1:9092", "b2:9092"]
    assert settings.kafka.topics == ["a"]


def test_sasl_needs_mechanism(tmp_path):
    path = write(tmp_path, "kafka:\n  security_protocol: SASL_SSL\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.problems[0][0] == "kafka"
    assert "sasl_mechanism" in err.value.problems[0][1]


def test_digest_changes_with_the_state_shape_only():
    """Tuning what does not shape the saved tensors keeps the model's checkpoints usable."""
    base = load_settings(None)
    for same in ({"kafka": {"topics": ["other"]}}, {"replay": {"batch_size": 64}}, {"codec": {"num_features": 784}},
                 {"optim": {"lr": 0.5}}):
        assert load_settings(None, **same).digest() == base.digest(), same
    for other in ({"model": {"hidden": [10]}}, {"model": {"max_classes": 20}}, {"replay": {"capacity": 100}},
                  {"replay": {"kind": "herding"}}, {"strategies": [{"name": "ewc"}]}):
        assert load_settings(None, **other).digest() != base.digest(), other


def test_checkpoints_of_the_legacy_digest_still_load(tmp_path):
    from lifelong.daemon.checkpoint import CheckpointStore

    settings = load_settings(None, replay={"batch_size": 64})
    assert settings.legacy_digest() != settings.digest()
    CheckpointStore(tmp_path, config_digest=settings.legacy_digest()).save({"x": 1}, {("t", 0): 5})
    store = CheckpointStore(tmp_path, config_digest=settings.digest(), also_accept=(settings.legacy_digest(),))
    assert store.latest().offsets == {("t", 0): 5}
    assert CheckpointStore(tmp_path, config_digest=settings.digest()).latest() is None  # without it: refused


@pytest.mark.parametrize(
    ("text", "key"),
    [("optim:\n  lr: 0.1\n  bogus: 1\n", "optim.bogus"), ("optim:\n  lr: -1\n", "optim.lr"),
     ("codec:\n  num_features: 784\nmodel:\n  input_shape: [64]\n", "codec.num_features: 784 does not fit")],
)
def test_check_config_cli_rejects_with_exit_2(tmp_path, text, key):
    result = CliRunner().invoke(app, ["check-config", str(write(tmp_path, text))])
    assert result.exit_code == 2
    assert key in result.output


def test_check_config_cli_prints_effective_config():
    result = CliRunner().invoke(app, ["check-config", str(ROOT / "configs" / "default.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    assert '"max_classes": 10' in result.output


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("strategies:\n  - name: ewc\n    lambda_typo: 3\n", "strategies[0]"),
        ("strategies:\n  - name: nonsense\n", "strategies[0]"),
        ("drift:\n  detectors:\n    - detector: NotADetector\n", "drift.detectors[0]"),
    ],
)
def test_check_config_rejects_bad_components(tmp_path, text, key):
    result = CliRunner().invoke(app, ["check-config", str(write(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert key in result.output


def test_records_must_fit_the_model():
    """codec.num_features is what the model takes, or it is refused at start (not at the first training step)."""
    assert load_settings(None, codec={"num_features": 784}, model={"input_shape": [1, 28, 28]}).codec.num_features
    with pytest.raises(ConfigError) as err:
        load_settings(None, codec={"num_features": 100}, model={"input_shape": [1, 28, 28]})
    assert err.value.problems == [("codec.num_features", "100 does not fit model.input_shape [1, 28, 28] (784 "
                                                         "features)")]


def test_num_features_is_what_the_model_takes_whether_or_not_the_codec_names_it():
    assert load_settings(None, model={"input_shape": [1, 28, 28]}).num_features == 784
    assert load_settings(None, codec={"num_features": 12}, model={"input_shape": [3, 4]}).num_features == 12


def test_overrides_lay_over_the_file_section_by_section_and_are_validated_with_it(tmp_path):
    path = write(tmp_path, "model:\n  hidden: [32]\n  max_classes: 4\ncodec:\n  num_features: 784\n")
    settings = load_settings(path, model={"max_classes": 6})
    assert (settings.model.hidden, settings.model.max_classes) == ([32], 6)  # hidden kept from the file
    # the file's codec says 784: an override of the model's input alone is checked against it, and refused
    with pytest.raises(ConfigError) as err:
        load_settings(path, model={"input_shape": [8, 8]})
    assert [key for key, _ in err.value.problems] == ["codec.num_features"]
    assert load_settings(path, model={"input_shape": [8, 8]}, codec={"num_features": 64}).num_features == 64
