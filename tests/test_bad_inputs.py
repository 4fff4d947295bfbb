"""Table-driven bad inputs, one table per input class (issue 13).

Each case builds one hostile or odd input and says what must happen: an error whose message
names the place and the fix (``("error", pattern)``), or a complete output checked by a
function (``("ok", check)``: every row kept, in order, with a per-row ``error`` where a row
cannot be scored). The cases are listed in docs/reliability.md; a test there keeps the two
in step.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stance.model.errors import StanceError

GOOD = {"premise": "the man is playing a guitar", "hypothesis": "nobody is playing"}


@dataclass
class Case:
    """One bad input: how to write it, score options, and the expected outcome."""

    name: str
    write: Callable[[Path], Path]
    expect: tuple[str, object]
    options: dict = field(default_factory=dict)
    output_suffix: str = ".jsonl"


def lines(*records: object, raw: str | None = None) -> Callable[[Path], Path]:
    """A JSONL writer: each record json-dumped on its own line (or ``raw`` text as is)."""

    def write(path: Path) -> Path:
        target = path / "in.jsonl"
        text = raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records)
        target.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        return target

    return write


def raw_bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        (path / name).write_bytes(data)
        return path / name

    return write


def parquet(table: pa.Table | Callable[[], pa.Table], **kwargs) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        pq.write_table(table() if callable(table) else table, path / "in.parquet", **kwargs)
        return path / "in.parquet"

    return write


def rows_ok(n: int, errors: dict[int, str] | None = None, **columns: list) -> Callable[[list[dict]], None]:
    """Check: ``n`` rows in order; rows in ``errors`` carry that error and no label; others scored."""
    errors = errors or {}

    def check(out: list[dict]) -> None:
        assert len(out) == n, f"{len(out)} rows out for {n} in"
        for i, row in enumerate(out):
            if i in errors:
                assert row["error"] and errors[i] in row["error"], (i, row["error"])
                assert row["label"] is None
            else:
                assert row["error"] is None and row["label"] in {"support", "contradict", "neutral"}, (i, row)
        for name, values in columns.items():
            assert [row[name] for row in out] == values, (name, [row[name] for row in out])

    marked = "; ".join(f"row {i + 1}: `{message}`" for i, message in errors.items())
    kept = f"; columns kept exactly: {', '.join(columns)}" if columns else ""
    check.description = f"scored, {n} rows in order" + (f"; per-row error {marked}" if marked else "") + kept
    return check


def error(pattern: str) -> tuple[str, str]:
    return ("error", pattern)


def ok(check: Callable[[list[dict]], None]) -> tuple[str, Callable]:
    return ("ok", check)


# ------------------------------------------------------------------------------------------ JSONL
JSONL_CASES = [
    Case("empty file", lines(raw=""), ok(rows_ok(0))),
    Case("only blank lines", lines(raw="\n  \n\n"), ok(rows_ok(0))),
    Case("utf-8 byte order mark", lines(raw="\ufeff" + json.dumps(GOOD) + "\n"), ok(rows_ok(1))),
    Case(
        "latin-1 bytes",
        raw_bytes("in.jsonl", b'{"premise": "caf\xe9", "hypothesis": "x"}\n'),
        error(r"line 1: not valid UTF-8"),
    ),
    Case("invalid json on line 3", lines(raw=json.dumps(GOOD) + "\n" * 2 + "{oops\n"), error(r"line 3: invalid JSON")),
    Case("array instead of object", lines(raw="[1, 2]\n"), error(r"line 1: expected a JSON object per line, got list")),
    Case("string instead of object", lines(raw='"text"\n'), error(r"expected a JSON object per line, got str")),
    Case("missing premise column", lines({"hypothesis": "x"}), error(r"no premise column 'premise'.*--premise-column")),
    Case(
        "text types: null, number, list, object, bool, empty, blank",
        lines(
            GOOD | {"premise": None},
            GOOD | {"premise": 3},
            GOOD | {"premise": ["a"]},
            GOOD | {"hypothesis": {"a": 1}},
            GOOD | {"hypothesis": True},
            GOOD | {"premise": ""},
            GOOD | {"hypothesis": " \t\n"},
            GOOD,
        ),
        ok(
            rows_ok(
                8,
                {
                    0: "missing premise (null)",
                    1: "premise is int",
                    2: "premise is list",
                    3: "hypothesis is dict",
                    4: "hypothesis is bool",
                    5: "empty premise",
                    6: "empty hypothesis",
                },
            )
        ),
    ),
    Case("key missing in one row", lines(GOOD, {"premise": "a man"}, GOOD), ok(rows_ok(3, {1: "missing hypothesis"}))),
    Case(
        "lone surrogate",
        lines(raw='{"premise": "a \\udc80 b", "hypothesis": "x"}\n'),
        ok(rows_ok(1, {0: "lone surrogate"})),
    ),
    Case("NUL and control characters in text", lines(GOOD | {"premise": "a\x00b\x1bc man"}), ok(rows_ok(1))),
    Case(
        "emoji, CJK, right-to-left text",
        lines(GOOD | {"premise": "\U0001f600 男人在弹吉他"}, GOOD | {"hypothesis": "لا أحد يعزف"}),
        ok(rows_ok(2)),
    ),
    Case("CRLF line ends, no final newline", lines(raw=json.dumps(GOOD) + "\r\n" + json.dumps(GOOD)), ok(rows_ok(2))),
    Case(
        "NaN, Infinity in an extra column",
        lines(
            raw='{"premise": "a", "hypothesis": "b", "x": NaN}\n{"premise": "a", "hypothesis": "b", "x": -Infinity}\n'
        ),
        ok(rows_ok(2, x=[None, None])),
    ),
    Case(
        "ids beyond 2**53, with a null, and negative",
        lines(GOOD | {"id": 2**70 + 1}, GOOD | {"id": None}, GOOD | {"id": -(2**63)}),
        ok(rows_ok(3, id=[2**70 + 1, None, -(2**63)])),
    ),
    Case(
        "an id column of mixed types",
        lines(GOOD | {"id": 1}, GOOD | {"id": "b"}, GOOD | {"id": 2.5}, GOOD | {"id": True}),
        ok(rows_ok(4, id=[1, "b", 2.5, True])),
    ),
    Case(
        "duplicate key in an object (JSON keeps the last)",
        lines(raw='{"premise": "a", "premise": "b", "hypothesis": "c"}\n'),
        ok(rows_ok(1, premise=["b"])),
    ),
    Case(
        "deeply nested value",
        lines(raw='{"premise": ' + "[" * 50_000 + "]" * 50_000 + "}\n"),
        error(r"line 1: JSON nested too deeply"),
    ),
    Case(
        "a key first seen after the first chunk",
        lines(*([GOOD] * 5 + [GOOD | {"late": 7}])),
        ok(rows_ok(6, late=[None] * 5 + [7])),
        options={"chunk_rows": 2},
        output_suffix=".csv",
    ),
    Case(
        "a column's type changes between chunks (Parquet output)",
        lines(GOOD | {"v": 1}, GOOD | {"v": 2}, GOOD | {"v": "three"}),
        error(r"column 'v' holds int \(first on line 1\), text \(first on line 3\); a Parquet column has one type"),
        options={"chunk_rows": 2},
        output_suffix=".parquet",
    ),
    Case("a 200,000-character premise", lines(GOOD | {"premise": "the man " * 25_000}), ok(rows_ok(1))),
    Case(
        "a column named like an output column",
        lines(GOOD | {"label": "support"}),
        error(r"already has column\(s\) \['label'\].*--output-prefix"),
    ),
]

# -------------------------------------------------------------------------------------------- CSV
CSV_CASES = [
    Case("empty file", raw_bytes("in.csv", b""), ok(rows_ok(0))),
    Case("header only", raw_bytes("in.csv", b"premise,hypothesis\n"), ok(rows_ok(0))),
    Case(
        "utf-8 byte order mark before the header",
        raw_bytes("in.csv", b"\xef\xbb\xbfpremise,hypothesis\na man,a dog\n"),
        ok(rows_ok(1)),
    ),
    Case(
        "latin-1 bytes on line 3",
        raw_bytes("in.csv", b"premise,hypothesis\na,b\ncaf\xe9,x\n"),
        error(r"line 3: not valid UTF-8"),
    ),
    Case(
        "unclosed quote",
        raw_bytes("in.csv", b'premise,hypothesis\n"a man,b\nc,d\n'),
        error(r"malformed CSV|unclosed quote"),
    ),
    Case(
        "a row with too many fields",
        raw_bytes("in.csv", b"premise,hypothesis\na,b\nc,d,e\n"),
        error(r"malformed CSV.*line 3"),
    ),
    Case(
        "a row with too few fields",
        raw_bytes("in.csv", b"premise,hypothesis\na,b\nc\n"),
        ok(rows_ok(2, {1: "empty hypothesis"})),
    ),
    Case(
        "quoted commas, quotes and newlines",
        raw_bytes("in.csv", b'premise,hypothesis\n"a man, tall","he said ""no""\nloudly"\n'),
        ok(rows_ok(1, hypothesis=['he said "no"\nloudly'])),
    ),
    Case(
        "texts that pandas would read as missing: NA, null, nan, empty",
        raw_bytes("in.csv", b"premise,hypothesis,id\nNA,null,007\nnan,a,\n,b,1\n"),
        ok(rows_ok(3, {2: "empty premise"}, premise=["NA", "nan", ""], id=["007", "", "1"])),
    ),
    Case(
        "duplicate column names",
        raw_bytes("in.csv", b"premise,hypothesis,premise\na,b,c\n"),
        error(r"column 'premise' appears 2 times"),
    ),
    Case(
        "semicolon-separated file named .csv",
        raw_bytes("in.csv", b"premise;hypothesis\na;b\n"),
        error(r"no premise column.*'premise;hypothesis'.*--delimiter"),
    ),
    Case("CRLF line ends", raw_bytes("in.csv", b"premise,hypothesis\r\na man,b\r\n"), ok(rows_ok(1, hypothesis=["b"]))),
    Case("NUL byte in a field", raw_bytes("in.csv", b"premise,hypothesis\na\x00b,c\n"), ok(rows_ok(1))),
]


# ---------------------------------------------------------------------------------------- Parquet
def _table(**columns) -> pa.Table:
    return pa.table(columns)


PARQUET_CASES = [
    Case("not a Parquet file", raw_bytes("in.parquet", b"premise,hypothesis\n"), error(r"not a readable Parquet file")),
    Case("zero-byte file", raw_bytes("in.parquet", b""), error(r"not a readable Parquet file")),
    Case(
        "truncated Parquet file",
        lambda path: raw_bytes("in.parquet", _parquet_bytes(_table(premise=["a"] * 50, hypothesis=["b"] * 50))[:-20])(
            path
        ),
        error(r"not a readable Parquet file"),
    ),
    Case(
        "zero rows",
        parquet(_table(premise=pa.array([], pa.string()), hypothesis=pa.array([], pa.string()))),
        ok(rows_ok(0)),
    ),
    Case(
        "text columns with nulls and a non-text type",
        parquet(_table(premise=["a man", None, "b"], hypothesis=pa.array([1, 2, None], pa.int64()))),
        ok(
            rows_ok(3, {0: "hypothesis is int", 1: "missing premise", 2: "missing hypothesis"}, hypothesis=[1, 2, None])
        ),
    ),
    Case(
        "dictionary-encoded and large_string columns",
        parquet(
            _table(premise=pa.array(["a", "b"]).dictionary_encode(), hypothesis=pa.array(["c", "d"], pa.large_string()))
        ),
        ok(rows_ok(2)),
    ),
    Case(
        "binary text column",
        parquet(_table(premise=pa.array([b"a"], pa.binary()), hypothesis=["b"])),
        ok(rows_ok(1, {0: "premise is bytes"})),
    ),
    Case(
        "timestamp, decimal, nested and nullable-int extra columns round-trip to JSONL",
        parquet(
            _table(
                premise=["a", "b"],
                hypothesis=["c", "d"],
                when=pa.array([pd.Timestamp("2026-01-02 03:04:05"), None], pa.timestamp("us")),
                price=pa.array([Decimal("1.10"), None], pa.decimal128(5, 2)),
                tags=[["x", "y"], []],
                big=pa.array([2**53 + 1, None], pa.int64()),
            )
        ),
        ok(
            rows_ok(
                2,
                when=["2026-01-02 03:04:05", None],
                price=["1.10", None],
                tags=[["x", "y"], []],
                big=[2**53 + 1, None],
            )
        ),
    ),
    Case(
        "several row groups, chunks cut across them",
        parquet(_table(premise=["a"] * 7, hypothesis=["b"] * 7, i=list(range(7))), row_group_size=3),
        ok(rows_ok(7, i=list(range(7)))),
        options={"chunk_rows": 2},
    ),
    Case(
        "missing hypothesis column",
        parquet(_table(premise=["a"], text=["b"])),
        error(r"no hypothesis column 'hypothesis'.*'text'"),
    ),
]


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


# ------------------------------------------------------------------------------ paths and devices
def _fifo(path: Path) -> Path:
    fifo = path / "in.jsonl"
    os.mkfifo(fifo)
    threading.Thread(target=lambda: fifo.write_text(json.dumps(GOOD) + "\n"), daemon=True).start()
    return fifo


PATH_CASES = [
    Case("input not found", lambda path: path / "nope.jsonl", error(r"nope.jsonl: file not found")),
    Case("input is a directory", lambda path: path, error(r"is a directory")),
    Case(
        "input with an unknown suffix",
        raw_bytes("in.txt", b"x"),
        error(r"cannot tell the format from the suffix '.txt'"),
    ),
    Case("input is a named pipe (read once, no resume)", _fifo, ok(rows_ok(1))),
    Case("input is /dev/null", lambda path: Path("/dev/null"), ok(rows_ok(0)), options={"input_format": "jsonl"}),
]


def _run_case(case: Case, tmp_path: Path, classifier) -> None:
    from stance.model.scoring import score_file

    source = case.write(tmp_path)
    output = tmp_path / "out" / f"scored{case.output_suffix}"
    kind, expected = case.expect
    if kind == "error":
        with pytest.raises(StanceError) as caught:
            score_file(classifier, source, output, **case.options)
        assert re.search(expected, str(caught.value), re.S), str(caught.value)
        assert "Traceback" not in str(caught.value)
        assert not output.exists(), "a failed run must not leave an output"
        return
    score_file(classifier, source, output, **case.options)
    expected(_read_output(output))


def _read_output(output: Path) -> list[dict]:
    if output.suffix == ".jsonl":
        return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    frame = (
        pd.read_csv(output, dtype=str, keep_default_na=False) if output.suffix == ".csv" else pd.read_parquet(output)
    )
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for record in records:  # CSV has no types: compare what a reader gets back
        for key in ("late",):
            if key in record and record[key] not in (None, ""):
                record[key] = int(record[key])
            elif key in record:
                record[key] = None
        record["error"] = record["error"] or None
        record["label"] = record["label"] or None
    return records


@pytest.mark.parametrize("case", JSONL_CASES, ids=lambda case: case.name)
def test_jsonl_input(case, tmp_path, tiny_classifier):
    _run_case(case, tmp_path, tiny_classifier)


@pytest.mark.parametrize("case", CSV_CASES, ids=lambda case: case.name)
def test_csv_input(case, tmp_path, tiny_classifier):
    _run_case(case, tmp_path, tiny_classifier)


@pytest.mark.parametrize("case", PARQUET_CASES, ids=lambda case: case.name)
def test_parquet_input(case, tmp_path, tiny_classifier):
    _run_case(case, tmp_path, tiny_classifier)


@pytest.mark.parametrize("case", PATH_CASES, ids=lambda case: case.name)
def test_path_input(case, tmp_path, tiny_classifier):
    _run_case(case, tmp_path, tiny_classifier)


def test_a_full_disk_names_the_output(tmp_path, tiny_classifier):
    """Writing to a full device (``/dev/full`` answers every write with ENOSPC) fails with the
    output's name, which an OSError from a write through an open handle lacks."""
    from stance.model.scoring import score_file

    with pytest.raises(OSError, match="No space left on device") as caught:
        score_file(tiny_classifier, lines(GOOD)(tmp_path), "/dev/full", output_format="jsonl")
    assert caught.value.filename == "/dev/full"


