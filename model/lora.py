"""Merge a plain LoRA adapter into its base's weights without importing peft.

Why hand-written: importing peft costs 3-6 s on a 2-core CPU (``peft.utils.constants``
imports transformers' BLOOM model and the generation code to read one constant), and its
``merge_and_unload`` another ~1 s, which is most of the start-up of a one-pair ``stance score``
on the embedded default. For inference a plain LoRA adapter is only ``W += (B @ A) * alpha / r``
per target layer plus the head's saved weights, so that is done here directly.

Only what this file fully understands is merged: ``peft_type`` LORA, no DoRA, no per-layer rank
or alpha patterns, no LoRA bias, no weights transposed (``fan_in_fan_out``), no trainable token
or parameter targets, and every tensor in ``adapter_model.safetensors`` either a ``lora_A``/
``lora_B`` pair on an existing linear weight of matching shape or a full weight of a
``modules_to_save`` module. Anything else returns ``False`` before a weight is touched, and the
caller loads the adapter with peft as before (same result, slower). Tests compare the two.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_PREFIX = "base_model.model."  # peft names every saved tensor under its wrapper's prefix
_LORA_A, _LORA_B = ".lora_A.weight", ".lora_B.weight"
# Config fields that change what merging means; any truthy value sends the adapter to peft.
_UNSUPPORTED_WHEN_SET = (
    "use_dora",
    "alpha_pattern",
    "rank_pattern",
    "fan_in_fan_out",
    "lora_bias",
    "layer_replication",
    "trainable_token_indices",
    "target_parameters",
    "use_qalora",
    "use_bdlora",
    "arrow_config",
)


def lora_scale(config: dict[str, Any]) -> float | None:
    """The factor on ``B @ A`` for ``config`` (an ``adapter_config.json``), or None when this
    module does not merge such an adapter (see the module docstring)."""
    if config.get("peft_type") != "LORA" or config.get("bias", "none") != "none":
        return None
    if any(config.get(field) for field in _UNSUPPORTED_WHEN_SET):
        return None
    rank, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(rank, int) or rank <= 0 or not isinstance(alpha, (int, float)):
        return None
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


def merge_lora_in_place(model: Any, directory: Path) -> bool:
    """Merge the LoRA adapter saved in ``directory`` into ``model`` (a transformers model, the
    adapter's base with its head). Returns False, with ``model`` untouched, when the adapter is
    not one this module merges; the caller then uses peft."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        config = json.loads((directory / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    scale = lora_scale(config) if isinstance(config, dict) else None
    weights_file = directory / ADAPTER_WEIGHTS
    if scale is None or not weights_file.is_file():
        return False
    saved_modules = set(config.get("modules_to_save") or [])
    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError):
        return False  # peft reads it again and its error becomes the caller's ModelLoadError
    parameters = dict(model.named_parameters())

    pairs: dict[str, dict[str, Any]] = {}
    head: dict[str, Any] = {}
    for key, tensor in tensors.items():
        if not key.startswith(_PREFIX):
            return False
        name = key[len(_PREFIX) :]
        for suffix, side in ((_LORA_A, "A"), (_LORA_B, "B")):
            if name.endswith(suffix):
                pairs.setdefault(name[: -len(suffix)], {})[side] = tensor
                break
        else:
            module_path = name.split(".")[:-1]
            if name not in parameters or not saved_modules.intersection(module_path):
                return False
            if parameters[name].shape != tensor.shape:
                return False
            head[name] = tensor
    for module, sides in pairs.items():
        weight = parameters.get(f"{module}.weight")
        if set(sides) != {"A", "B"} or weight is None or weight.dim() != 2:
            return False
        if saved_modules.intersection(module.split(".")):  # LoRA inside a saved head: peft's order decides
            return False
        a, b = sides["A"], sides["B"]
        if a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0] or (b.shape[0], a.shape[1]) != weight.shape:
            return False
    # A saved module the adapter names must come whole: peft would otherwise keep the base's
    # (random) values for the missing part, and then neither path is right; peft decides.
    for name in parameters:
        if saved_modules.intersection(name.split(".")[:-1]) and name not in head:
            return False

    with torch.no_grad():
        for module, sides in pairs.items():
            weight = parameters[f"{module}.weight"]
            delta = sides["B"].to(torch.float32) @ sides["A"].to(torch.float32)
            weight.add_(delta.to(weight.dtype), alpha=scale)
        for name, tensor in head.items():
            parameters[name].copy_(tensor.to(parameters[name].dtype))
    return True
