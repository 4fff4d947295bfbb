"""Commands must never delete, replace or corrupt files they do not own (issue 13, data safety).

Each test here failed on the code before the fix: calibrate deleted a directory's other
files, ``--output /dev/stdout`` replaced the symlink with a file, ``--input /dev/stdin``
lost rows, ``--resume`` mixed two models' rows, two runs on one output mixed rows, and a
second Ray run appended to the first one's output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import build_tiny_model_dir

STANCE = str(Path(sys.executable).with_name("stance"))
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def stance(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([STANCE, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=600, **kwargs)


def pairs_file(path: Path, n: int, label: bool = False) -> Path:
    rows = [
        {"id": i, "premise": f"the man {i} is playing a guitar", "hypothesis": "nobody is playing"}
        | ({"label": ["support", "contradict", "neutral"][i % 3]} if label else {})
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_jsonl_text(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------ calibrate (item 4)
def test_calibrate_to_an_output_directory_keeps_what_was_there(tmp_path, tiny_model_dir):
    (tmp_path / "out").mkdir()
    data = pairs_file(tmp_path / "out" / "dev.jsonl", 30, label=True)
    (tmp_path / "out" / "important.txt").write_text("keep me")
    (tmp_path / "out" / "checkpoints").mkdir()
    (tmp_path / "out" / "checkpoints" / "step-1").write_text("state")
    os.chmod(tmp_path / "out", 0o755)
    result = stance(
        "calibrate", "--model", tiny_model_dir, "--data", data, "--output", tmp_path / "out", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert (out / "important.txt").read_text() == "keep me"
    assert (out / "checkpoints" / "step-1").read_text() == "state"
    assert data.exists()
    assert (out / "model.safetensors").exists() and (out / "stance.json").exists()
    assert stat.S_IMODE(out.stat().st_mode) == 0o755, "the directory's mode must not change"


def test_calibrate_in_place_writes_only_stance_json(tmp_path, tiny_model_dir):
    model = shutil.copytree(tiny_model_dir, tmp_path / "run")
    (model / "checkpoints").mkdir()
    (model / "checkpoints" / "optimizer.pt").write_bytes(b"resume state")
    (model / "notes.md").write_text("mine")
    data = pairs_file(tmp_path / "dev.jsonl", 30, label=True)
    before = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    result = stance("calibrate", "--model", model, "--data", data, "--no-progress")
    assert result.returncode == 0, result.stderr
    after = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    assert set(after) == set(before) | {"stance.json"}
    assert {name for name in before if before[name] != after[name]} <= {"stance.json"}
    assert (model / "checkpoints" / "optimizer.pt").read_bytes() == b"resume state"
    assert json.loads((model / "stance.json").read_text())["temperature"] > 0


def test_save_pretrained_replaces_only_model_files(tmp_path, tiny_classifier):
    target = tmp_path / "model"
    target.mkdir()
    (target / "README.md").write_text("a model card written by hand")
    # a sharded save from before: its index would shadow the new single file
    (target / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}})
    )
    (target / "model-00001-of-00002.safetensors").write_bytes(b"old shard")
    tiny_classifier.save_pretrained(target)
    names = {p.name for p in target.iterdir()}
    assert "README.md" in names and "model.safetensors" in names
    assert "model.safetensors.index.json" not in names and "model-00001-of-00002.safetensors" not in names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.")], "staging directory left behind"


# ------------------------------------------------------------------ standard streams (items 1, 5)
def test_output_dash_and_dev_stdout_stream_and_leave_dev_stdout_alone(tmp_path, tiny_model_dir):
    data = pairs_file(tmp_path / "pairs.jsonl", 7)
    was_link = os.path.islink("/dev/stdout")
    for target in ("-", "/dev/stdout"):
        result = stance(
            "score", "--model", tiny_model_dir, "--input", data, "--output", target, "--no-progress", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        rows = read_jsonl_text(result.stdout)
        assert [row["id"] for row in rows] == list(range(7)) and all(row["label"] for row in rows)
    assert not (tmp_path / "-").exists()
    assert os.path.islink("/dev/stdout") == was_link
    assert not Path("/dev/stdout.parts").exists() and not Path("/dev/stdout.lock").exists()


def test_dev_stdout_redirected_to_a_file_is_written_through_the_redirect(tmp_path, tiny_model_dir):
    data = pairs_file(tmp_path / "pairs.jsonl", 5)
    with open(tmp_path / "redirected.jsonl", "wb") as handle:
        result = subprocess.run(
            [STANCE, "score", "--model", str(tiny_model_dir), "--input", str(data), "--output", "/dev/stdout"],
            stdout=handle,
            stderr=subprocess.PIPE,
            env=ENV,
            timeout=600,
        )
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl_text((tmp_path / "redirected.jsonl").read_text())) == 5


@pytest.mark.parametrize("input_name", ["-", "/dev/stdin"])
@pytest.mark.parametrize("n_rows", [200, 813])
def test_standard_input_is_read_once_and_whole(tmp_path, tiny_model_dir, input_name, n_rows):
    data = pairs_file(tmp_path / "pairs.jsonl", n_rows)
    out = tmp_path / "o.jsonl"
    with open(data, "rb") as stdin:
        result = subprocess.run(
            [STANCE, "score", "--model", str(tiny_model_dir), "--input", input_name, "--output", str(out),
             "--chunk-rows", "100", "--no-progress"],
            stdin=stdin, capture_output=True, env=ENV, timeout=600,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [row["id"] for row in read_jsonl_text(out.read_text())] == list(range(n_rows))


def test_resume_from_a_stream_is_refused(tmp_path, tiny_model_dir):
    data = pairs_file(tmp_path / "pairs.jsonl", 5)
    with open(data, "rb") as stdin:
        result = subprocess.run(
            [STANCE, "score", "--model", str(tiny_model_dir), "--input", "-", "--output", str(tmp_path / "o.jsonl"),
             "--resume"],
            stdin=stdin, capture_output=True, text=True, env=ENV, timeout=600,
        )  # fmt: skip
    assert result.returncode == 2 and "--resume needs a regular input" in result.stderr, result.stderr


def test_output_that_is_a_directory_is_refused_before_scoring(tmp_path, tiny_model_dir):
    data = pairs_file(tmp_path / "pairs.jsonl", 5)
    (tmp_path / "outdir").mkdir()
    result = stance("score", "--model", tiny_model_dir, "--input", data, "--output", tmp_path / "outdir")
    assert result.returncode == 2 and "is a directory" in result.stderr, result.stderr
    assert list((tmp_path / "outdir").iterdir()) == []


def test_output_symlink_is_kept_and_its_target_written(tmp_path, tiny_model_dir):
    data = pairs_file(tmp_path / "pairs.jsonl", 4)
    (tmp_path / "real").mkdir()
    link = tmp_path / "scored.jsonl"
    link.symlink_to(tmp_path / "real" / "scored.jsonl")
    result = stance("score", "--model", tiny_model_dir, "--input", data, "--output", link, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and len(read_jsonl_text((tmp_path / "real" / "scored.jsonl").read_text())) == 4


# ------------------------------------------------------------------ resume across models (item 2)
def test_resume_with_another_model_is_refused(tmp_path, tiny_model_dir):
    from stance.model import StanceClassifier
    from stance.model.scoring import score_file

    other = build_tiny_model_dir(tmp_path / "other", seed=1)
    data = pairs_file(tmp_path / "pairs.jsonl", 30)
    out = tmp_path / "o.jsonl"
    first = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu")
    second = StanceClassifier.from_pretrained(other, device="cpu")
    assert first.fingerprint() != second.fingerprint()
    # Simulate a run killed after its first part: the manifest and one part are on disk.
    parts = out.with_name("o.jsonl.parts")
    score_file(first, data, tmp_path / "whole.jsonl", chunk_rows=10)
    from stance.model import scoring

    real_join = scoring._join_parts
    scoring._join_parts = lambda *a: (_ for _ in ()).throw(KeyboardInterrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            score_file(first, data, out, chunk_rows=10)
    finally:
        scoring._join_parts = real_join
    assert (parts / "manifest.json").exists()
    with pytest.raises(Exception, match=r"cannot resume: \['model\.files'\] differ"):
        score_file(second, data, out, chunk_rows=10, resume=True)
    # the same model resumes, and so does a copy of it in another directory
    copy = StanceClassifier.from_pretrained(shutil.copytree(tiny_model_dir, tmp_path / "copy"), device="cpu")
    score_file(copy, data, out, chunk_rows=10, resume=True)
    assert out.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()


def test_resume_with_another_backend_is_refused(tmp_path, tiny_model_dir):
    """A run begun in fp32 (e.g. --backend auto on a CPU without bf16 instructions) is not
    continued in bf16: the error names the backend and how to continue."""
    from stance.model import InputDataError, StanceClassifier, scoring
    from stance.model.scoring import score_file

    data = pairs_file(tmp_path / "pairs.jsonl", 30)
    out = tmp_path / "o.jsonl"
    fp32 = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu", backend="torch")
    real_join = scoring._join_parts
    scoring._join_parts = lambda *a: (_ for _ in ()).throw(KeyboardInterrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            score_file(fp32, data, out, chunk_rows=10)
    finally:
        scoring._join_parts = real_join
    bf16 = StanceClassifier.from_pretrained(tiny_model_dir, device="cpu", backend="torch-bf16")
    with pytest.raises(
        InputDataError, match=r"\['model\.backend'\] differ .* used backend 'torch': pass --backend torch"
    ):
        score_file(bf16, data, out, chunk_rows=10, resume=True)
    score_file(fp32, data, out, chunk_rows=10, resume=True)  # the same backend continues it


# ------------------------------------------------------------------ concurrent runs (item 6)
def test_a_second_run_on_the_same_output_is_refused(tmp_path, tiny_model_dir):
    from stance.model.scoring import OutputLock

    data = pairs_file(tmp_path / "pairs.jsonl", 30)
    out = tmp_path / "o.jsonl"
    with OutputLock(out):  # a first run, in the middle of its work
        (out.with_name("o.jsonl.parts")).mkdir()
        (out.with_name("o.jsonl.parts") / "part-000000.jsonl").write_text("first run's rows\n")
        second = stance("score", "--model", tiny_model_dir, "--input", data, "--output", out, "--no-progress")
        assert second.returncode == 2 and "another stance run is writing this output" in second.stderr, second.stderr
        assert (out.with_name("o.jsonl.parts") / "part-000000.jsonl").read_text() == "first run's rows\n"
        assert not out.exists()
    shutil.rmtree(out.with_name("o.jsonl.parts"))
    third = stance("score", "--model", tiny_model_dir, "--input", data, "--output", out, "--no-progress")
    assert third.returncode == 0, third.stderr
    assert [row["id"] for row in read_jsonl_text(out.read_text())] == list(range(30))
    assert not out.with_name("o.jsonl.lock").exists()


def test_output_lock_is_released_when_a_run_dies(tmp_path):
    from stance.model.scoring import OutputLock

    out = tmp_path / "o.jsonl"
    code = (
        "import os, sys; from pathlib import Path; from stance.model.scoring import OutputLock; "
        f"lock = OutputLock(Path({str(out)!r})); lock.__enter__(); os._exit(9)"
    )
    assert subprocess.run([sys.executable, "-c", code], env=ENV, timeout=120).returncode == 9
    assert out.with_name("o.jsonl.lock").exists()  # left behind by the dead run...
    with OutputLock(out):  # ...but not held: the kernel released it
        pass


# ------------------------------------------------------------------ Ray output (item 9)
@pytest.mark.slow
def test_ray_refuses_an_output_directory_that_holds_files(tmp_path, tiny_model_dir):
    pytest.importorskip("ray")
    frame = pd.DataFrame({"premise": ["a man is playing"] * 4, "hypothesis": ["nobody plays"] * 4})
    frame.to_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out"
    args = ("score", "--engine", "ray", "--model", tiny_model_dir, "--input", tmp_path / "in.parquet", "--output", out)
    first = stance(*args, "--no-progress")
    assert first.returncode == 0, first.stderr
    files = sorted(out.iterdir())
    assert sum(len(pd.read_parquet(f)) for f in files) == 4
    second = stance(*args, "--no-progress")
    assert second.returncode == 2 and "already exists" in second.stderr, second.stderr
    assert sorted(out.iterdir()) == files
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


# ------------------------------------------------------------------ predict_df (item 3)
def test_predict_df_never_overwrites_and_marks_bad_rows_by_index(tiny_classifier):
    from stance.model.errors import InputDataError

    frame = pd.DataFrame(
        {"premise": ["a man is playing", None, "a dog"], "hypothesis": ["nobody plays", "x", "  "], "label": "gold"},
        index=["r1", "r2", "r3"],
    )
    with pytest.raises(InputDataError, match="already has column"):
        tiny_classifier.predict_df(frame)
    scored = tiny_classifier.predict_df(frame, prefix="pred_")
    assert list(scored.index) == ["r1", "r2", "r3"] and list(scored["label"]) == ["gold"] * 3
    assert scored.loc["r1", "pred_label"] in ("support", "contradict", "neutral") and pd.isna(
        scored.loc["r1", "pred_error"]
    )
    assert scored.loc["r2", "pred_error"] == "missing premise (null)" and pd.isna(scored.loc["r2", "pred_label"])
    assert scored.loc["r3", "pred_error"] == "empty hypothesis"
    with pytest.raises(InputDataError, match=r"frame.loc\['r2', 'premise'\]: missing premise"):
        tiny_classifier.predict_df(frame, prefix="pred_", errors="raise")
    expected = tiny_classifier.predict([("a man is playing", "nobody plays")]).probabilities[0]
    assert list(scored.loc["r1", ["pred_prob_support", "pred_prob_contradict", "pred_prob_neutral"]]) == list(expected)


# ------------------------------------------------------------------ broken model directories (item 8)
def _broken_copy(tmp_path: Path, tiny_model_dir: Path, name: str) -> Path:
    return shutil.copytree(tiny_model_dir, tmp_path / name)


def _drop_tensors(model: Path, names: list[str]) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(model / "model.safetensors")
    for name in names:
        tensors.pop(name)
    save_file(tensors, model / "model.safetensors", metadata={"format": "pt"})


def _set_stance_json(model: Path, **values) -> None:
    path = model / "stance.json"
    raw = json.loads(path.read_text()) if path.exists() else {}
    # json.dumps writes NaN/Infinity literals, as a hand edit or another tool might
    path.write_text(json.dumps(raw | values))


BROKEN_MODELS = {
    "classifier weights deleted": (
        lambda m: _drop_tensors(m, ["classifier.weight", "classifier.bias"]),
        "lacks 2 of the model's tensors (classifier.bias, classifier.weight)",
    ),
    "an encoder layer deleted": (
        lambda m: _drop_tensors(m, [k for k in _tensor_names(m) if ".layer.1." in k]),
        "of the model's tensors",
    ),
    "no tokenizer files": (
        lambda m: [(m / n).unlink() for n in ("tokenizer.json", "tokenizer_config.json") if (m / n).exists()],
        "no tokenizer files",
    ),
    "temperature 0": (lambda m: _set_stance_json(m, temperature=0), "key 'temperature' must be a finite number > 0"),
    "temperature negative": (lambda m: _set_stance_json(m, temperature=-1.5), "key 'temperature'"),
    "temperature NaN": (lambda m: _set_stance_json(m, temperature=float("nan")), "key 'temperature'"),
    "temperature inf": (lambda m: _set_stance_json(m, temperature=float("inf")), "key 'temperature'"),
    "temperature a string": (lambda m: _set_stance_json(m, temperature="1.2"), "key 'temperature'"),
    "max_length 0": (lambda m: _set_stance_json(m, max_length=0), "key 'max_length' must be an integer >= 8"),
    "max_length beyond positions": (
        lambda m: _set_stance_json(m, max_length=100_000),
        "key 'max_length' is 100000, beyond the model's 128 positions",
    ),
    "long_text unknown": (lambda m: _set_stance_json(m, long_text="summarise"), "key 'long_text'"),
    "config.json is a FIFO": (
        lambda m: ((m / "config.json").unlink(), os.mkfifo(m / "config.json")),
        "not a regular file",
    ),
    "config.json links to /dev/zero": (
        lambda m: ((m / "config.json").unlink(), (m / "config.json").symlink_to("/dev/zero")),
        "not a regular file",
    ),
}


def _tensor_names(model: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(model / "model.safetensors", "pt") as handle:
        return list(handle.keys())


@pytest.mark.parametrize("case", list(BROKEN_MODELS))
def test_broken_model_directories_are_refused_naming_file_and_key(tmp_path, tiny_model_dir, case):
    from stance.model import StanceClassifier
    from stance.model.errors import ModelLoadError

    model = _broken_copy(tmp_path, tiny_model_dir, "m")
    breaks, message = BROKEN_MODELS[case]
    breaks(model)
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        StanceClassifier.from_pretrained(model, device="cpu")


def test_broken_model_is_one_line_from_the_cli(tmp_path, tiny_model_dir):
    model = _broken_copy(tmp_path, tiny_model_dir, "m")
    _set_stance_json(model, temperature=0)
    data = pairs_file(tmp_path / "p.jsonl", 2)
    result = stance("score", "--model", model, "--input", data, "--output", tmp_path / "o.jsonl", "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{model}/stance.json: key 'temperature'" in lines[0], result.stderr
    assert not (tmp_path / "o.jsonl").exists()


# ------------------------------------------------------------------ schema and values round-trip (item 7)
@pytest.mark.parametrize("out_format", ["csv", "parquet", "jsonl"])
def test_a_column_first_seen_after_the_first_chunk_is_kept_in_every_format(tmp_path, tiny_classifier, out_format):
    rows = [{"id": i, "premise": "a man is playing", "hypothesis": "nobody plays"} for i in range(25)]
    rows[17]["source"] = "late, with a comma"
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tiny_classifier.score_file(data, tmp_path / f"o.{out_format}", chunk_rows=10)
    frame = {"csv": pd.read_csv, "parquet": pd.read_parquet, "jsonl": lambda p: pd.read_json(p, lines=True)}[
        out_format
    ](out)
    assert len(frame) == 25 and list(frame.columns[:4]) == ["id", "premise", "hypothesis", "source"]
    assert frame["source"].iloc[17] == "late, with a comma" and frame["source"].isna().sum() == 24
    if out_format == "csv":
        header, *lines = out.read_text().splitlines()
        import csv

        assert {len(row) for row in csv.reader([header, *lines])} == {len(header.split(","))}


def test_integer_ids_with_a_null_stay_exact_integers(tmp_path, tiny_classifier):
    big = 9007199254740993  # 2**53 + 1: not representable as a float
    rows = [
        {"id": big, "premise": "a man is playing", "hypothesis": "nobody plays"},
        {"id": None, "premise": "a dog", "hypothesis": "a cat"},
    ]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    jsonl = tiny_classifier.score_file(data, tmp_path / "o.jsonl")
    assert [json.loads(line)["id"] for line in jsonl.read_text().splitlines()] == [big, None]
    csv_out = tiny_classifier.score_file(data, tmp_path / "o.csv")
    assert csv_out.read_text().splitlines()[1].startswith(f"{big},")
    parquet = tiny_classifier.score_file(data, tmp_path / "o.parquet")
    assert pd.read_parquet(parquet)["id"].tolist()[0] == big


def test_a_named_parquet_index_is_kept_as_a_column(tmp_path, tiny_classifier):
    frame = pd.DataFrame(
        {"premise": ["a man is playing", "a dog"], "hypothesis": ["nobody plays", "a cat"]},
        index=pd.Index([101, 202], name="doc_id"),
    )
    frame.to_parquet(tmp_path / "in.parquet")
    scored = pd.read_parquet(tiny_classifier.score_file(tmp_path / "in.parquet", tmp_path / "o.parquet"))
    assert scored["doc_id"].tolist() == [101, 202]


def test_a_new_key_in_a_later_chunk_of_standard_input_is_an_error_not_a_loss(tmp_path, tiny_model_dir):
    rows = [{"premise": "a man is playing", "hypothesis": "nobody plays"} for _ in range(12)]
    rows[11]["extra"] = 1
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with open(data, "rb") as stdin:
        result = subprocess.run(
            [STANCE, "score", "--model", str(tiny_model_dir), "--input", "-", "--output", str(tmp_path / "o.csv"),
             "--chunk-rows", "5", "--no-progress"],
            stdin=stdin, capture_output=True, text=True, env=ENV, timeout=600,
        )  # fmt: skip
    assert result.returncode == 2 and "row 11 onwards: key(s) ['extra'] not seen in the first chunk" in result.stderr
    assert not (tmp_path / "o.csv").exists()


# ------------------------------------------------------------------ clear errors instead of tracebacks (items 10, 11)
def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--chunk-rows", "0"], "--chunk-rows must be >= 1"),
        (["--abstain-threshold", "1.5"], "--abstain-threshold must be between 0 and 1"),
        (["--max-length", "0"], "--max-length must be >= 8"),
        (["--device", "cuda"], "CUDA is not available on this machine"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--device", "cuda", "--backend", "onnx-int8"], "CUDA is not available on this machine"),
        (["--num-gpus", "1"], "--num-gpus only apply with --engine ray"),
    ],
)
def test_bad_score_options_are_one_line_before_any_work(tmp_path, tiny_model_dir, extra, message):
    data = pairs_file(tmp_path / "p.jsonl", 3)
    out = tmp_path / "o.jsonl"
    result = stance("score", "--model", tiny_model_dir, "--input", data, "--output", out, *extra)
    assert message in one_line(result)
    assert not out.exists() and not out.with_name("o.jsonl.parts").exists()


def test_unwritable_output_is_one_line(tmp_path, tiny_model_dir):
    if os.geteuid() == 0:
        target = Path("/sys/stance-cannot-write-here/o.jsonl")  # root ignores file modes; sysfs refuses anyway
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        target = tmp_path / "ro" / "sub" / "o.jsonl"
    data = pairs_file(tmp_path / "p.jsonl", 3)
    line = one_line(stance("score", "--model", tiny_model_dir, "--input", data, "--output", target))
    assert "stance score: error:" in line


def test_jsonl_oddities_round_trip_or_fail_clearly(tmp_path, tiny_classifier):
    lone = '{"premise": "a man \\ud800 plays", "hypothesis": "nobody plays", "x": 1e999}\n'
    data = tmp_path / "odd.jsonl"
    data.write_text(lone)
    out = tiny_classifier.score_file(data, tmp_path / "o.jsonl")
    row = json.loads(out.read_text())  # valid JSON: no bare Infinity, surrogate kept as its escape
    assert row["premise"] == "a man \ud800 plays" and row["x"] is None
    assert row["error"].startswith("premise holds a lone surrogate") and row["label"] is None
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"premise": ' + "[" * 100_000 + "]" * 100_000 + ', "hypothesis": "x"}\n')
    from stance.model.errors import InputDataError

    with pytest.raises(InputDataError, match="line 1: JSON nested too deeply"):
        tiny_classifier.score_file(deep, tmp_path / "o2.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    from stance.model.tables import read_table, require_columns

    with pytest.raises(InputDataError, match="the file is empty"):
        require_columns(read_table(empty), {"premise": "premise"}, empty)


def test_predict_on_nothing_gives_empty_results(tiny_classifier):
    result = tiny_classifier.predict([])
    assert result.labels == [] and result.probabilities.shape == (0, 3) and result.truncated.shape == (0,)
    assert tiny_classifier.predict([], long_text="window").window_spans == []


def test_epochs_zero_and_bf16_where_it_cannot_run_well_are_recipe_errors(tmp_path, monkeypatch):
    from stance.model.errors import ConfigError
    from stance.training.config import load_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  train:\n    - {path: x.jsonl}\ntraining:\n  epochs: 0\n")
    with pytest.raises(ConfigError, match="training.epochs: must be > 0"):
        load_config(recipe)
    import torch

    from stance.training.trainer import check_precision_hardware

    if not torch.cuda.is_available():
        bf16 = load_config(recipe, ["training.epochs=1", "training.bf16=true"])
        monkeypatch.setattr("stance.model.classifier.cpu_has_bf16_instructions", lambda: False)
        with pytest.raises(ConfigError, match="training.bf16: true needs a CUDA GPU with bf16 support or a CPU with"):
            check_precision_hardware(bf16)
        monkeypatch.setattr("stance.model.classifier.cpu_has_bf16_instructions", lambda: True)
        check_precision_hardware(bf16)  # one process on a CPU that multiplies bf16: allowed
        monkeypatch.setenv("WORLD_SIZE", "2")
        with pytest.raises(ConfigError, match="one process only; set it false under torchrun"):
            check_precision_hardware(bf16)
        monkeypatch.delenv("WORLD_SIZE")
        monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *args: torch.device("xpu"))
        with pytest.raises(ConfigError, match="no other accelerator \\(this machine has xpu\\)"):
            check_precision_hardware(bf16)


def test_metrics_json_is_strict_json(tmp_path):
    from stance.eval.report import write_metrics_json

    path = write_metrics_json({"f1": float("nan"), "nested": [float("inf"), 1.0]}, tmp_path / "m.json")
    assert json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"bare {name}")) == {
        "f1": None,
        "nested": [None, 1.0],
    }


def test_eval_compare_checks_every_model_first_and_keeps_reports_apart(tmp_path, tiny_model_dir):
    data = pairs_file(tmp_path / "dev.jsonl", 6, label=True)
    result = stance("eval", "--data", data, "--output-dir", tmp_path / "r", "--compare", tiny_model_dir,
                    tmp_path / "doesnotexist", "--no-progress")  # fmt: skip
    assert "doesnotexist: model directory not found" in one_line(result)
    assert not (tmp_path / "r").exists(), "nothing is evaluated before every model argument is checked"
    (tmp_path / "m").mkdir()
    first = shutil.copytree(tiny_model_dir, tmp_path / "m" / "x")
    second = shutil.copytree(tiny_model_dir, tmp_path / "m_x")
    result = stance("eval", "--data", data, "--output-dir", tmp_path / "r", "--compare", first, second, "--no-progress")
    assert result.returncode == 0, result.stderr
    folders = sorted(p.name for p in (tmp_path / "r").iterdir() if p.is_dir())
    assert len(folders) == 2 and all((tmp_path / "r" / f / "metrics.json").exists() for f in folders)


# ------------------------------------------------------------------ input conveniences (issue 14)
def test_tsv_in_and_out_and_a_custom_delimiter(tmp_path, tiny_classifier):
    frame = pd.DataFrame(
        {"id": [1, 2], "premise": ["a man, playing", "a dog"], "hypothesis": ["nobody\tplays", "a cat"]}
    )
    frame.to_csv(tmp_path / "in.tsv", sep="\t", index=False)
    out = tiny_classifier.score_file(tmp_path / "in.tsv", tmp_path / "out.tsv")
    back = pd.read_csv(out, sep="\t")
    assert back["premise"].tolist() == ["a man, playing", "a dog"] and back["hypothesis"][0] == "nobody\tplays"
    frame.to_csv(tmp_path / "in.txt.csv", sep=";", index=False)
    out = tiny_classifier.score_file(tmp_path / "in.txt.csv", tmp_path / "o.csv", delimiter=";")
    assert pd.read_csv(out)["premise"].tolist() == ["a man, playing", "a dog"]


def test_a_directory_or_glob_scores_every_file_into_an_output_directory(tmp_path, tiny_model_dir):
    (tmp_path / "in").mkdir()
    pairs_file(tmp_path / "in" / "a.jsonl", 3)
    pairs_file(tmp_path / "in" / "b.jsonl", 5)
    (tmp_path / "in" / "notes.txt").write_text("not data")
    result = stance("score", "--model", tiny_model_dir, "--input", tmp_path / "in", "--output", tmp_path / "out",
                    "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jsonl", "b.jsonl"]
    assert len((tmp_path / "out" / "b.jsonl").read_text().splitlines()) == 5
    result = stance("score", "--model", tiny_model_dir, "--input", str(tmp_path / "in" / "*.jsonl"), "--output",
                    tmp_path / "out2", "--output-format", "csv", "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["a.csv", "b.csv"]
    missing = stance("score", "--model", tiny_model_dir, "--input", tmp_path / "in")
    assert "pass --output DIR" in one_line(missing)


def test_saved_model_files_follow_the_umask(tmp_path, tiny_classifier):
    previous = os.umask(0o022)
    try:
        saved = tiny_classifier.save_pretrained(tmp_path / "m")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in saved.iterdir() if p.is_file()}
    assert modes and all(mode == 0o644 for mode in modes.values()), modes
