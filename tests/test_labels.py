"""Label mapping by name, for the real label orders of common NLI checkpoints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stance.eval import metrics
from stance.model.errors import LabelMappingError
from stance.model.labels import LABELS, checkpoint_to_canonical_order, map_source_label

# Real orders, as published in each checkpoint's config.json.
ROBERTA_LARGE_MNLI = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}
CROSS_ENCODER_NLI = {0: "contradiction", 1: "entailment", 2: "neutral"}
DEBERTA_MNLI = {0: "entailment", 1: "neutral", 2: "contradiction"}


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [(ROBERTA_LARGE_MNLI, [2, 0, 1]), (CROSS_ENCODER_NLI, [1, 0, 2]), (DEBERTA_MNLI, [0, 2, 1])],
    ids=["roberta-large-mnli", "cross-encoder-nli", "deberta-mnli"],
)
def test_checkpoint_orders_map_by_name(id2label, expected):
    order = checkpoint_to_canonical_order(id2label)
    assert order == expected
    assert [id2label[i].lower() for i in order] == [
        {"support": "entailment", "contradict": "contradiction", "neutral": "neutral"}[label] for label in LABELS
    ]


def test_string_keys_as_in_config_json():
    assert checkpoint_to_canonical_order({"0": "CONTRADICTION", "1": "NEUTRAL", "2": "ENTAILMENT"}) == [2, 0, 1]


def test_anonymous_labels_need_explicit_map():
    with pytest.raises(LabelMappingError) as error:
        checkpoint_to_canonical_order({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    assert str(error.value) == (
        "cannot map checkpoint label 'LABEL_0' (index 0) of labels ['LABEL_0', 'LABEL_1', 'LABEL_2'] to "
        "['support', 'contradict', 'neutral']; pass label_map= (CLI: --checkpoint-label-map), e.g. label_map={'LABEL_0': 'support', ...}"
    )
    order = checkpoint_to_canonical_order(
        {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
        {"LABEL_0": "contradict", "LABEL_1": "neutral", "LABEL_2": "support"},
    )
    assert order == [2, 0, 1]


def test_two_way_checkpoint_is_refused():
    with pytest.raises(LabelMappingError, match="two-way or otherwise incomplete head"):
        checkpoint_to_canonical_order({0: "entailment", 1: "not_entailment"}, {"not_entailment": "neutral"})
    with pytest.raises(LabelMappingError, match="cannot map checkpoint label 'not_entailment'"):
        checkpoint_to_canonical_order({0: "entailment", 1: "not_entailment"})


def test_duplicate_targets_are_refused():
    with pytest.raises(LabelMappingError, match="needs exactly one output"):
        checkpoint_to_canonical_order({0: "entailment", 1: "ENTAILMENT", 2: "neutral"})


def test_bad_label_map_target():
    with pytest.raises(LabelMappingError, match="targets must be one of"):
        checkpoint_to_canonical_order({0: "LABEL_0"}, {"LABEL_0": "agree"})


def test_source_label_errors_name_the_place():
    fnc = {"agree": "support", "disagree": "contradict", "discuss": "neutral", "unrelated": "neutral"}
    assert map_source_label("disagree", fnc, where="x") == 1
    with pytest.raises(LabelMappingError) as error:
        map_source_label("refutes", fnc, where="data.csv, row 7, column 'stance'")
    assert str(error.value) == (
        "data.csv, row 7, column 'stance': unknown label 'refutes'; label_map expects one of "
        "['agree', 'disagree', 'discuss', 'unrelated'] (add it to the recipe's label_map)"
    )
    assert map_source_label("ENTAILMENT", None, where="x") == 0
    with pytest.raises(LabelMappingError, match="expected one of \\['support', 'contradict', 'neutral'\\]"):
        map_source_label("agree", None, where="x")


@given(st.permutations(["entailment", "contradiction", "neutral"]), st.sampled_from([str.lower, str.upper, str.title]))
def test_any_order_and_case_maps_correctly(names, case):
    id2label = {i: case(name) for i, name in enumerate(names)}
    order = checkpoint_to_canonical_order(id2label)
    canonical = {"entailment": "support", "contradiction": "contradict", "neutral": "neutral"}
    assert [canonical[id2label[i].lower()] for i in order] == list(LABELS)


def test_eval_metrics_uses_the_same_labels():
    assert metrics.LABELS == LABELS
