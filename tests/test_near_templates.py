"""benchmarks/near_templates.py: dev groups that share a sentence template with training pairs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("near_templates", REPO / "benchmarks" / "near_templates.py")
near_templates = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(near_templates)


def write(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text(
        "".join(json.dumps({"id": i, "premise": p, "hypothesis": h, "group": g}) + "\n" for i, g, p, h in rows)
    )
    return path


def test_a_template_with_other_names_is_flagged_and_an_unrelated_pair_is_not(tmp_path):
    train = write(
        tmp_path / "train.jsonl",
        [
            (
                "t1",
                "tg",
                "Rebel commander Ilan Voss surrendered to Colonel Mara Senn near Kelt.",
                "Colonel Mara Senn accepted the surrender of Ilan Voss near Kelt.",
            )
        ],
    )
    dev = write(
        tmp_path / "dev.jsonl",
        [
            ("d1", "g1", "Rebel commander Oto Brand surrendered to Colonel Pia Lenz near Haro.", "Colonel Pia Lenz accepted the surrender of Oto Brand near Haro."),
            ("d2", "g1", "The weather was mild.", "It rained."),
            ("d3", "g2", "The central bank raised its main rate by half a point on Thursday.", "Rates went up this week."),
        ],
    )  # fmt: skip
    found = near_templates.near_groups(dev, [train])
    assert list(found["flagged"]) == ["g1"] and found["flagged"]["g1"][0][:2] == ["d1", "t1"]
    assert found["clean"] == ["g2"]
    # the raw words (names kept) would not call them close: the masking is what finds the template
    checker = near_templates.writers_check()
    first_train, first_dev = (near_templates.read_rows(path)[0] for path in (train, dev))
    raw = [
        checker.jaccard(checker.words(first_train[key]), checker.words(first_dev[key]))
        for key in ("premise", "hypothesis")
    ]
    assert sum(raw) / 2 < near_templates.THRESHOLD


@pytest.mark.parametrize(
    ("record_path", "groups"),
    [
        ("cycle6_experiment/swapped_near_training.json", 40),  # the sixth cycle's rule 6
        ("cycle7_experiment/statements_dev_near_parts23_24.json", 166),  # the watched swapped kind's clean rows
    ],
)
def test_the_committed_records_are_what_the_files_give_now(record_path, groups):
    """The groups a record leaves out (benchmarks/results/) follow from the files: a changed dev set or
    training part changes them, and the record must be made again."""
    record = json.loads((REPO / "benchmarks" / "results" / record_path).read_text())
    found = near_templates.near_groups(
        REPO / record["dev"], [REPO / path for path in record["train"]], record["threshold"]
    )
    assert found == {"flagged": record["flagged"], "clean": record["clean"]}
    assert len(record["clean"]) + len(record["flagged"]) == groups


def test_main_writes_the_record_it_prints(tmp_path, capsys):
    train = write(
        tmp_path / "train.jsonl",
        [("t1", "tg", "Ana Lind beat Ben Kroll in the final.", "Ben Kroll lost the final to Ana Lind.")],
    )
    dev = write(
        tmp_path / "dev.jsonl",
        [("d1", "g1", "Cal Moss beat Dee Ray in the final.", "Dee Ray lost the final to Cal Moss.")],
    )
    near_templates.main(["--dev", str(dev), "--train", str(train), "--output", str(tmp_path / "near.json")])
    record = json.loads((tmp_path / "near.json").read_text())
    assert record["flagged"] == {"g1": [["d1", "t1", 1.0]]} and record["clean"] == []
    assert record["threshold"] == near_templates.THRESHOLD and record["command"].endswith("near.json")
    assert "1 groups flagged, 0 clean" in capsys.readouterr().out
