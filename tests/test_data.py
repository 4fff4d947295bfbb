"""Training data: validation errors name file/row/column; caps and weights are seeded."""

from __future__ import annotations

import json

import pytest

from stance.model.errors import InputDataError, LabelMappingError
from stance.training.config import DatasetConfig
from stance.training.data import load_dataset_file, load_datasets

FNC_MAP = {"agree": "support", "disagree": "contradict", "discuss": "neutral", "unrelated": "neutral"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def rows(n, stance="agree"):
    return [{"body": f"body {i}", "headline": f"head {i}", "stance": stance} for i in range(n)]


def spec(path, **kwargs):
    return DatasetConfig(
        path=str(path),
        premise_column="body",
        hypothesis_column="headline",
        label_column="stance",
        label_map=FNC_MAP,
        **kwargs,
    )


def test_label_map_and_columns(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", rows(2) + rows(1, "disagree") + rows(1, "unrelated"))
    data = load_dataset_file(spec(path))
    assert data.labels == [0, 0, 1, 2] and data.premises[0] == "body 0" and data.hypotheses[0] == "head 0"
    assert data.source_labels == ["agree", "agree", "disagree", "unrelated"]


def test_unknown_label_names_file_row_column(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", rows(2) + rows(1, "refutes"))
    with pytest.raises(LabelMappingError) as error:
        load_dataset_file(spec(path))
    assert str(error.value).startswith(
        f"{path}, row 3, column 'stance': unknown label 'refutes'; label_map expects one of"
    )


def test_empty_text_names_file_row_column(tmp_path):
    bad = rows(3)
    bad[1]["headline"] = "   "
    path = write_jsonl(tmp_path / "d.jsonl", bad)
    with pytest.raises(InputDataError) as error:
        load_dataset_file(spec(path))
    assert (
        str(error.value)
        == f"{path}, row 2, column 'headline': empty or missing text ('   '); remove the row or fill in the text"
    )


def test_missing_column(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", rows(2))
    with pytest.raises(
        InputDataError, match="no label column 'label'; the file has columns \\['body', 'headline', 'stance'\\]"
    ):
        load_dataset_file(DatasetConfig(path=str(path), premise_column="body", hypothesis_column="headline"))


def test_caps_weights_and_determinism(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", rows(50) + rows(10, "disagree") + rows(100, "unrelated"))
    capped = load_dataset_file(spec(path, label_caps={"neutral": 20}))
    assert capped.label_counts() == {"support": 50, "contradict": 10, "neutral": 20}
    assert load_dataset_file(spec(path, label_caps={"neutral": 20})).premises == capped.premises
    doubled = load_dataset_file(spec(path, weight=2.0, max_rows=30))
    assert len(doubled) == 60
    half = load_dataset_file(spec(path, weight=0.5))
    assert len(half) == 80


def test_a_sample_seed_keeps_a_sets_rows_whatever_the_training_seed(tmp_path):
    from stance.model.errors import ConfigError
    from stance.training.config import load_config

    path = write_jsonl(tmp_path / "d.jsonl", rows(200, "unrelated"))
    by_seed = {seed: load_dataset_file(spec(path, max_rows=20), seed=seed).premises for seed in (13, 14)}
    assert by_seed[13] != by_seed[14], "the training seed draws the sample"
    pinned = spec(path, max_rows=20, sample_seed=13)
    assert load_dataset_file(pinned, seed=14).premises == by_seed[13]
    assert load_dataset_file(pinned, seed=99).premises == by_seed[13]

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data:\n  train:\n    - {{path: {path}, sample_seed: -1}}\n")
    with pytest.raises(ConfigError, match=r"data.train\[0\].sample_seed: must be >= 0"):
        load_config(recipe)


def test_reverse_contradict_adds_swapped_contradict_rows_only(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", rows(3) + rows(2, "disagree") + rows(4, "unrelated"))
    data = load_dataset_file(spec(path, augment=("reverse_contradict",), label_caps={"neutral": 1}))
    assert data.label_counts() == {"support": 3, "contradict": 4, "neutral": 1}
    pairs = list(zip(data.premises, data.hypotheses, data.labels, strict=True))
    originals = [(p, h) for p, h, label in pairs[:-2] if label == 1]
    assert [(p, h) for p, h, _ in pairs[-2:]] == [(h, p) for p, h in originals]
    assert len(load_dataset_file(spec(path, augment=("reverse_contradict",), weight=2.0))) == 2 * 11


def test_unknown_augmentation_is_a_config_error(tmp_path):
    from stance.model.errors import ConfigError
    from stance.training.config import load_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  train:\n    - {path: x.jsonl, augment: [reverse_all]}\n")
    with pytest.raises(ConfigError, match=r"augment: unknown \['reverse_all'\]"):
        load_config(recipe)


def test_fingerprints(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", rows(3))
    data, prints = load_datasets((spec(path, name="toy"),))
    assert len(data) == 3 and prints["toy"]["rows_used"] == 3 and len(prints["toy"]["sha256"]) == 64


def test_csv_with_quotes_and_newlines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('body,headline,stance\n"line one\nline two, with ""quotes""",head,agree\n')
    data = load_dataset_file(spec(path))
    assert data.premises == ['line one\nline two, with "quotes"']


@pytest.mark.integration
def test_real_sick_and_fnc1(data_dir):
    sick = load_dataset_file(DatasetConfig(path=str(data_dir / "sick" / "dev.jsonl")))
    assert len(sick) == 495 and sick.label_counts() == {"support": 143, "contradict": 71, "neutral": 281}
    fnc = load_dataset_file(
        DatasetConfig(path=str(data_dir / "fnc1" / "dev.jsonl"), label_column="source_label", label_map=FNC_MAP)
    )
    assert fnc.label_counts() == {"support": 392, "contradict": 63, "neutral": 4900}
