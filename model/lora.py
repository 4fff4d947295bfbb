"""Merge a plain LoRA adapter into its base's weights without importing peft.

Why hand-written: importing peft pulls in transformers' BLOOM model and generation code
(``peft.utils.constants`` reads one constant from them), and with its ``merge_and_unload`` that
was 0.5 s of a 6.1 s one-pair ``stance score`` on the embedded default on an idle 2-core CPU (more
under load). For inference a plain LoRA adapter is only ``W += (B @ A) * alpha / r`` per target
layer plus the head's saved weights, so that is done here directly.

Only what this file fully understands is merged: ``peft_type`` LORA with a plain initialisation
(PiSSA, OLoRA, LoftQ and the like rewrite the base weights first), every other config field on an
allow-list or unset (so DoRA, aLoRA, per-layer rank or alpha patterns, LoRA bias, transposed
weights and any variant a later peft adds are not merged here), a rank that matches the tensors,
and every tensor in ``adapter_model.safetensors`` either a ``lora_A``/``lora_B`` pair on an
existing linear weight of matching shape or a full weight of a ``modules_to_save`` module.
Anything else returns ``False`` before a weight is touched, and the caller loads the adapter with
peft as before (same result, slower). Tests compare the two, weight for weight, bit for bit.
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
# An allow-list, so that a LoRA variant added to peft later (a new config field) goes to peft
# rather than being merged as plain LoRA: fields whose value does not change what merging means...
_ANY_VALUE = frozenset(
    {
        "base_model_name_or_path",
        "revision",
        "task_type",
        "inference_mode",
        "peft_type",  # checked: LORA
        "peft_version",
        "auto_mapping",
        "r",  # checked against the tensors
        "lora_alpha",
        "lora_dropout",  # training only
        "use_rslora",  # in the scale
        "bias",  # checked: none
        "init_lora_weights",  # checked: an initialisation that leaves the base weights alone
        "target_modules",  # the saved tensors say which layers
        "exclude_modules",
        "layers_to_transform",
        "layers_pattern",
        "modules_to_save",  # the saved tensors say which, checked against the model
        "megatron_core",
        "qalora_group_size",  # used only with use_qalora
    }
)
# ... and every other field must be unset (None, False, empty).
# Initialisations after which the saved A and B apply to the untouched base weights; PiSSA, OLoRA,
# LoftQ, CorDA and LoRA-GA rewrite the base weights first, which only peft reproduces.
_PLAIN_INITS = (True, False, "gaussian")


def lora_scale(config: dict[str, Any]) -> float | None:
    """The factor on ``B @ A`` for ``config`` (an ``adapter_config.json``), or None when this
    module does not merge such an adapter (see the module docstring)."""
    if config.get("peft_type") != "LORA" or config.get("bias", "none") != "none":
        return None
    if config.get("init_lora_weights", True) not in _PLAIN_INITS:
        return None
    if any(value for field, value in config.items() if field not in _ANY_VALUE):
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

    def in_saved_module(module_path: str) -> bool:
        return not saved_modules.isdisjoint(module_path.split("."))

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
            if name not in parameters or not in_saved_module(name.rpartition(".")[0]):
                return False
            if parameters[name].shape != tensor.shape:
                return False
            head[name] = tensor
    for module, sides in pairs.items():
        weight = parameters.get(f"{module}.weight")
        if set(sides) != {"A", "B"} or weight is None or weight.dim() != 2:
            return False
        if in_saved_module(module):  # LoRA inside a saved head: peft's order decides
            return False
        a, b = sides["A"], sides["B"]
        if a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0] or (b.shape[0], a.shape[1]) != weight.shape:
            return False
        if a.shape[0] != config["r"]:  # the scale is alpha / r: a config that misstates r is peft's to refuse
            return False
    # A saved module the adapter names must come whole: peft would otherwise keep the base's
    # (random) values for the missing part, and then neither path is right; peft decides.
    if any(in_saved_module(name.rpartition(".")[0]) and name not in head for name in parameters):
        return False

    with torch.no_grad():
        for module, sides in pairs.items():
            # peft's arithmetic exactly: (B @ A) * scale in the adapter's dtype, then one rounding
            # into the weight's dtype as it is added (bit-identical to merge_and_unload, any scale).
            parameters[f"{module}.weight"] += (sides["B"] @ sides["A"]) * scale
        for name, tensor in head.items():
            parameters[name].copy_(tensor.to(parameters[name].dtype))
    return True