def test_output_onto_its_own_input_is_refused(tmp_path, tiny_classifier):
    from stance.model.scoring import score_file

    source = lines(GOOD)(tmp_path)
    before = source.read_bytes()
    with pytest.raises(StanceError, match="would overwrite the input"):
        score_file(tiny_classifier, source, source)
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    with pytest.raises(StanceError, match="would overwrite the input"):
        score_file(tiny_classifier, source, link)
    assert source.read_bytes() == before


# ------------------------------------------------------------------------------ recipes and --set
RECIPE_HEAD = "data:\n  train:\n    - {path: TRAIN}\ntraining:\n  epochs: 1\n"
TRAIN_ROWS = [GOOD | {"label": label} for label in ("support", "contradict", "neutral")]

# (name, recipe text or None for no file, --set overrides, training rows or raw text, error pattern)
# fmt: off
RECIPE_CASES = [
    ("recipe file missing", None, [], TRAIN_ROWS, r"recipe not found"),
    ("recipe is a directory", "DIR", [], TRAIN_ROWS, r"is not a file"),
    ("recipe not UTF-8", b"training:\n  seed: \xe9\n", [], TRAIN_ROWS, r"not valid UTF-8"),
    ("YAML syntax error", RECIPE_HEAD + "  seed: [1,\n", [], TRAIN_ROWS, r"invalid YAML"),
    ("YAML tab indentation", RECIPE_HEAD + "\tseed: 1\n", [], TRAIN_ROWS, r"invalid YAML"),
    ("a key written twice", RECIPE_HEAD + "  epochs: 2\n", [], TRAIN_ROWS, r"line 6: key 'epochs' appears twice.*line 5"),
    ("top level is a list", "- a\n- b\n", [], TRAIN_ROWS, r"expected a mapping, got list"),
    ("unknown section", RECIPE_HEAD + "optimizer: {}\n", [], TRAIN_ROWS, r"unknown key\(s\) \['optimizer'\]"),
    ("misspelt key", RECIPE_HEAD + "  learnig_rate: 1e-5\n", [], TRAIN_ROWS, r"unknown key\(s\) \['learnig_rate'\].*learning_rate"),
    ("no training data", "training:\n  epochs: 1\n", [], TRAIN_ROWS, r"data.train: list at least one training file"),
    ("text where a number goes", RECIPE_HEAD + "  batch_size: many\n", [], TRAIN_ROWS, r"batch_size: expected an integer"),
    ("fraction where an integer goes", RECIPE_HEAD + "  batch_size: 2.5\n", [], TRAIN_ROWS, r"batch_size: expected an integer"),
    ("bare no where a word goes (YAML reads it as false)", RECIPE_HEAD + "  eval_strategy: no\n", [], TRAIN_ROWS, r"eval_strategy: expected a string, got False; .*quote the word, e.g. 'no'"),
    ("boolean where a number goes", RECIPE_HEAD + "  seed: true\n", [], TRAIN_ROWS, r"seed: expected a number"),
    ("NaN learning rate", RECIPE_HEAD + "  learning_rate: .nan\n", [], TRAIN_ROWS, r"learning_rate: expected a finite number"),
    ("infinite weight", RECIPE_HEAD, ["data.train.0.weight=.inf"], TRAIN_ROWS, r"weight: expected a finite number"),
    ("zero epochs", RECIPE_HEAD, ["training.epochs=0"], TRAIN_ROWS, r"training.epochs: must be > 0"),
    ("negative learning rate", RECIPE_HEAD, ["training.learning_rate=-1e-5"], TRAIN_ROWS, r"learning_rate must be > 0"),
    ("warmup ratio above 1", RECIPE_HEAD, ["training.warmup_ratio=1.5"], TRAIN_ROWS, r"warmup_ratio: must be in \[0, 1\)"),
    ("negative seed", RECIPE_HEAD, ["training.seed=-1"], TRAIN_ROWS, r"training.seed: must be >= 0"),
    ("zero eval batch", RECIPE_HEAD, ["training.eval_batch_size=0"], TRAIN_ROWS, r"eval_batch_size: must be >= 1"),
    ("negative eval steps", RECIPE_HEAD, ["training.eval_steps=-5"], TRAIN_ROWS, r"eval_steps: must be >= 1"),
    ("zero gradient accumulation", RECIPE_HEAD, ["training.gradient_accumulation_steps=0"], TRAIN_ROWS, r"gradient_accumulation_steps: must be >= 1"),
    ("zero max_rows", RECIPE_HEAD, ["data.train.0.max_rows=0"], TRAIN_ROWS, r"max_rows: must be >= 1"),
    ("negative label cap", RECIPE_HEAD, ["data.train.0.label_caps={neutral: -1}"], TRAIN_ROWS, r"label_caps.neutral: must be >= 0"),
    ("label cap for an unknown label", RECIPE_HEAD, ["data.train.0.label_caps={unrelated: 5}"], TRAIN_ROWS, r"unknown label 'unrelated'"),
    ("label_map onto an unknown label", RECIPE_HEAD, ["data.train.0.label_map={agree: agrees}"], TRAIN_ROWS, r"targets must be one of"),
    ("unknown augmentation", RECIPE_HEAD, ["data.train.0.augment=[shuffle]"], TRAIN_ROWS, r"augment: unknown \['shuffle'\]"),
    ("unknown long-text mode", RECIPE_HEAD, ["model.long_text=chunks"], TRAIN_ROWS, r"long_text: expected"),
    ("bf16 and fp16 together", RECIPE_HEAD, ["training.bf16=true", "training.fp16=true"], TRAIN_ROWS, r"choose one"),
    ("--set without =", RECIPE_HEAD, ["training.epochs"], TRAIN_ROWS, r"expected key.path=value"),
    ("--set of a value that is not YAML", RECIPE_HEAD, ["training.report_to=[tensorboard"], TRAIN_ROWS, r"--set training.report_to=\[tensorboard: not a YAML value"),
    ("--set past the end of a list", RECIPE_HEAD, ["data.train.3.weight=2"], TRAIN_ROWS, r"is a list of 1; use an index 0..0"),
    ("--set into a value", RECIPE_HEAD, ["training.epochs.x=1"], TRAIN_ROWS, r"training.epochs is a value, not a section"),
    ("training file missing", RECIPE_HEAD.replace("TRAIN", "missing.jsonl"), [], TRAIN_ROWS, r"missing.jsonl: file not found"),
    ("training file without labels", RECIPE_HEAD, [], [GOOD], r"no label column 'label'"),
    ("a label outside the label set", RECIPE_HEAD, [], TRAIN_ROWS + [GOOD | {"label": "agree"}], r"row 4.*'agree'.*label_map"),
    ("a null label", RECIPE_HEAD, [], TRAIN_ROWS + [GOOD | {"label": None}], r"row 4"),
    ("an empty premise in training data", RECIPE_HEAD, [], TRAIN_ROWS + [GOOD | {"premise": "", "label": "support"}], r"row 4.*premise"),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "recipe", "overrides", "rows", "message"), RECIPE_CASES, ids=[c[0] for c in RECIPE_CASES]
)
def test_recipe_and_overrides(tmp_path, monkeypatch, name, recipe, overrides, rows, message):
    from stance.training.config import load_config
    from stance.training.data import prepare_data

    monkeypatch.chdir(tmp_path)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = tmp_path / "recipe.yaml"
    if recipe == "DIR":
        path.mkdir()
    elif isinstance(recipe, bytes):
        path.write_bytes(recipe)
    elif recipe is not None:
        path.write_text(recipe.replace("TRAIN", str(train)))
    with pytest.raises(StanceError) as caught:
        prepare_data(load_config(path, overrides))
    assert re.search(message, str(caught.value), re.S), str(caught.value)


