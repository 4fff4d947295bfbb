"""stance: label (premise, hypothesis) pairs as support / contradict / neutral.

Importing this package is cheap and has no side effects; heavy modules (torch,
transformers) load only when :class:`StanceClassifier` is first touched.

Example:
    >>> from stance import LABELS
    >>> LABELS
    ('support', 'contradict', 'neutral')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stance.model.labels import LABELS

__version__ = "0.1.0"
__all__ = ["LABELS", "StanceClassifier", "__version__"]

if TYPE_CHECKING:
    from stance.model.classifier import StanceClassifier


def __getattr__(name: str) -> Any:
    # Lazy so `import stance` (and the CLI's --help) does not pay for torch.
    if name == "StanceClassifier":
        from stance.model.classifier import StanceClassifier

        return StanceClassifier
    raise AttributeError(f"module 'stance' has no attribute {name!r}")
