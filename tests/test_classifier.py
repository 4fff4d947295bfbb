"""StanceClassifier on a tiny random BERT: predict contract, fast-path fidelity, save/load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from stance.model import LABELS, InputDataError, LabelMappingError, ModelLoadError, StanceClassifier
from tests.conftest import build_tiny_model_dir

PAIRS = [
    ("the man is playing a guitar", "a man is not playing"),
    ("kids are playing in the yard", "some kids are outside"),
    ("the dog is running in the park " * 12, "a dog is running"),
    ("ukraine tried to assassinate putin with drones", "we did not attack putin or moscow"),
    ("a woman", "a woman is eating food near the big house with two dogs"),
]


def reference_probabilities(model_dir, pairs, max_length):
    """Softmax of the raw transformers model, one padded batch, canonical column order."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    batch = tokenizer(
        [p for p, _ in pairs],
        [h for _, h in pairs],
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = model(**batch).logits
    probabilities = torch.softmax(logits.double(), dim=-1).numpy()
    by_name = {name.lower(): index for index, name in model.config.id2label.items()}
    names = {
        "support": ("entailment", "support"),
        "contradict": ("contradiction", "contradict"),
        "neutral": ("neutral",),
    }
    columns = [next(by_name[n] for n in names[label] if n in by_name) for label in LABELS]
    return probabilities[:, columns]


def test_predict_returns_one_type(tiny_classifier):
    result = tiny_classifier.predict(PAIRS)
    assert isinstance(result.labels, list) and all(label in LABELS for label in result.labels)
    assert result.probabilities.shape == (len(PAIRS), 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-12)
    assert [LABELS[i] for i in result.probabilities.argmax(axis=1)] == result.labels
    assert result.truncated.dtype == bool and result.truncated.shape == (len(PAIRS),)
    two_lists = tiny_classifier.predict([p for p, _ in PAIRS], [h for _, h in PAIRS])
    np.testing.assert_array_equal(two_lists.probabilities, result.probabilities)


def test_probabilities_equal_softmax_of_raw_model(tiny_model_dir, tiny_classifier):
    # The fast path (length sorting, token budget, own padding) must not drift from plain transformers.
    ours = tiny_classifier.predict(PAIRS, batch_size=2).probabilities
    np.testing.assert_allclose(
        ours, reference_probabilities(tiny_model_dir, PAIRS, tiny_classifier.max_length), atol=1e-6
    )


@pytest.mark.parametrize(
    "id2label",
    [{0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}, {0: "contradiction", 1: "entailment", 2: "neutral"}],
    ids=["roberta-order", "cross-encoder-order"],
)
def test_other_label_orders_give_canonical_columns(tmp_path, id2label):
    model_dir = build_tiny_model_dir(tmp_path / "m", id2label=id2label, seed=3)
    classifier = StanceClassifier.from_pretrained(model_dir, device="cpu")
    np.testing.assert_allclose(
        classifier.predict(PAIRS).probabilities, reference_probabilities(model_dir, PAIRS, 64), atol=1e-6
    )


def test_batch_size_does_not_change_results(tiny_classifier):
    one = tiny_classifier.predict(PAIRS, batch_size=1).probabilities
    many = tiny_classifier.predict(PAIRS, batch_size=64).probabilities
    np.testing.assert_allclose(one, many, atol=1e-6)
    again = tiny_classifier.predict(PAIRS, batch_size=64).probabilities
    np.testing.assert_array_equal(many, again)


def test_truncation_is_flagged(tiny_classifier):
    result = tiny_classifier.predict(PAIRS)
    assert result.truncated.tolist() == [False, False, True, False, False]


def test_symmetric_averages_both_orders(tiny_classifier):
    forward = tiny_classifier.predict(PAIRS).probabilities
    backward = tiny_classifier.predict([(h, p) for p, h in PAIRS]).probabilities
    both = tiny_classifier.predict(PAIRS, symmetric=True)
    np.testing.assert_allclose(both.probabilities, (forward + backward) / 2, atol=1e-12)
    swapped = tiny_classifier.predict([(h, p) for p, h in PAIRS], symmetric=True)
    np.testing.assert_allclose(swapped.probabilities, both.probabilities, atol=1e-12)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("a man", "")], "pair 0: hypothesis is empty; every pair needs two non-empty texts"),
        ([("a man", "x"), (None, "x")], "pair 1: premise is None; every pair needs two non-empty texts"),
        ([("a man",)], "pair 0: expected a (premise, hypothesis) tuple, got ('a man',)"),
        (
            ("a man", "a dog"),
            "predict takes a list of pairs; wrap a single pair in a list: predict([(premise, hypothesis)])",
        ),
    ],
)
def test_bad_pairs_raise_clear_errors(tiny_classifier, pairs, message):
    with pytest.raises(InputDataError) as error:
        tiny_classifier.predict(pairs)
    assert str(error.value) == message