def test_recipe_errors_and_dry_run_never_import_torch(tmp_path):
    """``stance train`` checks the recipe and the data, and ``--dry-run`` prints the summary,
    in a process that has not imported torch or transformers (a typo costs a second)."""
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(row) + "\n" for row in TRAIN_ROWS))
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(RECIPE_HEAD.replace("TRAIN", str(train)))
    bad.write_text(RECIPE_HEAD.replace("TRAIN", str(train)) + "  learning_rate: .nan\n")
    probe = (
        "import sys; from stance.cli import main; code = main(sys.argv[1:]); "
        "heavy = sorted({'torch', 'transformers'} & set(sys.modules)); print('HEAVY', heavy); sys.exit(code)"
    )
    for recipe, code in ((good, 0), (bad, 2)):
        result = subprocess.run(
            [sys.executable, "-c", probe, "train", "--config", str(recipe), "--dry-run"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == code, result.stderr
        assert "HEAVY []" in result.stdout, result.stdout
        if code == 0:
            assert (
                re.search(r"\| train \| \S+ \| 3 \| 1 \| 1 \| 1 \|", result.stdout)
                and "# resolved recipe" in result.stdout
            )
        else:
            assert "learning_rate: expected a finite number" in result.stderr


# ----------------------------------------------------------------------------- eval and calibrate
def _labelled(*labels: object, **changes) -> list[dict]:
    return [GOOD | {"id": i, "label": label} | changes.get(str(i), {}) for i, label in enumerate(labels)]


THREE = ("support", "contradict", "neutral")
# (name, rows or raw text, DatasetConfig options, eval outcome, calibrate outcome); an outcome is
# an error pattern, or "ok" (eval: finite strict-JSON metrics over every row; calibrate: a finite T > 0),
# or for calibrate "T=1: reason" (nothing fitted, T stays 1 and the reason is given).
LABELLED_CASES = [
    ("empty file", "", {}, r"the file is empty", r"the file is empty"),
    ("no label column", [GOOD] * 3, {}, r"no label column 'label'", r"no label column 'label'"),
    ("a label outside the set", _labelled(*THREE, "agree"), {}, r"row 4.*'agree'", r"row 4.*'agree'"),
    ("a null label", _labelled(*THREE, None), {}, r"row 4", r"row 4"),
    ("a numeric label", _labelled(*THREE, 2), {}, r"row 4", r"row 4"),
    (
        "label names in other case and spacing",
        _labelled(" Support", "CONTRADICT", "neutral "),
        {},
        "ok",
        "T=1: only 3 dev rows; need at least 20",
    ),
    (
        "labels mapped with label_map",
        _labelled("agree", "disagree", "discuss"),
        {"label_map": {"agree": "support", "disagree": "contradict", "discuss": "neutral"}},
        "ok",
        "T=1: only 3 dev rows; need at least 20",
    ),
    ("one class only", _labelled(*["support"] * 6), {}, "ok", "T=1: only 6 dev rows; need at least 20"),
    ("an empty premise", _labelled(*THREE, **{"1": {"premise": ""}}), {}, r"row 2.*premise", r"row 2.*premise"),
    ("enough rows of every class", _labelled(*(THREE * 12)), {}, "ok", "ok"),
]


def _write_labelled(tmp_path: Path, rows) -> Path:
    path = tmp_path / "dev.jsonl"
    path.write_text(rows if isinstance(rows, str) else "".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize(
    ("name", "rows", "options", "expected", "_"), LABELLED_CASES, ids=[c[0] for c in LABELLED_CASES]
)
def test_eval_input(tmp_path, tiny_classifier, name, rows, options, expected, _):
    from stance.eval.evaluate import evaluate_file, write_evaluation
    from stance.training.config import DatasetConfig

    spec = DatasetConfig(path=str(_write_labelled(tmp_path, rows)), **options)
    if expected != "ok":
        with pytest.raises(StanceError, match=expected):
            evaluate_file(tiny_classifier, spec)
        return
    results = evaluate_file(tiny_classifier, spec)
    paths = write_evaluation(results, tmp_path / "report")
    metrics = json.loads(paths["metrics"].read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in metrics"))
    assert metrics["overall"]["n"] == len(rows)


@pytest.mark.parametrize(
    ("name", "rows", "options", "_", "expected"), LABELLED_CASES, ids=[c[0] for c in LABELLED_CASES]
)
def test_calibrate_input(tmp_path, tiny_model_dir, name, rows, options, _, expected):
    from stance.eval.evaluate import calibrate_classifier
    from stance.model import StanceClassifier
    from stance.training.config import DatasetConfig

    classifier = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")
    spec = DatasetConfig(path=str(_write_labelled(tmp_path, rows)), **options)
    if expected.startswith("T=1: "):
        summary = calibrate_classifier(classifier, [spec])
        assert not summary["kept"] and summary["temperature"] == 1.0 and expected[5:] in summary["reason"]
        return
    if expected != "ok":
        with pytest.raises(StanceError, match=expected):
            calibrate_classifier(classifier, [spec])
        assert classifier.metadata.temperature == 1.0
        return
    summary = calibrate_classifier(classifier, [spec])
    assert 0 < summary["temperature"] < float("inf") and all(
        summary[key] == summary[key] for key in ("nll_before", "nll_after", "ece_before", "ece_after")
    )


# ------------------------------------------------------------------------------- standard streams
def _stance_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    command = [str(Path(sys.executable).with_name("stance")), *args]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, input=stdin, capture_output=True, env=env, timeout=600)


def _jsonl_bytes(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


# (name, stdin bytes, extra options, expected: ("rows", n, output format) or ("error", pattern))
STREAM_CASES = [
    ("empty standard input", b"", [], ("rows", 0, "jsonl")),
    (
        "CSV on standard input (output follows the input format)",
        b"premise,hypothesis\na man,a dog\nb,c\n",
        ["--input-format", "csv"],
        ("rows", 2, "csv"),
    ),
    (
        "Parquet on standard input (read whole: its index is at the end)",
        _parquet_bytes(_table(premise=["a", "b", "c"], hypothesis=["d", "e", "f"])),
        ["--input-format", "parquet"],
        ("rows", 3, "parquet"),
    ),
    (
        "invalid JSON on line 2 of standard input",
        _jsonl_bytes(GOOD) + b"{oops\n",
        [],
        ("error", r"line 2: invalid JSON"),
    ),
    (
        "latin-1 bytes on standard input",
        b'{"premise": "caf\xe9", "hypothesis": "x"}\n',
        [],
        ("error", r"line 1: not valid UTF-8"),
    ),
    ("Parquet to standard output", _jsonl_bytes(GOOD, GOOD), ["--output-format", "parquet"], ("rows", 2, "parquet")),
    ("CSV to standard output", _jsonl_bytes(GOOD, GOOD, GOOD), ["--output-format", "csv"], ("rows", 3, "csv")),
    ("standard output without a format, from standard input", _jsonl_bytes(GOOD), [], ("rows", 1, "jsonl")),
]


@pytest.mark.parametrize(("name", "data", "extra", "expected"), STREAM_CASES, ids=[c[0] for c in STREAM_CASES])
def test_standard_streams(tiny_model_dir, name, data, extra, expected):
    import io

    result = _stance_cli(
        "score", "--model", str(tiny_model_dir), "--input", "-", "--output", "-", "--no-progress", *extra, stdin=data
    )
    stderr = result.stderr.decode()
    if expected[0] == "error":
        assert result.returncode == 2, stderr
        assert len(stderr.strip().splitlines()) == 1 and re.search(expected[1], stderr), stderr
        return
    assert result.returncode == 0, stderr
    _, count, fmt = expected
    if fmt == "parquet":
        frame = pd.read_parquet(io.BytesIO(result.stdout))
    elif fmt == "csv":
        frame = pd.read_csv(io.BytesIO(result.stdout)) if result.stdout else pd.DataFrame()
    else:
        frame = pd.DataFrame([json.loads(line) for line in result.stdout.decode().splitlines()])
    assert len(frame) == count, (result.stdout[:300], stderr)
    if count:
        assert frame["label"].notna().all()
    if count == 0:
        assert "is empty" in stderr


# ------------------------------------------------------------------------------------------ resume
def _interrupt_after(classifier, calls: int, monkeypatch) -> None:
    """Make ``classifier.predict`` raise KeyboardInterrupt on call ``calls + 1`` (a killed run)."""
    original = classifier.predict
    count = {"n": 0}

    def predict(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(classifier, "predict", predict)


# (name, change between the killed run and the resume: (input rows, options), expected: None = resumes)
RESUME_CASES = [
    ("same input and options resume", lambda rows, opts: (rows, opts), None),
    (
        "input edited after the kill",
        lambda rows, opts: (rows[:-1] + [GOOD | {"id": 99}], opts),
        r"\['input\.head_sha256', 'input\.mtime_ns', 'input\.size'\] differ",
    ),
    (
        "input appended after the kill",
        lambda rows, opts: (rows + [GOOD], opts),
        r"\['input\.head_sha256', 'input\.mtime_ns', 'input\.size'\] differ",
    ),
    ("another chunk size", lambda rows, opts: (rows, opts | {"chunk_rows": 3}), r"\['chunk_rows'\] differ"),
    ("another output prefix", lambda rows, opts: (rows, opts | {"prefix": "p_"}), r"\['prefix'\] differ"),
    ("symmetric switched on", lambda rows, opts: (rows, opts | {"symmetric": True}), r"\['symmetric'\] differ"),
    ("another long-text mode", lambda rows, opts: (rows, opts | {"long_text": "window"}), r"\['long_text'\] differ"),
    (
        "another abstain threshold",
        lambda rows, opts: (rows, opts | {"abstain_threshold": 0.9}),
        r"\['abstain_threshold'\] differ",
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_resume(tmp_path, tiny_model_dir, monkeypatch, name, change, expected):
    from stance.model import StanceClassifier
    from stance.model.scoring import score_file

    rows = [GOOD | {"id": i} for i in range(8)]
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    options = {"chunk_rows": 2}
    killed = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")
    _interrupt_after(killed, 2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        score_file(killed, source, output, **options)
    assert not output.exists() and (tmp_path / "out.jsonl.parts").is_dir()
    new_rows, new_options = change(rows, options)
    if new_rows != rows:
        source.write_text("".join(json.dumps(r) + "\n" for r in new_rows))
    fresh = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")
    if expected is not None:
        with pytest.raises(StanceError, match=expected):
            score_file(fresh, source, output, resume=True, **new_options)
        assert not output.exists()
        return
    score_file(fresh, source, output, resume=True, **new_options)
    resumed = output.read_bytes()
    score_file(fresh, source, tmp_path / "whole.jsonl", **new_options)
    assert resumed == (tmp_path / "whole.jsonl").read_bytes()


# ----------------------------------------------------------------------- the list in reliability.md
# Cases that failed on the code before this suite was written (2026-11-25), each fixed since.
BROKEN_BEFORE = {
    "utf-8 byte order mark", "ids beyond 2**53, with a null, and negative",
    "a column's type changes between chunks (Parquet output)", "duplicate column names",
    "semicolon-separated file named .csv", "text columns with nulls and a non-text type",
    "timestamp, decimal, nested and nullable-int extra columns round-trip to JSONL",
    "recipe is a directory", "recipe not UTF-8", "a key written twice", "NaN learning rate", "infinite weight",
    "warmup ratio above 1", "negative seed", "zero eval batch", "negative eval steps",
    "zero gradient accumulation", "zero max_rows", "negative label cap", "--set of a value that is not YAML",
    "bare no where a word goes (YAML reads it as false)",
}  # fmt: skip
DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
BEGIN, END = "<!-- bad-input tables: begin -->", "<!-- bad-input tables: end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(name: str, outcome: str) -> str:
    mark = " (fixed: failed before)" if name in BROKEN_BEFORE else ""
    return f"| {_cell(name)}{mark} | {_cell(outcome)} |"


def _outcome(expect: tuple[str, object]) -> str:
    kind, value = expect
    return f"error matching `{value}`, nothing written" if kind == "error" else value.description


def render_tables() -> str:
    """The bad-input cases as markdown tables, one per input class (kept in docs/reliability.md)."""
    parts = [
        BEGIN,
        "",
        "Generated from `tests/test_bad_inputs.py` (`python -m tests.test_bad_inputs`); a test keeps it current.",
        "",
    ]

    def table(title: str, rows: list[str], test: str) -> None:
        parts.extend([f"### {title}", "", f"`{test}`", "", "| case | outcome |", "|---|---|", *rows, ""])

    for title, cases, test in (
        ("JSONL", JSONL_CASES, "test_jsonl_input"),
        ("CSV", CSV_CASES, "test_csv_input"),
        ("Parquet", PARQUET_CASES, "test_parquet_input"),
        ("Paths and special files", PATH_CASES, "test_path_input"),
    ):
        table(title, [_row(c.name, _outcome(c.expect)) for c in cases], test)
    table(
        "Standard streams (`--input -`, `--output -`)",
        [_row(n, f"exit 2, one line matching `{e[1]}`" if e[0] == "error" else f"exit 0, {e[1]} rows as {e[2]} on stdout")
         for n, _, _, e in STREAM_CASES],
        "test_standard_streams",
    )  # fmt: skip
    table(
        "Resume after a kill",
        [
            _row(n, "output byte-identical to an uninterrupted run" if e is None else f"refused: `{e}`")
            for n, _, e in RESUME_CASES
        ],
        "test_resume",
    )
    table(
        "Recipes and `--set`",
        [_row(c[0], f"error matching `{c[4]}` before torch is imported") for c in RECIPE_CASES],
        "test_recipe_and_overrides",
    )
    table(
        "Eval and calibrate data",
        [_row(c[0], f"eval: {'report with strict-JSON metrics' if c[3] == 'ok' else f'error `{c[3]}`'}; calibrate: "
              + ("fitted T" if c[4] == "ok" else f"T kept at 1, reason `{c[4][5:]}`" if c[4].startswith("T=1") else f"error `{c[4]}`"))
         for c in LABELLED_CASES],
        "test_eval_input, test_calibrate_input",
    )  # fmt: skip
    parts.append(END)
    return "\n".join(parts)


def test_reliability_doc_lists_every_case():
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, (
        f"{DOC} lacks the generated section; run python -m tests.test_bad_inputs --write"
    )
    current = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert current == render_tables(), f"{DOC} is stale; run python -m tests.test_bad_inputs --write"


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        text = DOC.read_text(encoding="utf-8")
        if BEGIN in text:
            text = text[: text.index(BEGIN)] + render_tables() + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n## Bad inputs by class\n\n" + render_tables() + "\n"
        DOC.write_text(text, encoding="utf-8")
    else:
        print(render_tables())
