"""Training configs are checked by a schema: a wrong type is one line naming the file, the key
path, what was expected and what was found, never a traceback or a silent coercion."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeseg.errors import ConfigError
from edgeseg.training.config import TrainConfig


@pytest.mark.parametrize(("text", "says"), [
    ("epochs: thirty\n", "epochs: expected a whole number, found 'thirty'"),
    ("epochs: '30'\n", "epochs: expected a whole number, found '30'"),
    ("lr: fast\n", "lr: expected a number, found 'fast'"),
    ("input_size: '256'\n", "input_size: expected a whole number, found '256'"),
    ("batch_size: 8.5\n", "batch_size: expected a whole number, found 8.5"),
    ("weight_decay: null\n", "weight_decay: expected a number, found None"),
    ("augment: {hflip: [0.5]}\n", "augment.hflip: expected a number, found [0.5]"),
    ("augment: [hflip]\n", "augment: expected a mapping of setting: value, found ['hflip']"),
    ("augment: {mirror: 0.5}\n", "unknown settings augment.mirror"),
    ("learning_rate: 0.1\n", "unknown settings learning_rate"),
])
def test_a_wrong_value_in_a_training_config_is_one_line_naming_file_key_and_value(tmp_path, text, says):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_yaml(path)
    assert str(caught.value).startswith(f"{path}: {says}")
    assert "\n" not in str(caught.value)


def test_a_binary_training_config_is_refused_by_name(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="not a text file"):
        TrainConfig.from_yaml(path)


def test_a_wrong_value_set_after_loading_is_refused_too():
    cfg = TrainConfig()
    with pytest.raises(ConfigError, match="epochs: expected a whole number"):
        cfg.epochs = "many"
    assert cfg.epochs == 30


def test_yaml_pairs_and_whole_floats_are_taken_as_written(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("lr: 1\nmax_minutes: 29\naugment: {scale: [0.4, 1.0]}\n")
    cfg = TrainConfig.from_yaml(path)
    assert (cfg.lr, cfg.max_minutes, cfg.augment.scale) == (1.0, 29.0, (0.4, 1.0))


def test_the_benchmarked_config_is_the_recipe_train_starts_from():
    # the recipe's comments quote the training benchmark's figures: the two files must not drift apart
    root = Path(__file__).resolve().parents[2]
    recipe = TrainConfig.from_yaml(root / "edgeseg" / "training" / "recipe.yaml")
    benchmarked = TrainConfig.from_yaml(root / "benchmarks" / "configs" / "magnetic_tile_lraspp256_lean.yaml")
    assert benchmarked.model_dump() == recipe.model_dump()
    assert recipe.reduced_size_scale != TrainConfig().reduced_size_scale  # read from the file, not defaulted
