"""benchmarks/clean_kind.py: one kind scored on all its rows and on the rows no training template is near."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("clean_kind", REPO / "benchmarks" / "clean_kind.py")
clean_kind = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(clean_kind)


def dev_file(tmp_path: Path) -> Path:
    rows = [
        {
            "id": "swapped_actors-01",
            "kind": "swapped_actors",
            "label": "contradict",
            "premise": "A beat B.",
            "hypothesis": "B beat A.",
        },
        {
            "id": "swapped_actors-02",
            "kind": "swapped_actors",
            "label": "support",
            "premise": "A beat B.",
            "hypothesis": "B lost to A.",
        },
        {
            "id": "swapped_actors-03",
            "kind": "swapped_actors",
            "label": "support",
            "premise": "C hired D.",
            "hypothesis": "D was hired by C.",
        },
        {
            "id": "antonyms-01",
            "kind": "antonyms",
            "label": "contradict",
            "premise": "They won.",
            "hypothesis": "They lost.",
        },
    ]
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def record_file(tmp_path: Path, dev: Path, flagged: list[str]) -> Path:
    path = tmp_path / "near.json"
    path.write_text(json.dumps({"dev": str(dev), "flagged": {group: [] for group in flagged}, "clean": []}))
    return path


def test_flagged_rows_leave_the_clean_figure_and_stay_in_the_whole(tmp_path, monkeypatch):
    dev = dev_file(tmp_path)
    exclude = record_file(tmp_path, dev, ["swapped_actors-02", "antonyms-01"])
    # right on the flagged row and one clean row, wrong on the other clean row
    monkeypatch.setattr(clean_kind, "predict", lambda model, rows: ["contradict", "support", "contradict"])
    output = tmp_path / "out.json"
    clean_kind.main(
        [
            "--dev",
            str(dev),
            "--kind",
            "swapped_actors",
            "--exclude",
            str(exclude),
            "--model",
            "m",
            "--output",
            str(output),
        ]
    )
    record = json.loads(output.read_text())
    assert record["flagged"] == ["swapped_actors-02"]
    result = record["models"]["m"]
    assert (result["all"]["right"], result["all"]["n"]) == (2, 3)
    assert (result["clean"]["right"], result["clean"]["n"]) == (1, 2)
    assert [row["flagged"] for row in result["rows"]] == [False, True, False]
    assert result["rows"][2] == {
        "id": "swapped_actors-03",
        "label": "support",
        "predicted": "contradict",
        "flagged": False,
    }


def test_an_unknown_kind_and_a_record_of_another_file_are_refused(tmp_path):
    dev = dev_file(tmp_path)
    with pytest.raises(SystemExit, match="no rows of kind 'swapped'; its kinds are antonyms, swapped_actors"):
        clean_kind.kind_rows(dev, "swapped", record_file(tmp_path, dev, []))
    other = tmp_path / "other.jsonl"
    other.write_text(dev.read_text())
    with pytest.raises(SystemExit, match="was made for .*dev.jsonl, not .*other.jsonl"):
        clean_kind.kind_rows(other, "swapped_actors", record_file(tmp_path, dev, []))


def test_the_committed_statements_dev_record_flags_only_swapped_actors_rows():
    """The seventh cycle's record (rules.md addendum): 4 rows of 166, all of the swapped-actors kind."""
    dev = REPO / "benchmarks" / "data" / "statements_dev.jsonl"
    exclude = REPO / "benchmarks" / "results" / "cycle7_experiment" / "statements_dev_near_parts23_24.json"
    rows, flagged = clean_kind.kind_rows(dev, "swapped_actors", exclude)
    assert len(rows) == 17
    assert flagged == set(json.loads(exclude.read_text())["flagged"]) and len(flagged) == 4
