"""Recipes: YAML -> frozen dataclasses, unknown keys and bad types are errors, --set overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stance.model.errors import ConfigError
from stance.training.config import load_config

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


BASE = "data:\n  train:\n    - {path: a.jsonl}\n"


def test_every_shipped_recipe_loads():
    for recipe in sorted((REPO / "configs").glob("*.yaml")):
        config = load_config(recipe)
        assert config.data.train, recipe


def test_overrides_are_typed(tmp_path):
    config = load_config(write(tmp_path, BASE), ["training.learning_rate=3e-5", "model.lora.enabled=true"])
    assert config.training.learning_rate == 3e-5 and isinstance(config.training.learning_rate, float)
    assert config.model.lora.enabled is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.epochs = 9


def test_overrides_reach_list_items(tmp_path):
    config = load_config(write(tmp_path, BASE), ["data.train.0.max_rows=10", "data.train.0.label_map={a: support}"])
    assert config.data.train[0].max_rows == 10 and config.data.train[0].label_map == {"a": "support"}
    with pytest.raises(ConfigError, match="data.train is a list of 1; use an index 0..0"):
        load_config(write(tmp_path, BASE), ["data.train.3.max_rows=10"])


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, BASE + "training:\n  learning_rte: 0.1\n"))
    assert "training: unknown key(s) ['learning_rte']; allowed keys are [" in str(error.value)
    with pytest.raises(ConfigError, match="unknown key\\(s\\) \\['colour'\\]"):
        load_config(write(tmp_path, BASE), ["model.colour=red"])


def test_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="training.epochs: expected a number, got 'many'"):
        load_config(write(tmp_path, BASE), ["training.epochs=many"])
    with pytest.raises(ConfigError, match="model.lora.enabled: expected true or false, got 'yes please'"):
        load_config(write(tmp_path, BASE), ["model.lora.enabled=yes please"])
    with pytest.raises(ConfigError, match="label_map: 'agree' -> 'pro'; targets must be one of"):
        load_config(write(tmp_path, "data:\n  train:\n    - {path: a.jsonl, label_map: {agree: pro}}\n"))
    with pytest.raises(ConfigError, match="data.train: list at least one training file"):
        load_config(write(tmp_path, "training: {epochs: 1}\n"))
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_config(write(tmp_path, BASE), ["training.epochs"])
    with pytest.raises(ConfigError, match="recipe not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"data.train\[0\].in_mean: only dev sets are averaged"):
        load_config(write(tmp_path, "data:\n  train:\n    - {path: a.jsonl, in_mean: false}\n"))
    with pytest.raises(ConfigError, match=r"data.test\[0\].in_mean: only dev sets are averaged"):
        load_config(write(tmp_path, "data:\n  train: [{path: a.jsonl}]\n  test: [{path: b.jsonl, in_mean: false}]\n"))
    with pytest.raises(ConfigError, match="every set has in_mean: false"):
        load_config(write(tmp_path, "data:\n  train: [{path: a.jsonl}]\n  dev: [{path: b.jsonl, in_mean: false}]\n"))
    with pytest.raises(ConfigError, match="early_stopping_patience: 2 needs evaluations, but eval_strategy is 'no'"):
        load_config(write(tmp_path, BASE), ["training.eval_strategy='no'", "training.early_stopping_patience=2"])


def test_resolved_config_round_trips(tmp_path):
    config = load_config(REPO / "configs" / "default.yaml")
    import yaml

    again = load_config(write(tmp_path, yaml.safe_dump(config.to_dict())))
    assert again == config


def test_recipe_reference_is_generated_and_current():
    from pathlib import Path

    from stance.training.config import recipe_reference

    text = recipe_reference()
    committed = (Path(__file__).resolve().parents[1] / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert committed == text, "docs/recipes.md is stale: python -m stance.training.config > docs/recipes.md"
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows and all(not line.rstrip().endswith("|  |") for line in rows), "a recipe key has no description"


def test_custom_columns_recipe_reads_renamed_columns_and_label_map():
    from pathlib import Path

    from stance.training.config import load_config
    from stance.training.data import data_summary, prepare_data

    repo = Path(__file__).resolve().parents[1]
    import os

    cwd = os.getcwd()
    os.chdir(repo)
    try:
        config = load_config("configs/custom-columns.yaml")
        prepared = prepare_data(config)
    finally:
        os.chdir(cwd)
    assert prepared.train.label_counts() == {"support": 3, "contradict": 3, "neutral": 6}
    assert config.model.base == "default"
    assert "| train | mine | 12 |" in data_summary(prepared)
