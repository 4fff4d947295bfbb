"""Shared fixtures: a tiny random BERT + WordPiece tokenizer built offline, data paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("STANCE_DATA_DIR", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = (
    "a the man woman dog cat is are not no playing running sitting eating standing in on at park yard house "
    "kids boys girls group and with near of street guitar ball food some there nobody person people young old "
    "ukraine putin moscow drones attack attacked tried to assassinate we did kremlin statement said denied "
    "confirmed report police water car bike riding two three one outside inside big small"
).split()


def build_tiny_model_dir(directory: Path, id2label: dict[int, str] | None = None, seed: int = 0) -> Path:
    """Write a random 2-layer BERT (hidden 32) and a WordPiece tokenizer to ``directory``."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {
        token: index
        for index, token in enumerate(specials + sorted(set(WORDS)) + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'"))
    }
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(f"##{letter}", len(vocab))
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    id2label = id2label or {0: "entailment", 1: "neutral", 2: "contradiction"}
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def build_tiny_adapter_dir(root: Path, base_dir: Path, label_map: dict | None = None, **lora_options) -> Path:
    """A LoRA adapter with its head on a tiny base, saved as `stance train` exports one (the base's
    NLI head is kept in its own order, entailment/neutral/contradiction, as training keeps it).
    ``label_map`` names a head of other names; like an adapter trained outside stance, the
    adapter does not record it. ``lora_options`` override the LoraConfig (r=4, alpha 8, query
    and value, the classifier saved). B (and a DoRA magnitude) gets weights that change the
    outputs, and the saved head differs from the base's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from stance.model.labels import trained_head_id2label
    from stance.model.metadata import StanceMetadata

    torch.manual_seed(1)
    id2label = trained_head_id2label(AutoConfig.from_pretrained(base_dir).id2label, label_map)
    label2id = {label: index for index, label in id2label.items()}
    base = AutoModelForSequenceClassification.from_pretrained(
        base_dir, num_labels=3, id2label=id2label, label2id=label2id, ignore_mismatched_sizes=True
    )
    options = {"r": 4, "lora_alpha": 8, "target_modules": ["query", "value"], "modules_to_save": ["classifier"]}
    peft_model = get_peft_model(base, LoraConfig(**(options | lora_options)))
    with torch.no_grad():  # LoRA starts as a no-op (B = 0): give it weights that change the outputs
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name or "lora_magnitude" in name:
                parameter.normal_(0, 0.5)
            elif "modules_to_save" in name:
                parameter.add_(1.0)
    adapter = Path(root) / "adapter"
    peft_model.save_pretrained(adapter, safe_serialization=True)
    StanceMetadata(base_model=str(base_dir), max_length=64).save(adapter)
    return adapter


@pytest.fixture(scope="session", autouse=True)
def merged_cache_dir(tmp_path_factory) -> Path:
    """Merged adapter weights (stance.model.merged_cache) go to a folder of this test session,
    not the user's cache: tests neither fill it nor read what an earlier version wrote."""
    previous = os.environ.get("STANCE_MERGED_CACHE")
    folder = tmp_path_factory.mktemp("merged-cache")
    os.environ["STANCE_MERGED_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("STANCE_MERGED_CACHE", None)
    else:
        os.environ["STANCE_MERGED_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random NLI checkpoint (labels entailment, neutral, contradiction)."""
    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_dir):
    from stance.model import StanceClassifier

    return StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "sick" / "train.jsonl").exists():
        pytest.skip(f"real data not found at {DATA_DIR} (set STANCE_DATA_DIR to the shared data folder)")
    return DATA_DIR
