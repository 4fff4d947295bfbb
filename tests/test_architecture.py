"""The model never trains: model/ imports neither training/ nor eval/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_model_package_does_not_import_training_or_eval():
    offenders = {
        f"{path.name}: {name}"
        for path in (REPO / "model").glob("*.py")
        for name in imported_modules(path)
        if name.startswith(("stance.training", "stance.eval", "training", "eval"))
    }
    assert not offenders


def test_eval_metrics_imports_only_numpy_and_sklearn():
    allowed = ("numpy", "sklearn", "scipy", "__future__", "collections")  # scipy: scikit-learn's own dependency
    assert all(name.startswith(allowed) for name in imported_modules(REPO / "eval" / "metrics.py"))


def test_importing_the_model_loads_no_training_code():
    code = (
        "import sys, stance.model.classifier, stance.model.scoring, stance.model.windows;"
        "print(sorted(m for m in sys.modules if m.startswith(('stance.training', 'stance.eval'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_import_stance_is_cheap_and_quiet():
    code = "import sys, logging, stance; print('torch' in sys.modules, logging.getLogger().handlers)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False []" and out.stderr == ""
