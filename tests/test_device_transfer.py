"""benchmarks/device/transfer.py: the base and data packed small for the GPU machine, rebuilt there."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

SPEC = importlib.util.spec_from_file_location(
    "transfer", Path(__file__).resolve().parents[1] / "benchmarks" / "device" / "transfer.py"
)
transfer = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(transfer)


def test_int8_groups_round_trip_within_a_percent_and_leave_small_tensors_exact(tmp_path):
    torch.manual_seed(0)
    weights = {
        "encoder.dense.weight": torch.randn(768, 256),
        "embeddings.position_embeddings.weight": torch.randn(514, 256),
        "encoder.dense.bias": torch.randn(768),
        "position_ids": torch.arange(10),
    }
    weights["encoder.dense.weight"][3, 5] = 40.0  # an outlier spoils only its own group of 64
    save_file(weights, tmp_path / "w.safetensors")
    transfer.quantize(tmp_path / "w.safetensors", tmp_path / "q.safetensors")
    assert (tmp_path / "q.safetensors").stat().st_size < 0.7 * (tmp_path / "w.safetensors").stat().st_size
    transfer.dequantize(tmp_path / "q.safetensors", tmp_path / "back.safetensors")
    back = load_file(tmp_path / "back.safetensors")
    assert set(back) == set(weights)
    dense, original = back["encoder.dense.weight"], weights["encoder.dense.weight"]
    assert float((dense - original).norm() / original.norm()) < 0.01
    assert float((dense[4] - original[4]).abs().max()) < 0.03, "rows away from the outlier keep their precision"
    for name in ("embeddings.position_embeddings.weight", "encoder.dense.bias", "position_ids"):
        assert torch.equal(back[name], weights[name]), name


def test_trim_cuts_only_the_article_sets(tmp_path):
    data = tmp_path / "data"
    for name in ("fnc1", "sick"):
        (data / name).mkdir(parents=True)
        (data / name / "train.jsonl").write_text(json.dumps({"premise": "x" * 5000, "hypothesis": "h"}) + "\n")
    transfer.trim(data, tmp_path / "out")
    fnc1 = json.loads((tmp_path / "out" / "fnc1" / "train.jsonl").read_text())
    sick = json.loads((tmp_path / "out" / "sick" / "train.jsonl").read_text())
    assert len(fnc1["premise"]) == transfer.TRIM_CHARS and fnc1["hypothesis"] == "h"
    assert len(sick["premise"]) == 5000