def test_parallel_lists_must_match(tiny_classifier):
    with pytest.raises(InputDataError, match="got 2 premises but 1 hypotheses"):
        tiny_classifier.predict(["a", "b"], ["c"])


def test_save_load_round_trip_is_exact(tmp_path, tiny_model_dir):
    classifier = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")
    classifier.metadata.temperature = 1.7
    saved = classifier.save_pretrained(tmp_path / "saved")
    loaded = StanceClassifier.from_pretrained(saved, device="cpu")
    original_weights = load_file(tiny_model_dir / "model.safetensors")
    saved_weights = load_file(saved / "model.safetensors")
    assert original_weights.keys() == saved_weights.keys()
    for name, tensor in original_weights.items():
        assert torch.equal(tensor, saved_weights[name]), name
    assert loaded.metadata == classifier.metadata
    np.testing.assert_array_equal(loaded.predict(PAIRS).probabilities, classifier.predict(PAIRS).probabilities)
    # Plain transformers users see canonical names.
    config = json.loads((saved / "config.json").read_text())
    assert sorted(config["id2label"].values()) == sorted(LABELS)
    plain = AutoModelForSequenceClassification.from_pretrained(saved)
    assert set(plain.config.label2id) == set(LABELS)
    # Saving again over an existing directory replaces it atomically.
    classifier.save_pretrained(saved)
    assert not list(tmp_path.glob(".saved*"))


def test_temperature_scales_logits(tiny_model_dir):
    classifier = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")
    encoded = classifier.encode([p for p, _ in PAIRS], [h for _, h in PAIRS])
    logits = classifier.logits(encoded).astype(np.float64)
    classifier.metadata.temperature = 2.0
    expected = np.exp(logits / 2) / np.exp(logits / 2).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(classifier.predict(PAIRS).probabilities, expected, atol=1e-9)


def test_pickle_only_checkpoint_is_refused(tmp_path, tiny_model_dir):
    target = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, target)
    (target / "model.safetensors").unlink()
    torch.save({"weights": 1}, target / "pytorch_model.bin")
    with pytest.raises(
        ModelLoadError, match="only pickle weights found \\(pytorch_model.bin\\); stance loads safetensors only"
    ):
        StanceClassifier.from_pretrained(target)


def test_missing_and_corrupt_model_files(tmp_path, tiny_model_dir):
    with pytest.raises(ModelLoadError, match="model directory not found"):
        StanceClassifier.from_pretrained(tmp_path / "absent")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="broken"):
        StanceClassifier.from_pretrained(broken)
    no_config = tmp_path / "no_config"
    shutil.copytree(tiny_model_dir, no_config)
    (no_config / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="no config.json"):
        StanceClassifier.from_pretrained(no_config)


