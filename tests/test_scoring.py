"""File scoring: every row kept, same order, all columns, per-row errors, resume."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stance.model.errors import InputDataError
from stance.model.scoring import score_file
from stance.model.tables import iter_chunks, read_table

FORMATS = ["jsonl", "csv", "parquet"]


def write_frame(frame: pd.DataFrame, path):
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records")))
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL)  # minimal quoting corrupts texts with "\r"
    else:
        frame.to_parquet(path, index=False)
    return path


def pairs_frame(n: int) -> pd.DataFrame:
    words = "the man dog is playing not running in park a woman kids".split()
    rng = np.random.default_rng(n)
    return pd.DataFrame(
        {
            "id": [f"row-{i}" for i in range(n)],
            "premise": [" ".join(rng.choice(words, size=rng.integers(2, 30))) for _ in range(n)],
            "hypothesis": [" ".join(rng.choice(words, size=rng.integers(2, 8))) for _ in range(n)],
            "source": [f"s{i % 3}" for i in range(n)],
        }
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_order_columns_kept(tmp_path, tiny_classifier, fmt):
    frame = pairs_frame(23)
    frame.loc[4, "premise"] = ""
    frame.loc[9, "hypothesis"] = "   "
    source = write_frame(frame, tmp_path / f"in.{fmt}")
    out = score_file(tiny_classifier, source, tmp_path / f"out.{fmt}", chunk_rows=5, batch_size=4)
    scored = read_table(out)
    assert list(scored["id"]) == list(frame["id"])
    assert list(scored.columns) == [
        *frame.columns,
        "label",
        "prob_support",
        "prob_contradict",
        "prob_neutral",
        "truncated",
        "error",
    ]
    assert scored.loc[4, "error"] == "empty premise" and scored.loc[9, "error"] == "empty hypothesis"
    good = scored.drop(index=[4, 9])
    expected = tiny_classifier.predict(list(good["premise"]), list(good["hypothesis"]))
    assert list(good["label"]) == expected.labels
    np.testing.assert_allclose(
        good[["prob_support", "prob_contradict", "prob_neutral"]].to_numpy(float), expected.probabilities, atol=1e-6
    )
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.parts"))


def test_resume_after_interruption_equals_uninterrupted(tmp_path, tiny_classifier, monkeypatch):
    source = write_frame(pairs_frame(40), tmp_path / "in.jsonl")
    reference = score_file(tiny_classifier, source, tmp_path / "ref.jsonl", chunk_rows=7)
    import stance.model.scoring as scoring

    calls = {"n": 0}
    real = scoring.score_frame

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "score_frame", failing)
    with pytest.raises(KeyboardInterrupt):
        score_file(tiny_classifier, source, tmp_path / "out.jsonl", chunk_rows=7)
    assert not (tmp_path / "out.jsonl").exists()
    assert len(list((tmp_path / "out.jsonl.parts").glob("part-*.jsonl"))) == 3
    monkeypatch.setattr(scoring, "score_frame", real)
    with pytest.raises(InputDataError, match="cannot resume: \\['chunk_rows'\\] differ"):
        score_file(tiny_classifier, source, tmp_path / "out.jsonl", chunk_rows=8, resume=True)
    score_file(tiny_classifier, source, tmp_path / "out.jsonl", chunk_rows=7, resume=True)
    assert (tmp_path / "out.jsonl").read_bytes() == reference.read_bytes()


def test_output_must_not_overwrite_input(tmp_path, tiny_classifier):
    source = write_frame(pairs_frame(3), tmp_path / "in.jsonl")
    with pytest.raises(InputDataError, match="output would overwrite the input"):
        score_file(tiny_classifier, source, source)


def test_format_conversion(tmp_path, tiny_classifier):
    source = write_frame(pairs_frame(6), tmp_path / "in.csv")
    out = score_file(tiny_classifier, source, tmp_path / "out.parquet")
    assert len(pd.read_parquet(out)) == 6


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=0, max_value=30),
    chunk_rows=st.integers(min_value=1, max_value=12),
    batch_size=st.integers(min_value=1, max_value=9),
    fmt=st.sampled_from(FORMATS),
    data=st.data(),
)
def test_row_count_order_and_ids_are_invariant(tmp_path_factory, tiny_classifier, n, chunk_rows, batch_size, fmt, data):
    texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
    frame = pd.DataFrame(
        {
            "id": [f"id-{i}" for i in range(n)],
            "premise": data.draw(st.lists(texts, min_size=n, max_size=n)),
            "hypothesis": data.draw(st.lists(texts, min_size=n, max_size=n)),
        }
    )
    directory = tmp_path_factory.mktemp("prop")
    source = write_frame(frame, directory / f"in.{fmt}")
    out = score_file(tiny_classifier, source, directory / f"out.{fmt}", chunk_rows=chunk_rows, batch_size=batch_size)
    scored = read_table(out)
    assert len(scored) == n
    if n:
        assert list(scored["id"]) == list(frame["id"])
        blank = [
            not (isinstance(p, str) and p.strip() and isinstance(h, str) and h.strip())
            for p, h in zip(frame["premise"], frame["hypothesis"], strict=True)
        ]
        assert [isinstance(e, str) and e != "" for e in scored["error"]] == blank  # CSV reads "no error" as ""
        assert scored.loc[~np.array(blank), "label"].notna().all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_round_trip(tmp_path, fmt):
    frame = pairs_frame(11)
    source = write_frame(frame, tmp_path / f"in.{fmt}")
    chunks = list(iter_chunks(source, chunk_rows=4))
    assert [len(c) for c in chunks] == [4, 4, 3]
    joined = pd.concat(chunks)
    assert list(joined.index) == list(range(11))
    pd.testing.assert_frame_equal(joined.reset_index(drop=True)[list(frame.columns)], frame, check_dtype=False)


def test_resume_ignores_half_written_parts(tmp_path, tiny_classifier, monkeypatch):
    # A kill inside a part's write leaves e.g. part-000001.jsonl.partial: it is not finished.
    import stance.model.scoring as scoring

    source = write_frame(pairs_frame(30), tmp_path / "in.jsonl")
    reference = score_file(tiny_classifier, source, tmp_path / "ref.jsonl", chunk_rows=10)
    output, parts = tmp_path / "out.jsonl", tmp_path / "out.jsonl.parts"
    real, calls = scoring.score_frame, {"n": 0}

    def dies_while_writing_the_second_part(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            (parts / "part-000001.jsonl.partial").write_text('{"half": ')
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "score_frame", dies_while_writing_the_second_part)
    with pytest.raises(KeyboardInterrupt):
        score_file(tiny_classifier, source, output, chunk_rows=10)
    monkeypatch.setattr(scoring, "score_frame", real)
    score_file(tiny_classifier, source, output, chunk_rows=10, resume=True)
    assert output.read_bytes() == reference.read_bytes()


def test_resume_without_manifest_starts_over(tmp_path, tiny_classifier):
    source = write_frame(pairs_frame(12), tmp_path / "in.jsonl")
    reference = score_file(tiny_classifier, source, tmp_path / "ref.jsonl", chunk_rows=5)
    (tmp_path / "out.jsonl.parts").mkdir()  # killed between mkdir and the manifest
    score_file(tiny_classifier, source, tmp_path / "out.jsonl", chunk_rows=5, resume=True)
    assert (tmp_path / "out.jsonl").read_bytes() == reference.read_bytes()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv", ".parquet"])
def test_progress_bar_knows_the_total_for_every_file_format(tmp_path, tiny_classifier, capsys, suffix):
    """A bar with a total (``37/37``, rate and ETA) for every format; CSV rows are counted
    with quoted newlines inside texts, which a line count would get wrong."""
    from stance.model.tables import TableWriter

    frame = pd.DataFrame(
        {"premise": [f"a man\nplays {i}" for i in range(37)], "hypothesis": ['nobody, "really", plays'] * 37}
    )
    source = tmp_path / f"in{suffix}"
    writer = TableWriter(source)
    writer.write(frame)
    writer.close()
    score_file(tiny_classifier, source, tmp_path / "out.jsonl", progress=True, chunk_rows=16, batch_size=8)
    err = capsys.readouterr().err
    assert "37/37" in err, err[-500:]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
@pytest.mark.parametrize("rows", [0, 1, 5, 6])
def test_rows_at_most_counts_small_tables_and_stops_at_the_limit(tmp_path, suffix, rows):
    """What --backend auto reads to tell a small input: the rows when at most the limit, else
    None; with or without a final newline; a missing or unreadable file is None, not an error."""
    from stance.model.tables import rows_at_most

    frame = pd.DataFrame({"premise": [f"p {i}" for i in range(rows)], "hypothesis": ["h"] * rows})
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(record) + "\n" for record in frame.to_dict("records")))
    assert rows_at_most(path, 5) == (rows if rows <= 5 else None)
    if suffix != ".parquet" and rows:
        path.write_bytes(path.read_bytes().rstrip(b"\n"))  # no final newline: the last row still counts
        assert rows_at_most(path, 5) == (rows if rows <= 5 else None)
    assert rows_at_most(tmp_path / f"missing{suffix}", 5) is None
    (tmp_path / "t.txt").write_text("premise\n")
    assert rows_at_most(tmp_path / "t.txt", 5) is None, "a format it cannot tell is not guessed"
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)  # opening it to read would block: a pipe is never read, or its rows would be lost
    assert rows_at_most(fifo, 5) is None
