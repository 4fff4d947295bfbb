"""The one canonical label set, and mapping of checkpoint and data labels onto it.

Checkpoints are mapped **by name**, never by position: NLI checkpoints disagree on
order (roberta-large-mnli is CONTRADICTION, NEUTRAL, ENTAILMENT; cross-encoder/nli-*
is contradiction, entailment, neutral; many DeBERTa MNLI models are entailment,
neutral, contradiction). Anonymous ``LABEL_k`` names or two-way heads are an error
that tells the user to pass ``label_map=``.

Example:
    >>> checkpoint_to_canonical_order({0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"})
    [2, 0, 1]
"""

from __future__ import annotations

from collections.abc import Mapping

from stance.model.errors import LabelMappingError

LABELS: tuple[str, str, str] = ("support", "contradict", "neutral")
LABEL2ID: dict[str, int] = {label: index for index, label in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

# Names NLI checkpoints use, lower-cased, for each canonical label.
_KNOWN_NAMES: dict[str, str] = {
    "support": "support",
    "supports": "support",
    "entailment": "support",
    "entails": "support",
    "entail": "support",
    "contradict": "contradict",
    "contradiction": "contradict",
    "contradicts": "contradict",
    "neutral": "neutral",
}


def canonical_name(name: str) -> str | None:
    """Return the canonical label for a checkpoint label name, or None if unknown.

    Example:
        >>> canonical_name("ENTAILMENT")
        'support'
    """
    return _KNOWN_NAMES.get(str(name).strip().lower())


def checkpoint_to_canonical_order(
    id2label: Mapping[int | str, str],
    label_map: Mapping[str, str] | None = None,
) -> list[int]:
    """Return, for each canonical label in ``LABELS`` order, the checkpoint's logit index.

    Args:
        id2label: the checkpoint's ``config.id2label`` (keys may be ints or digit strings).
        label_map: optional explicit mapping from the checkpoint's label names to canonical
            names, required for anonymous (``LABEL_0``...) heads. A canonical label missing
            from the checkpoint is an error.

    Raises:
        LabelMappingError: when a label is unknown, duplicated, or a canonical label is missing.
    """
    names = {int(index): str(name) for index, name in id2label.items()}
    if sorted(names) != list(range(len(names))):
        raise LabelMappingError(f"config.id2label must have keys 0..N-1, got {sorted(names)}")
    explicit = dict(label_map or {})
    for source, target in explicit.items():
        if target not in LABEL2ID:
            raise LabelMappingError(f"label_map maps {source!r} to {target!r}; targets must be one of {list(LABELS)}")
    canonical_for_index: dict[int, str] = {}
    for index, name in names.items():
        target = explicit.get(name, explicit.get(str(index))) if explicit else None
        target = target or canonical_name(name)
        if target is None:
            raise LabelMappingError(
                f"cannot map checkpoint label {name!r} (index {index}) of labels "
                f"{[names[i] for i in sorted(names)]} to {list(LABELS)}; pass label_map= "
                f"(CLI: --checkpoint-label-map), e.g. label_map={{'{name}': 'support', ...}}"
            )
        canonical_for_index[index] = target
    found = sorted(canonical_for_index.values())
    if found != sorted(LABELS):
        raise LabelMappingError(
            f"checkpoint labels {[names[i] for i in sorted(names)]} map to {found}, but a stance "
            f"model needs exactly one output for each of {list(LABELS)}; a two-way or "
            f"otherwise incomplete head cannot be used as-is: fine-tune a 3-way head instead "
            f"(stance train), or pass label_map= naming one output for each label"
        )
    by_label = {label: index for index, label in canonical_for_index.items()}
    return [by_label[label] for label in LABELS]


def map_source_label(
    value: object,
    label_map: Mapping[str, str] | None,
    *,
    where: str,
) -> int:
    """Map one data-set label to a canonical label id.

    Args:
        value: the raw label from the data file.
        label_map: the recipe's mapping from source labels to canonical ones; when None,
            the value must already be canonical (or a known NLI name such as ENTAILMENT).
        where: "file X, row N, column C" for the error message.

    Raises:
        LabelMappingError: naming ``where``, the bad value and the expected labels.
    """
    raw = "" if value is None else str(value).strip()
    if label_map:
        target = label_map.get(raw)
        if target is None:
            raise LabelMappingError(
                f"{where}: unknown label {raw!r}; label_map expects one of "
                f"{sorted(label_map)} (add it to the recipe's label_map)"
            )
    else:
        target = raw if raw in LABEL2ID else canonical_name(raw)
        if target is None:
            raise LabelMappingError(
                f"{where}: unknown label {raw!r}; expected one of {list(LABELS)} "
                f"(or give the data set a label_map in the recipe)"
            )
    if target not in LABEL2ID:
        raise LabelMappingError(f"{where}: label_map maps {raw!r} to {target!r}, expected one of {list(LABELS)}")
    return LABEL2ID[target]


def nli_head_order(
    id2label: Mapping[int | str, str] | None, label_map: Mapping[str, str] | None = None
) -> list[int] | None:
    """A base checkpoint's output index for each canonical label when it already has a 3-way
    NLI head (training keeps and fine-tunes it), or None when training makes a new head.

    Example:
        >>> nli_head_order({0: "contradiction", 1: "entailment", 2: "neutral"})
        [1, 0, 2]
    """
    names = [str(name) for name in (id2label or {}).values()]
    if len(names) != len(LABELS) or (all(name.startswith("LABEL_") for name in names) and not label_map):
        return None
    return checkpoint_to_canonical_order(id2label, label_map)


def trained_head_id2label(
    base_id2label: Mapping[int | str, str] | None, label_map: Mapping[str, str] | None = None
) -> dict[int, str]:
    """Canonical names of the outputs of a head trained on a base with ``base_id2label``: the
    base's own order where it had an NLI head (kept in training), else ``LABELS`` order.

    A LoRA adapter stores its head's weights but not their names; loading it onto its base
    names them with this, as training did.
    """
    order = nli_head_order(base_id2label, label_map)
    if order is None:
        return dict(ID2LABEL)
    return {order[position]: label for position, label in enumerate(LABELS)}
