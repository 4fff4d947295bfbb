"""Inference: canonical labels, loading/saving, batched prediction, file scoring.

This package never imports ``stance.training`` or ``stance.eval`` (the model never trains).
Heavy names load lazily so ``from stance.model import LABELS`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stance.model.errors import ConfigError, InputDataError, LabelMappingError, ModelLoadError, StanceError
from stance.model.labels import ID2LABEL, LABEL2ID, LABELS

__all__ = [
    "ID2LABEL",
    "LABEL2ID",
    "LABELS",
    "ConfigError",
    "InputDataError",
    "LabelMappingError",
    "ModelLoadError",
    "StanceClassifier",
    "StanceError",
    "StancePrediction",
]

if TYPE_CHECKING:
    from stance.model.classifier import StanceClassifier, StancePrediction


def __getattr__(name: str) -> Any:
    if name in ("StanceClassifier", "StancePrediction"):
        from stance.model import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'stance.model' has no attribute {name!r}")
