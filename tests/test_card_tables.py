"""benchmarks/card_tables.py: the replaced default's column, with its numbers-set run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "card_tables", Path(__file__).resolve().parents[1] / "benchmarks" / "card_tables.py"
)
card_tables = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(card_tables)


def write(path: Path, rows: list[tuple[str, str, str, float]]) -> None:
    f1 = {"support": 0.5, "contradict": 0.5, "neutral": 0.5}
    full = [
        {"dataset": d, "split": s, "system": system, "macro_f1": m, "n": 10, "f1": f1, "accuracy": m,
         "confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
        for d, s, system, m in rows
    ]  # fmt: skip
    path.write_text(json.dumps({"rows": full}))


def test_the_replaced_defaults_column_takes_its_numbers_run_and_keeps_the_issue_time_default(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(card_tables, "RESULTS", tmp_path)
    write(tmp_path / "quality.json", [("sick", "dev", "model", 0.9), ("statements_numbers", "dev", "model", 0.6),
                                      ("statements_numbers", "dev", "majority", 0.15)])  # fmt: skip
    write(tmp_path / "quality_numbers.json", [("statements_numbers", "dev", "model", 0.498),
                                              ("statements_numbers", "dev", "previous default", 0.204),
                                              ("statements_numbers", "dev", "majority", 0.99)])  # fmt: skip
    assert card_tables.main() == 0
    before = capsys.readouterr().out
    assert "3,600-step" not in before, "no column without its file"
    write(tmp_path / "quality_default_3600.json", [("sick", "dev", "model", 0.87)])
    assert card_tables.main() == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split(" | ")
    numbers = next(line for line in lines if line.startswith("| statements_numbers | dev")).split(" | ")
    cell = dict(zip(header[3:], numbers[3:], strict=True))
    assert cell["default (mpnet + LoRA)"] == "**0.600**", "the new default's own numbers row"
    assert cell["the 3,600-step default (replaced)"] == "0.498", "the old numbers run belongs to the old default"
    assert cell["default when issue 10 was filed"] == "0.204"
    assert cell["majority |"] == "0.150 |", "the baselines come from quality.json, not the older file"
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["| statements_numbers", "| sick"], "quality.py's order"


def test_a_second_replaced_default_gets_its_own_column_before_the_first(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(card_tables, "RESULTS", tmp_path)
    write(tmp_path / "quality.json", [("sick", "dev", "model", 0.9), ("sick", "dev", "majority", 0.2)])
    write(tmp_path / "quality_default_3600.json", [("sick", "dev", "model", 0.87)])
    write(tmp_path / "quality_default_cycle4.json", [("sick", "dev", "model", 0.88), ("sick", "dev", "majority", 0.9)])
    assert card_tables.main() == 0
    lines = capsys.readouterr().out.splitlines()
    cell = dict(zip(lines[0].split(" | ")[3:], lines[2].split(" | ")[3:], strict=True))
    assert list(cell)[:3] == ["default (mpnet + LoRA)", "the fourth-cycle default (replaced)",
                              "the 3,600-step default (replaced)"]  # fmt: skip
    assert (cell["the fourth-cycle default (replaced)"], cell["the 3,600-step default (replaced)"]) == (
        "0.880",
        "0.870",
    )
    assert cell["majority |"] == "0.200 |", "only a replaced default's own rows are read from its file"


def test_each_one_kind_set_gets_its_subkind_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(card_tables, "RESULTS", tmp_path)
    write(tmp_path / "quality.json", [("statements_swapped", "dev", "model", 0.7), ("sick", "dev", "model", 0.9)])
    result = json.loads((tmp_path / "quality.json").read_text())
    result["rows"][0]["per_kind"] = {"role_swap": {"accuracy": 0.6, "n": 15}, "symmetric": {"accuracy": 1.0, "n": 15}}
    (tmp_path / "quality.json").write_text(json.dumps(result))
    assert card_tables.main() == 0
    out = capsys.readouterr().out
    assert "Numbers and dates" not in out, "no table for a set not scored"
    table = out.split("Swapped actors dev set by subkind")[1].splitlines()
    assert [line for line in table if line.startswith("| role_swap") or line.startswith("| symmetric")] == [
        "| role_swap | 15 | 0.600 |",
        "| symmetric | 15 | 1.000 |",
    ]


def test_older_models_swapped_set_runs_fill_their_columns(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(card_tables, "RESULTS", tmp_path)
    write(tmp_path / "quality.json", [("statements_swapped", "dev", "model", 0.694), ("sick", "dev", "model", 0.9)])
    write(tmp_path / "quality_previous_default.json", [("sick", "dev", "model", 0.5)])
    write(tmp_path / "quality_swapped_previous_default.json", [("statements_swapped", "dev", "model", 0.321),
                                                               ("statements_swapped", "dev", "majority", 0.99)])  # fmt: skip
    assert card_tables.main() == 0
    lines = capsys.readouterr().out.splitlines()
    swapped = next(line for line in lines if line.startswith("| statements_swapped | dev |"))
    assert swapped.endswith("| **0.694** | 0.321 |"), swapped  # its model row, in the issue-time default's column
    assert next(line for line in lines if line.startswith("| sick | dev |")).endswith("| **0.900** | 0.500 |")
