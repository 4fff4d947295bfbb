"""A pair tokenizer on the ``tokenizers`` library alone (no transformers, no torch).

The ONNX path loads this instead of ``AutoTokenizer``: importing transformers costs
seconds, the Rust tokenizer it wraps costs milliseconds. It implements the part of the
transformers fast-tokenizer interface that ``model.batching`` and ``model.windows``
use, and sets truncation exactly as transformers does on each call (strategy, length,
stride 0, side from ``tokenizer_config.json``), so the token ids are the same; a test
compares them with ``AutoTokenizer`` on real data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from stance.model.errors import ModelLoadError


def _token_text(value: object) -> str | None:
    """A special token from tokenizer_config.json: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class PairTokenizer:
    """Tokenise (premise, hypothesis) pairs with a model's ``tokenizer.json``."""

    # What BERT-style graphs take; narrowed by use_inputs() to what the exported graph takes
    # (transformers decides this by tokenizer class: BERT's have segment ids, others not).
    model_input_names: tuple[str, ...] = ("input_ids", "token_type_ids", "attention_mask")

    def __init__(
        self, backend, pad_token: str | None, truncation_side: str = "right", model_max_length: int | None = None
    ) -> None:
        self.backend_tokenizer = backend
        self.model_max_length = model_max_length
        self.truncation_side = truncation_side
        self.pad_token = pad_token
        self.pad_token_id = backend.token_to_id(pad_token) if pad_token is not None else None

    @classmethod
    def from_dir(cls, directory: str | Path) -> PairTokenizer:
        """Load ``tokenizer.json`` (+ ``tokenizer_config.json`` / ``special_tokens_map.json``)."""
        from tokenizers import Tokenizer

        directory = Path(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError(
                f"{directory}: no tokenizer.json; the fast path needs the fast tokenizer's file "
                f"(re-save the model with stance, or use --backend torch)"
            )
        try:
            backend = Tokenizer.from_file(str(path))
        except Exception as error:  # tokenizers raises plain Exception for unreadable files
            raise ModelLoadError(f"{path}: cannot read the tokenizer ({error})") from None
        settings: dict = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the latter wins, as in transformers
            file = directory / name
            if file.is_file():
                try:
                    settings |= json.loads(file.read_text(encoding="utf-8"))
                except json.JSONDecodeError as error:
                    raise ModelLoadError(f"{file}: corrupt JSON ({error})") from None
        limit = settings.get("model_max_length")
        return cls(
            backend,
            _token_text(settings.get("pad_token")),
            settings.get("truncation_side", "right"),
            int(limit) if isinstance(limit, (int, float)) and limit < 1e9 else None,
        )

    def use_inputs(self, names: set[str] | frozenset[str]) -> None:
        """Produce only the inputs a model takes (e.g. no ``token_type_ids`` for RoBERTa)."""
        self.model_input_names = tuple(n for n in ("input_ids", "token_type_ids", "attention_mask") if n in names)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """Special tokens the post-processor adds to one text or a pair ([CLS] a [SEP] b [SEP]: 3)."""
        processor = self.backend_tokenizer.post_processor
        return processor.num_special_tokens_to_add(pair) if processor is not None else 0

    def __call__(
        self,
        text: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        truncation: bool | str = False,
        max_length: int | None = None,
        padding: bool = False,
        return_attention_mask: bool = False,
        add_special_tokens: bool = True,
    ) -> dict[str, list[list[int]]]:
        """Token ids (and segment ids) of a batch, unpadded, like a transformers fast tokenizer."""
        if padding:
            raise ValueError("PairTokenizer returns unpadded rows; batches are padded by model.batching")
        backend = self.backend_tokenizer
        backend.no_padding()
        if truncation and max_length is not None:
            strategy = "longest_first" if truncation is True else str(truncation)
            backend.enable_truncation(max_length, stride=0, strategy=strategy, direction=self.truncation_side)
        else:
            backend.no_truncation()
        inputs = list(zip(text, text_pair, strict=True)) if text_pair is not None else list(text)
        encodings = backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        result = {"input_ids": [e.ids for e in encodings]}
        if "token_type_ids" in self.model_input_names:
            result["token_type_ids"] = [e.type_ids for e in encodings]
        if return_attention_mask:
            result["attention_mask"] = [e.attention_mask for e in encodings]
        return result