def test_anonymous_checkpoint_needs_label_map(tmp_path):
    model_dir = build_tiny_model_dir(tmp_path / "anon", id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(LabelMappingError, match="pass label_map="):
        StanceClassifier.from_pretrained(model_dir)
    classifier = StanceClassifier.from_pretrained(
        model_dir, label_map={"LABEL_0": "support", "LABEL_1": "neutral", "LABEL_2": "contradict"}
    )
    assert classifier.label_order == [0, 2, 1]


def test_window_mode_scores_long_premises(tiny_classifier):
    long_premise = "The man is playing a guitar. " * 20 + "Nobody is playing in the park. " * 20
    result = tiny_classifier.predict([(long_premise, "a man is playing"), ("a dog", "a cat")], long_text="window")
    assert result.window_spans is not None and len(result.window_spans) == 2
    start, end = result.window_spans[0]
    assert 0 <= start < end <= len(long_premise)
    assert result.window_spans[1] == (0, len("a dog"))
    assert not result.truncated.any()
    short = tiny_classifier.predict([("a dog", "a cat")])
    # Same text as truncate mode; only the batch's padding width differs (float noise ~1e-10).
    np.testing.assert_allclose(result.probabilities[1], short.probabilities[0], atol=1e-6)


def test_huge_texts_are_cut_exactly(tiny_classifier):
    # Pre-cutting a 4 MB premise by characters must give the same tokens as tokenising it whole.
    huge = "the man is playing a guitar in the park. " * 100_000
    spaced = "a" + " " * 5000 + "man " * 10  # fits after all: cut by characters would lose it
    fast = tiny_classifier.encode([huge, spaced], ["a man", "a man"])
    whole = tiny_classifier.tokenizer(
        [huge, spaced], ["a man", "a man"], truncation="longest_first", max_length=tiny_classifier.max_length
    )
    assert fast.input_ids == whole["input_ids"]
    assert fast.truncated.tolist() == [True, False]


def test_token_counts_ignore_the_last_calls_truncation(tiny_classifier):
    from stance.model.batching import token_counts
    from stance.model.windows import window_spans

    long_premise = "the man is playing a guitar in the park . " * 40
    tiny_classifier.encode([long_premise], ["a man"])  # leaves truncation set on the Rust backend
    assert token_counts(tiny_classifier.tokenizer, [long_premise]) == [400]
    spans = window_spans(tiny_classifier.tokenizer, long_premise, budget=50, stride=10)
    assert spans[-1][1] == len(long_premise.rstrip()) and len(spans) >= 8


# ------------------------------------------------------------------ evidence mode (long premises)
def test_evidence_mode_keeps_the_relevant_sentences_in_document_order(tiny_classifier):
    from stance.model.evidence import bm25_scores, select_evidence, sentence_spans

    filler = " ".join(f"the cat is sitting in the house number {i}." for i in range(40))
    premise = f"police said the man was riding a bike. {filler} kremlin said drones attacked moscow. {filler}"
    hypothesis = "drones attacked moscow"
    spans = sentence_spans(premise)
    assert premise[spans[0][0] : spans[0][1]] == "police said the man was riding a bike."
    scores = bm25_scores([premise[a:b] for a, b in spans], hypothesis)
    assert premise[slice(*spans[int(np.argmax(scores))])] == "kremlin said drones attacked moscow."
    (chosen,) = select_evidence(tiny_classifier.tokenizer, [premise], [hypothesis], 64, "lexical")
    assert "kremlin said drones attacked moscow." in chosen.text and chosen.dropped
    assert chosen.spans == sorted(chosen.spans)
    assert chosen.text == " ".join(premise[a:b] for a, b in chosen.spans)
    result = tiny_classifier.predict([(premise, hypothesis), ("a man", "a dog")], long_text="evidence")
    assert result.evidence_spans[0] == chosen.spans and result.truncated.tolist() == [True, False]
    assert result.evidence_spans[1] == [(0, len("a man"))]
    short = tiny_classifier.predict([("a man", "a dog")], long_text="truncate").probabilities
    np.testing.assert_allclose(result.probabilities[1:], short)  # a premise that fits is used whole


def test_embedding_ranker_embeds_each_distinct_text_once_with_the_same_scores(tiny_model_dir):
    """Rows that share an article (FNC-1: 182 bodies for 5,355 rows) reuse its sentence vectors;
    scores equal embedding every row on its own, and length-sorted batches come back in order."""
    import torch

    from stance.model.evidence import EmbeddingRanker

    ranker = EmbeddingRanker(str(tiny_model_dir), batch_size=2)
    body = ["a man rides a bike in the park today.", "it rained.", "the dog sleeps near the big red door."]
    other = ["a cat.", "the house is on a hill far away from the town."]
    sentence_lists, queries = [body, other, body, body], ["a man rides", "a cat", "a dog", "a man rides"]
    embedded: list[list[str]] = []
    original_embed = ranker.embed

    def counting_embed(texts):
        embedded.append(list(texts))
        return original_embed(texts)

    ranker.embed = counting_embed
    scores = ranker.scores_many(sentence_lists, queries)
    assert len(embedded) == 1 and sorted(embedded[0]) == sorted({*body, *other, *queries})
    for row, (sentences, query) in enumerate(zip(sentence_lists, queries, strict=True)):
        alone = original_embed([*sentences, query])
        expected = (alone[:-1] @ alone[-1]).tolist()
        np.testing.assert_allclose(scores[row], expected, atol=1e-5)
    vectors = original_embed(["a much longer sentence than the others here.", "short.", "mid length one."])
    assert torch.allclose(vectors[1], original_embed(["short."])[0], atol=1e-5)


def test_evidence_spans_column_in_score_output(tmp_path, tiny_classifier):
    import json

    filler = " ".join(f"the cat is sitting in the house number {i}." for i in range(40))
    data = tmp_path / "p.jsonl"
    data.write_text(
        json.dumps({"premise": f"drones attacked moscow. {filler}", "hypothesis": "drones attacked"}) + "\n"
    )
    out = tiny_classifier.score_file(data, tmp_path / "o.jsonl", long_text="evidence")
    row = json.loads(out.read_text())
    spans = json.loads(row["evidence_spans"])
    assert spans[0] == [0, len("drones attacked moscow.")] and row["truncated"] is True


def test_file_hashes_are_remembered_and_renewed_when_a_file_changes(tmp_path, tiny_model_dir, monkeypatch):
    """Repeat runs skip re-hashing unchanged model files (a fifth of a one-row ONNX command);
    a file rewritten in place is hashed again, so resume and the export cache see the change."""
    import shutil

    from stance.model import loading

    model = shutil.copytree(tiny_model_dir, tmp_path / "m")
    record = tmp_path / "cache" / "hashes.json"
    first = loading.file_hashes(model, record_path=record)
    assert first == loading.model_fingerprint(model) and record.exists()

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged file was hashed again")

    real = loading.model_fingerprint
    monkeypatch.setattr(loading, "model_fingerprint", no_reading)
    assert loading.file_hashes(model, record_path=record) == first
    monkeypatch.setattr(loading, "model_fingerprint", real)
    config = model / "config.json"
    config.write_text(config.read_text().replace('"hidden_act"', '"hidden_act" ', 1))
    changed = loading.file_hashes(model, record_path=record)
    assert changed["config.json"] != first["config.json"]
    assert {k: v for k, v in changed.items() if k != "config.json"} == {
        k: v for k, v in first.items() if k != "config.json"
    }


def test_the_token_budget_caps_cpu_batches_and_a_gpu_runs_the_batch_size_asked(tiny_classifier, monkeypatch):
    """On an H200 the CPU budget halved 128-row batches of 256-token articles; a GPU keeps them whole."""
    from stance.model import batching, classifier

    lengths = np.full(300, 256)
    on_cpu = batching.length_sorted_batches(lengths, 128, batching.default_token_budget("cpu"))
    on_gpu = batching.length_sorted_batches(lengths, 128, batching.default_token_budget("cuda"))
    assert max(map(len, on_cpu)) == 64 and max(map(len, on_gpu)) == 128
    budgets = []
    real = classifier.length_sorted_batches

    def recording(lengths, batch_size, token_budget):
        budgets.append(token_budget)
        return real(lengths, batch_size, token_budget)

    monkeypatch.setattr(classifier, "length_sorted_batches", recording)
    tiny_classifier.logits(tiny_classifier.encode(["a man plays"], ["a man"]))
    tiny_classifier.logits(tiny_classifier.encode(["a man plays"], ["a man"]), token_budget=None)
    assert budgets == [batching.CPU_TOKEN_BUDGET, None]


def test_torch_bf16_backend_holds_bf16_weights_scores_like_fp32_and_refuses_to_save(tiny_model_dir, tmp_path):
    reference = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu").predict(PAIRS)
    bf16 = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu", backend="torch-bf16")
    assert {parameter.dtype for parameter in bf16.model.parameters()} == {torch.bfloat16}
    result = bf16.predict(PAIRS)
    assert result.probabilities.dtype == reference.probabilities.dtype
    np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=0.02)
    with pytest.raises(ModelLoadError, match="load it with backend 'torch' \\(--backend torch\\) to save it"):
        bf16.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()
    # A model the caller wraps is copied, not cast: their fp32 classifier stays fp32.
    fp32 = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")
    wrapped = StanceClassifier(fp32.model, fp32.tokenizer, fp32.metadata, device="cpu", backend="torch-bf16")
    assert {parameter.dtype for parameter in wrapped.model.parameters()} == {torch.bfloat16}
    assert {parameter.dtype for parameter in fp32.model.parameters()} == {torch.float32}


