"""benchmarks/train_curves.py: evaluations parsed from `stance train` logs, a continued run placed after its start."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "train_curves", Path(__file__).resolve().parents[1] / "benchmarks" / "train_curves.py"
)
train_curves = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(train_curves)


def write_log(path: Path, step: int, total: int, sets: dict[str, float], mean: float) -> Path:
    # As `stance train` writes them: progress bars joined by carriage returns, then the evaluation.
    lines = [
        f"  5%|▌   | 15/{total} [00:10<01:00]\r[Aeval at step {step}/{total}  {name} {value:.4f}"
        for name, value in sets.items()
    ]
    path.write_text("\n".join([*lines, f"eval at step {step}/{total}: mean dev macro-F1 {mean:.4f}"]) + "\n")
    return path


def test_a_continued_run_is_drawn_after_the_steps_it_continued(tmp_path):
    first = write_log(tmp_path / "a.log", 3600, 3600, {"statements": 0.84, "sick": 0.87}, 0.855)
    second = write_log(tmp_path / "b.log", 300, 300, {"statements": 0.85, "sick": 0.86}, 0.855)
    output = tmp_path / "curves.json"
    assert (
        train_curves.main(
            [
                "--run",
                f"stage 2={first}",
                "--run",
                f"stage 3={second}",
                "--continues",
                "stage 3=3600",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    runs = {run["run"]: run for run in json.loads(output.read_text())["runs"]}
    assert runs["stage 2"]["evals"] == [{"step": 3600, "statements": 0.84, "sick": 0.87, "mean": 0.855}]
    assert runs["stage 3"]["evals"][0]["step"] == 3900 and runs["stage 3"]["continues_after"] == 3600
    assert output.with_suffix(".png").stat().st_size > 0
    with pytest.raises(SystemExit):
        train_curves.main(["--run", f"stage 2={first}", "--continues", "stage 9=3600", "--output", str(output)])
    with pytest.raises(SystemExit):
        train_curves.main(["--run", f"stage 2={first}", "--continues", "stage 2=many", "--output", str(output)])
