"""training.export_default: a run's adapter (or full model) copied into an embedded-model folder."""

from __future__ import annotations

import json

import pytest

from stance.model.errors import StanceError
from stance.training.export_default import export_default


def adapter_run(tmp_path):
    """A finished LoRA run's adapter/ folder, as `stance train` leaves it (contents are stand-ins)."""
    adapter = tmp_path / "run" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "runs/bases/mpnet", "r": 16}))
    (adapter / "stance.json").write_text(json.dumps({"base_model": "runs/bases/mpnet", "max_length": 128}))
    return tmp_path / "run"


def test_adapter_export_can_name_the_base_by_its_pypi_alias(tmp_path):
    target = tmp_path / "default"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"an earlier full export")
    (target / "README.md").write_text("card")
    export_default(adapter_run(tmp_path), target, base="sentence-transformers/all-mpnet-base-v2")
    assert json.loads((target / "adapter_config.json").read_text()) == {
        "base_model_name_or_path": "sentence-transformers/all-mpnet-base-v2",
        "r": 16,
    }
    assert json.loads((target / "stance.json").read_text())["base_model"] == "sentence-transformers/all-mpnet-base-v2"
    assert (target / "adapter_model.safetensors").read_bytes() == b"weights"
    assert not (target / "model.safetensors").exists(), "the other kind's files from an earlier export go"
    assert (target / "README.md").read_text() == "card", "the hand-written model card stays"


def test_adapter_export_without_base_keeps_the_runs_own(tmp_path):
    export_default(adapter_run(tmp_path), tmp_path / "out")
    assert json.loads((tmp_path / "out" / "stance.json").read_text())["base_model"] == "runs/bases/mpnet"


def test_base_on_a_full_model_run_is_an_error(tmp_path):
    (tmp_path / "full").mkdir()
    with pytest.raises(StanceError, match="--base applies to LoRA runs"):
        export_default(tmp_path / "full", tmp_path / "out", base="x")


def test_an_adapter_folder_itself_exports_like_a_runs_adapter(tmp_path):
    """A soup of adapters (benchmarks/soups.py --save) is an adapter folder with no run around it."""
    soup = adapter_run(tmp_path) / "adapter"
    target = tmp_path / "default"
    export_default(soup, target)
    assert sorted(p.name for p in target.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "stance.json",
    ]
    (soup / "stance.json").unlink()
    with pytest.raises(StanceError, match=r"missing \['stance.json'\]"):
        export_default(soup, tmp_path / "again")