@pytest.mark.parametrize("has_bf16", [True, False])
def test_auto_backend_takes_bf16_weights_only_on_a_cpu_that_multiplies_bf16(tiny_model_dir, monkeypatch, has_bf16):
    from stance.model import classifier as classifier_module

    monkeypatch.setattr(classifier_module, "cpu_has_bf16_instructions", lambda: has_bf16)
    auto = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu", backend="auto")
    assert auto.backend == ("torch-bf16" if has_bf16 else "torch"), "the classifier names what auto resolved to"
    dtypes = {parameter.dtype for parameter in auto.model.parameters()}
    assert dtypes == ({torch.bfloat16} if has_bf16 else {torch.float32})
    assert classifier_module.resolve_backend("auto", torch.device("cuda")) == "torch", "CUDA autocasts already"
    assert classifier_module.resolve_backend("onnx", torch.device("cpu")) == "onnx"
    # The Python API stays exact unless asked: from_pretrained's default is fp32.
    assert StanceClassifier.from_pretrained(tiny_model_dir, device="cpu").backend == "torch"


def test_the_cli_spells_out_every_backend():
    from stance.cli import BACKEND_CHOICES
    from stance.model.classifier import AUTO_BACKEND, BACKENDS

    assert set(BACKEND_CHOICES) == {*BACKENDS, AUTO_BACKEND}


def test_a_onednn_cap_below_bf16_counts_as_a_cpu_without_bf16(monkeypatch):
    from stance.model.classifier import cpu_has_bf16_instructions

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu_has_bf16_instructions()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_bf16")
    assert cpu_has_bf16_instructions() == bool(
        torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    )
