"""ONNX Runtime backends: same numbers as torch (fp32), close (int8), cached next to the model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from stance.model import ModelLoadError, StanceClassifier
from tests.test_classifier import PAIRS

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory, tiny_model_dir):
    target = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def test_fp32_matches_torch_and_int8_is_close(model_copy):
    reference = StanceClassifier.from_pretrained(model_copy, device="cpu").predict(PAIRS, batch_size=2).probabilities
    fp32 = (
        StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx")
        .predict(PAIRS, batch_size=2)
        .probabilities
    )
    np.testing.assert_allclose(fp32, reference, atol=1e-5)
    int8 = StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx-int8").predict(PAIRS).probabilities
    np.testing.assert_allclose(int8, reference, atol=0.02)


def test_export_is_cached_and_fused(model_copy):
    import onnx

    StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx-int8")
    files = sorted((model_copy / "onnx").glob("model-int8pc-*.onnx"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    StanceClassifier.from_pretrained(model_copy, device="cpu", backend="onnx-int8")
    assert files[0].stat().st_mtime_ns == stamp, "a second load must reuse the cached export"
    fp32 = next((model_copy / "onnx").glob("model-fp32-*.onnx"))
    ops = {node.op_type for node in onnx.load(str(fp32)).graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops, ops


def test_unknown_backend(model_copy):
    with pytest.raises(ModelLoadError, match="backend must be one of \\['torch', 'onnx', 'onnx-int8'\\]"):
        StanceClassifier.from_pretrained(model_copy, device="cpu", backend="tensorrt")
